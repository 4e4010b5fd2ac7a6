//! Background processes, the same for every provider: the provider only starts a
//! command with a stdin stream ([`crate::providers::Provider::spawn`]); the buffers,
//! offsets, ids, stdin writes and kills live here.
//!
//! Each stream keeps its last [`MAX_RETAINED_BYTES`]; offsets count every byte of
//! the stream (as UTF-8 text), so a reader can resume where it stopped and is told
//! how many bytes it missed when the buffer moved past its offset.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nightshift_protocol::sandbox::{
    ExecExit, ExecOutput, OutputBuffer, ProcessInfo, ProcessOutput,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Per stream and process.
pub const MAX_RETAINED_BYTES: usize = 1024 * 1024;
/// Processes (running or ended) one sandbox keeps; ended ones are forgotten first.
pub const MAX_PROCESSES: usize = 64;
/// How long a kill waits for the process to be gone.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(15);
/// Background processes run until killed (or their sandbox stops); this only bounds
/// a forgotten one.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

#[derive(Debug, Default)]
struct Ring {
    bytes: VecDeque<u8>,
    total: u64,
}

impl Ring {
    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        self.bytes.extend(data);
        let excess = self.bytes.len().saturating_sub(MAX_RETAINED_BYTES);
        self.bytes.drain(..excess);
    }

    fn start(&self) -> u64 {
        self.total - self.bytes.len() as u64
    }

    /// The retained bytes from `offset` on (clamped to what is retained).
    fn from(&self, offset: u64) -> Vec<u8> {
        let skip = offset.saturating_sub(self.start()) as usize;
        self.bytes.iter().skip(skip).copied().collect()
    }

    fn view(&self) -> OutputBuffer {
        let (front, back) = self.bytes.as_slices();
        let mut tail = String::from_utf8_lossy(front).into_owned();
        tail.push_str(&String::from_utf8_lossy(back));
        OutputBuffer {
            total_bytes: self.total,
            dropped_bytes: self.start(),
            tail,
        }
    }
}

#[derive(Debug, Default)]
struct Output {
    stdout: Ring,
    stderr: Ring,
    exit: Option<ExecExit>,
}

pub struct Process {
    pub id: String,
    command: String,
    args: Vec<String>,
    started_at: i64,
    output: Mutex<Output>,
    /// Bumped on every change, so readers can wait for one.
    changes: watch::Sender<u64>,
    stdin: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    cancel: CancellationToken,
}

impl Process {
    fn lock(&self) -> std::sync::MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn info(&self) -> ProcessInfo {
        let output = self.lock();
        ProcessInfo {
            id: self.id.clone(),
            command: self.command.clone(),
            args: self.args.clone(),
            running: output.exit.is_none(),
            exit: output.exit,
            started_at: self.started_at,
            stdout: output.stdout.view(),
            stderr: output.stderr.view(),
        }
    }

    pub fn running(&self) -> bool {
        self.lock().exit.is_none()
    }

