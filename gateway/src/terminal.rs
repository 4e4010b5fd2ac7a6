//! Terminal tabs: a PTY running bash in the workspace per tab, shared by every client
//! that opens the tab.
//!
//! Each tab keeps a bounded scroll-back ([`scrollback`]) that a new client receives
//! first, then the live output; every client's input goes to the same shell, so two
//! people on one tab see one screen. The number of tabs is capped. When the shell
//! exits the tab ends: its clients get a notice and are closed, and opening the same
//! tab name again starts a new shell. The WebSocket side is [`socket`].

pub mod pty;
pub mod scrollback;
pub mod socket;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nightshift_protocol::error::ErrorCode;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::broadcast;

use crate::error::GatewayError;
use scrollback::{SCROLLBACK_BYTES, Scrollback};

/// How many output chunks a client may fall behind before it is dropped (it can
/// reconnect and get the scroll-back).
const CLIENT_BACKLOG: usize = 1024;
/// How many input writes may wait for the shell.
const INPUT_BACKLOG: usize = 64;
const MAX_TAB_NAME: usize = 32;

/// What a tab tells its clients.
#[derive(Debug, Clone)]
pub enum TabEvent {
    Output(Bytes),
    Exited(String),
}

/// The open tabs of this gateway.
#[derive(Clone)]
pub struct Terminals {
    tabs: Arc<Mutex<HashMap<String, Arc<Tab>>>>,
    workspace: PathBuf,
    max_tabs: usize,
}

/// One shell and what it wrote.
pub struct Tab {
    master: OwnedFd,
    input: SyncSender<Vec<u8>>,
    shared: Mutex<TabShared>,
    events: broadcast::Sender<TabEvent>,
    shell: Option<Pid>,
    /// Set once the shell was reaped, after which its pid may belong to another process.
    ended: AtomicBool,
}

struct TabShared {
    scrollback: Scrollback,
    exited: Option<String>,
}

/// A tab name in a URL: short, letters, digits, `-` and `_`.
pub fn valid_tab_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TAB_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Terminals {
    pub fn new(workspace: PathBuf, max_tabs: usize) -> Self {
        Self {
            tabs: Arc::default(),
            workspace,
            max_tabs,
        }
    }

    /// The tab named `name`, started if it is not open. Refused past the cap.
    pub fn open(&self, name: &str) -> Result<Arc<Tab>, GatewayError> {
        let mut tabs = self
            .tabs
            .lock()
            .map_err(|_| GatewayError::new(ErrorCode::Internal, "the tab table is poisoned"))?;
        if let Some(tab) = tabs.get(name) {
            return Ok(tab.clone());
        }
        if tabs.len() >= self.max_tabs {
            return Err(GatewayError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "{} terminal tabs are open, the most this gateway keeps (--max-tabs); close one first",
                    tabs.len()
                ),
            ));
        }
        let tab = self.start(name).map_err(|error| {
            GatewayError::new(
                ErrorCode::Internal,
                format!("could not start a shell: {error}"),
            )
        })?;
        tabs.insert(name.to_owned(), tab.clone());
        Ok(tab)
    }

    fn start(&self, name: &str) -> std::io::Result<Arc<Tab>> {
        let (master, mut child) = pty::spawn_shell(&self.workspace, 80, 24)?;
        let shell = child.id().map(|pid| Pid::from_raw(pid as i32));
        let reader = std::fs::File::from(master.try_clone()?);
        let mut writer = std::fs::File::from(master.try_clone()?);
        let (input, inputs) = std::sync::mpsc::sync_channel::<Vec<u8>>(INPUT_BACKLOG);
        let (events, _) = broadcast::channel(CLIENT_BACKLOG);
        let tab = Arc::new(Tab {
            master,
            input,
            shared: Mutex::new(TabShared {
                scrollback: Scrollback::new(SCROLLBACK_BYTES),
                exited: None,
            }),
            events,
            shell,
            ended: AtomicBool::new(false),
        });
        // Blocking reads and writes on the master live on threads of their own: a
        // PTY is a character device that tokio's reactor cannot wait on portably.
        std::thread::spawn(move || {
            while let Ok(chunk) = inputs.recv() {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let (read_done, read_finished) = tokio::sync::oneshot::channel::<()>();
        let reading = Arc::downgrade(&tab);
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let Some(tab) = reading.upgrade() else { break };
                        tab.output(&buffer[..n]);
                    }
                }
            }
            let _ = read_done.send(());
        });
        let tabs = self.tabs.clone();
        let name = name.to_owned();
        let ending = Arc::downgrade(&tab);
        tokio::spawn(async move {
            let status = child.wait().await;
            if let Some(tab) = ending.upgrade() {
                tab.ended.store(true, Ordering::SeqCst);
            }
            // Whatever the shell left running loses its terminal with it.
            if let Some(pid) = shell {
                let _ = killpg(pid, Signal::SIGHUP);
            }
            // Let the last output through before the notice.
            let _ = tokio::time::timeout(Duration::from_millis(500), read_finished).await;
            let message = match status.ok().and_then(|status| status.code()) {
                Some(code) => format!("the shell exited with status {code}"),
                None => "the shell was stopped".to_owned(),
            };
            if let Ok(mut tabs) = tabs.lock()
                && let Some(open) = tabs.get(&name)
                && ending.upgrade().is_some_and(|tab| Arc::ptr_eq(&tab, open))
            {
                tabs.remove(&name);
            }
            if let Some(tab) = ending.upgrade() {
                tab.exit(message);
            }
        });
        Ok(tab)
    }
}

