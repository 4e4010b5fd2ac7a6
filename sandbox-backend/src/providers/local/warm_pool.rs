//! Sandboxes kept started ahead of demand (`SANDBOX_WARM_POOL`, in `<data>/warm/`):
//! a creation then costs a rename and a configuration message instead of a
//! bubblewrap start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nightshift_protocol::sandbox::NetworkMode;

use super::handle::{LocalHandle, alive, end_sandbox};
use super::launcher::{Launcher, SOCKETS_DIR_NAME};
use super::sandbox_agent::client as agent;
use crate::files;

/// The network mode warm sandboxes are started with (the default, which sessions use).
const WARM_NETWORK: NetworkMode = NetworkMode::Isolated;

/// A sandbox started ahead of demand, in `<data>/warm/<name>/`.
pub(super) struct WarmSandbox {
    pub(super) dir: PathBuf,
    pub(super) handle: LocalHandle,
}

impl WarmSandbox {
    /// Moves its directories and socket into the sandbox's directory. Its mounts
    /// follow (they hold the directories, not their paths), and so does its socket.
    pub(super) fn adopt(&self, target: &Path) -> std::io::Result<()> {
        for name in [
            "workspace",
            "home",
            SOCKETS_DIR_NAME,
            "agent.sock",
            "agent.log",
        ] {
            let to = target.join(name);
            if name == "workspace" || name == "home" || name == SOCKETS_DIR_NAME {
                // An empty directory left by an earlier attempt is replaced.
                let _ = std::fs::remove_dir(&to);
            }
            std::fs::rename(self.dir.join(name), to)?;
        }
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }

    /// Ends it (it was never handed out, or could not be).
    pub(super) async fn end(&self) {
        end_sandbox(&self.dir.join("agent.sock"), Some(&self.handle)).await;
    }
}

/// Sandboxes kept started for the next creations.
pub(super) struct WarmPool {
    root: PathBuf,
    size: usize,
    ready: Mutex<Vec<WarmSandbox>>,
    starting: AtomicUsize,
    closed: AtomicBool,
}

impl WarmPool {
    /// An empty pool in `root`, which ends what a previous backend process left there.
    pub(super) async fn new(root: PathBuf, size: usize) -> WarmPool {
        clear_leftovers(&root).await;
        WarmPool {
            root,
            size,
            ready: Mutex::new(Vec::new()),
            starting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WarmSandbox>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn take(&self) -> Option<WarmSandbox> {
        loop {
            let warm = self.lock().pop()?;
            if alive(&warm.handle) {
                return Some(warm);
            }
            let _ = files::remove_tree(&warm.dir);
        }
    }

    /// Starts warm sandboxes in the background until the pool is full.
    pub(super) fn refill(self: &Arc<Self>, launcher: &Arc<Launcher>) {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let have = self.lock().len() + self.starting.load(Ordering::SeqCst);
            if have >= self.size {
                return;
            }
            self.starting.fetch_add(1, Ordering::SeqCst);
            let pool = self.clone();
            let launcher = launcher.clone();
            tokio::spawn(async move {
                let name = format!("warm_{}", uuid::Uuid::new_v4().simple());
                let dir = pool.root.join(&name);
                let launched = launcher.launch(&dir, &name, WARM_NETWORK).await;
                match launched {
                    Ok(handle) if !pool.closed.load(Ordering::SeqCst) => {
                        pool.lock().push(WarmSandbox { dir, handle });
                    }
                    Ok(handle) => {
                        end_sandbox(&dir.join("agent.sock"), Some(&handle)).await;
                        let _ = files::remove_tree(&dir);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot start a warm sandbox");
                        let _ = files::remove_tree(&dir);
                    }
                }
                pool.starting.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// Ends the warm sandboxes (a backend that goes away cannot hand them out).
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let warm: Vec<WarmSandbox> = self.lock().drain(..).collect();
        for warm in warm {
            warm.end().await;
            let _ = files::remove_tree(&warm.dir);
        }
    }
}

/// Ends warm sandboxes a previous backend process left in `root`.
pub(super) async fn clear_leftovers(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let _ = agent::shutdown(&entry.path().join("agent.sock")).await;
        let _ = files::remove_tree(&entry.path());
    }
}