    /// Writes to the process's stdin (then closes it when `eof`). `false` when its
    /// stdin is already closed.
    pub async fn write_stdin(&self, data: Vec<u8>, eof: bool) -> bool {
        let sender = self
            .stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(sender) = sender else { return false };
        if !data.is_empty() && sender.send(data).await.is_err() {
            return false;
        }
        if eof {
            self.stdin
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
        true
    }

    /// Kills the process (with its group) and waits until it is gone.
    pub async fn kill(&self) -> ProcessInfo {
        self.cancel.cancel();
        let mut changes = self.changes.subscribe();
        let _ = tokio::time::timeout(KILL_TIMEOUT, async {
            while self.running() {
                if changes.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        self.info()
    }

    /// The NDJSON lines of `GET .../output`: from the given offsets, then (with
    /// `follow`) as output arrives, ending with the exit once everything was sent.
    pub fn output_lines(
        self: Arc<Self>,
        mut stdout_offset: u64,
        mut stderr_offset: u64,
        follow: bool,
    ) -> mpsc::Receiver<ProcessOutput> {
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut changes = self.changes.subscribe();
            loop {
                let (lines, ended) = {
                    let output = self.lock();
                    let mut lines = Vec::new();
                    for (name, ring, offset) in [
                        ("stdout", &output.stdout, &mut stdout_offset),
                        ("stderr", &output.stderr, &mut stderr_offset),
                    ] {
                        if *offset < ring.start() {
                            lines.push(ProcessOutput::Dropped {
                                stream: name.into(),
                                bytes: ring.start() - *offset,
                            });
                            *offset = ring.start();
                        }
                        if *offset < ring.total {
                            let data = String::from_utf8_lossy(&ring.from(*offset)).into_owned();
                            lines.push(if name == "stdout" {
                                ProcessOutput::Stdout {
                                    offset: *offset,
                                    data,
                                }
                            } else {
                                ProcessOutput::Stderr {
                                    offset: *offset,
                                    data,
                                }
                            });
                            *offset = ring.total;
                        }
                    }
                    if let Some(exit) = output.exit {
                        lines.push(ProcessOutput::Exit(exit));
                    }
                    (lines, output.exit.is_some())
                };
                for line in lines {
                    if sender.send(line).await.is_err() {
                        return;
                    }
                }
                if ended || !follow {
                    return;
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = sender.closed() => return,
                }
            }
        });
        receiver
    }
}

/// The processes of one sandbox.
#[derive(Default)]
pub struct ProcessTable {
    next: AtomicU64,
    processes: Mutex<BTreeMap<u64, Arc<Process>>>,
}

impl ProcessTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Process>>> {
        self.processes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for a new process: forgets the oldest ended one when full.
    /// `false` when every slot holds a running process.
    pub fn make_room(&self) -> bool {
        let mut processes = self.lock();
        if processes.len() < MAX_PROCESSES {
            return true;
        }
        let ended = processes
            .iter()
            .find(|(_, process)| !process.running())
            .map(|(key, _)| *key);
        match ended {
            Some(key) => {
                processes.remove(&key);
                true
            }
            None => false,
        }
    }

    /// Registers a started process and returns it with the task that pumps its
    /// output (to be spawned by the caller, who tracks it).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        command: String,
        args: Vec<String>,
        started_at: i64,
        stdin: mpsc::Sender<Vec<u8>>,
        cancel: CancellationToken,
        mut output: mpsc::Receiver<ExecOutput>,
        on_activity: impl Fn() + Send + 'static,
    ) -> (
        Arc<Process>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let number = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let (changes, _) = watch::channel(0);
        let process = Arc::new(Process {
            id: format!("proc_{number}"),
            command,
            args,
            started_at,
            output: Mutex::new(Output::default()),
            changes,
            stdin: Mutex::new(Some(stdin)),
            cancel,
        });
        self.lock().insert(number, process.clone());
        let pumped = process.clone();
        let pump = async move {
            while let Some(line) = output.recv().await {
                {
                    let mut state = pumped.lock();
                    match line {
                        ExecOutput::Stdout(text) => state.stdout.push(text.as_bytes()),
                        ExecOutput::Stderr(text) => state.stderr.push(text.as_bytes()),
                        ExecOutput::Exit(exit) => state.exit = Some(exit),
                    }
                }
                on_activity();
                pumped.changes.send_modify(|version| *version += 1);
            }
            // A run that ended without an exit line was killed with its sandbox.
            let mut state = pumped.lock();
            if state.exit.is_none() {
                state.exit = Some(ExecExit {
                    code: 137,
                    timed_out: false,
                    killed: true,
                    duration_ms: 0,
                });
            }
            drop(state);
            pumped
                .stdin
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            pumped.changes.send_modify(|version| *version += 1);
        };
        (process, pump)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Process>> {
        let number: u64 = id.strip_prefix("proc_")?.parse().ok()?;
        self.lock().get(&number).cloned()
    }

    pub fn list(&self) -> Vec<ProcessInfo> {
        self.lock().values().map(|process| process.info()).collect()
    }

    pub fn any_running(&self) -> bool {
        self.lock().values().any(|process| process.running())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_keep_the_tail_and_count_everything() {
        let mut ring = Ring::default();
        ring.push(b"abc");
        assert_eq!(ring.from(1), b"bc");
        let big = vec![b'x'; MAX_RETAINED_BYTES];
        ring.push(&big);
        assert_eq!(ring.total, 3 + MAX_RETAINED_BYTES as u64);
        assert_eq!(ring.start(), 3);
        assert_eq!(ring.view().dropped_bytes, 3);
        assert_eq!(ring.from(0).len(), MAX_RETAINED_BYTES);
        assert_eq!(ring.from(ring.total).len(), 0);
    }

    #[tokio::test]
    async fn output_is_replayed_from_offsets_and_ends_with_the_exit() {
        let table = ProcessTable::default();
        let (stdin, _stdin_rx) = mpsc::channel(1);
        let (sender, output) = mpsc::channel(8);
        let (process, pump) = table.add(
            "sh".into(),
            vec![],
            0,
            stdin,
            CancellationToken::new(),
            output,
            || {},
        );
        tokio::spawn(pump);
        sender
            .send(ExecOutput::Stdout("hello ".into()))
            .await
            .unwrap();
        sender
            .send(ExecOutput::Stdout("world".into()))
            .await
            .unwrap();
        let exit = ExecExit {
            code: 0,
            timed_out: false,
            killed: false,
            duration_ms: 1,
        };
        sender.send(ExecOutput::Exit(exit)).await.unwrap();
        drop(sender);
        let mut lines = process.clone().output_lines(6, 0, true);
        let mut seen = Vec::new();
        while let Some(line) = lines.recv().await {
            seen.push(line);
        }
        assert_eq!(
            seen,
            [
                ProcessOutput::Stdout {
                    offset: 6,
                    data: "world".into()
                },
                ProcessOutput::Exit(exit)
            ]
        );
        assert!(table.get(&process.id).is_some());
        assert!(table.get("proc_99").is_none());
        assert!(!table.any_running());
    }
}