impl Tab {
    fn output(&self, chunk: &[u8]) {
        if let Ok(mut shared) = self.shared.lock() {
            shared.scrollback.push(chunk);
            // Sent under the lock so a client attaching now sees each byte once:
            // either in its replay or live.
            let _ = self
                .events
                .send(TabEvent::Output(Bytes::copy_from_slice(chunk)));
        }
    }

    fn exit(&self, message: String) {
        self.ended.store(true, Ordering::SeqCst);
        if let Ok(mut shared) = self.shared.lock() {
            shared.exited = Some(message.clone());
            let _ = self.events.send(TabEvent::Exited(message));
        }
    }

    /// The scroll-back so far, the live events after it, and the exit message if
    /// the shell already ended.
    pub fn attach(&self) -> (Vec<u8>, broadcast::Receiver<TabEvent>, Option<String>) {
        match self.shared.lock() {
            Ok(shared) => (
                shared.scrollback.to_vec(),
                self.events.subscribe(),
                shared.exited.clone(),
            ),
            Err(_) => (
                Vec::new(),
                self.events.subscribe(),
                Some("the tab failed".into()),
            ),
        }
    }

    /// Keystrokes for the shell. Refused (not blocked on) when the shell is not
    /// reading and the backlog is full.
    pub fn write(&self, bytes: Vec<u8>) -> Result<(), &'static str> {
        match self.input.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err("the shell is not reading its input; dropped"),
            Err(TrySendError::Disconnected(_)) => Err("the shell has exited"),
        }
    }

    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), String> {
        if !(1..=1000).contains(&cols) || !(1..=1000).contains(&rows) {
            return Err(format!(
                "a terminal of {cols}x{rows} is out of range (1 to 1000)"
            ));
        }
        pty::resize(&self.master, cols, rows).map_err(|error| error.to_string())
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        if let Some(pid) = self.shell
            && !self.ended.load(Ordering::SeqCst)
        {
            let _ = killpg(pid, Signal::SIGHUP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_names_are_short_and_plain() {
        assert!(valid_tab_name("main"));
        assert!(valid_tab_name("tab-2_b"));
        for bad in ["", "a/b", "..", "a b", "%2e", &"x".repeat(33)] {
            assert!(!valid_tab_name(bad), "{bad}");
        }
    }
}
