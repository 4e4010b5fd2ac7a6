//! Keeping a sandbox's runner alive: start `RUNNER_BIN --config <file>` in a process
//! group of its own, restart it with [`backoff::Backoff`] whenever it exits, and stop
//! for good when it says its token was rejected (exit code 3) or the sandbox stops.
//!
//! A restarted runner reads the same config file, which the runner itself updates
//! when its token is renewed, so "the runner died mid-turn, a new one connects" needs
//! nothing from the Worker. What happens is reported to an observer (the lifecycle
//! layer records it); this module knows nothing of sandboxes or HTTP.

pub mod backoff;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nightshift_protocol::sandbox::RUNNER_EXIT_TOKEN_REJECTED;
use nix::sys::signal::Signal;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::backoff::Backoff;
use crate::process::{signal_group, terminate_group};
use crate::providers::local::host_user::HostUser;

/// How long a runner gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The only variables a runner inherits from the backend: it must not see the
/// backend's token or anything else of its environment. (`NIGHTSHIFT_OPENCODE_BIN`
/// and `NIGHTSHIFT_QUESTION_TIMEOUT_MS` configure the runner's agents.)
const INHERITED_ENV: [&str; 5] = [
    "PATH",
    "HOME",
    "RUST_LOG",
    "NIGHTSHIFT_OPENCODE_BIN",
    "NIGHTSHIFT_QUESTION_TIMEOUT_MS",
];

/// What to start.
#[derive(Debug, Clone)]
pub struct RunnerCommand {
    pub program: PathBuf,
    pub config_path: PathBuf,
    /// Its stdout and stderr are appended here.
    pub log_path: PathBuf,
    pub working_dir: PathBuf,
    /// The unprivileged host user it runs as (a root backend's local sandboxes: the
    /// sandbox's own host user, so each can edit the other's files). Its directory
    /// and config file are given to that user first; `HOME` is its directory.
    pub run_as: Option<HostUser>,
}

/// What happened to a supervised runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerEvent {
    Started {
        pid: u32,
        start_ticks: Option<u64>,
    },
    /// It exited (or could not be started) and starts again after `restart_in`.
    Down {
        reason: String,
        restart_in: Duration,
    },
    /// It exited with code 3: its token was rejected. It stays down.
    TokenRejected,
    /// The supervisor was told to stop, and the runner is gone.
    Stopped,
}

pub type RunnerObserver = Arc<dyn Fn(RunnerEvent) + Send + Sync>;

/// A running supervision loop. Dropping it leaves the loop running; call
/// [`RunnerSupervisor::shutdown`] to stop the runner.
pub struct RunnerSupervisor {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl RunnerSupervisor {
    pub fn start(command: RunnerCommand, observer: RunnerObserver) -> RunnerSupervisor {
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(command, observer, stop.clone()));
        RunnerSupervisor { stop, task }
    }

    /// Stops the runner (SIGTERM, then SIGKILL) and waits for the loop to end.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if tokio::time::timeout(STOP_GRACE * 3, self.task)
            .await
            .is_err()
        {
            tracing::warn!("runner supervisor did not stop in time");
        }
    }

    /// Whether the loop ended on its own (the token was rejected).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

async fn supervise(command: RunnerCommand, observer: RunnerObserver, stop: CancellationToken) {
    let mut backoff = Backoff::default();
    let mut starts: u64 = 0;
    loop {
        starts += 1;
        let (reason, uptime) = match spawn(&command, starts) {
            Err(error) => (
                format!("cannot start {}: {error}", command.program.display()),
                Duration::ZERO,
            ),
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                observer(RunnerEvent::Started {
                    pid,
                    start_ticks: crate::process::start_ticks(pid),
                });
                let started = Instant::now();
                tokio::select! {
                    status = child.wait() => {
                        // Children it left in its group go with it.
                        signal_group(pid, Signal::SIGKILL);
                        if exit_code(&status) == Some(RUNNER_EXIT_TOKEN_REJECTED) {
                            log_line(&command, "runner exited with code 3 (token rejected); not restarting");
                            observer(RunnerEvent::TokenRejected);
                            return;
                        }
                        (describe_exit(&status), started.elapsed())
                    }
                    () = stop.cancelled() => {
                        terminate_group(pid, STOP_GRACE, async { let _ = child.wait().await; }).await;
                        log_line(&command, "runner stopped");
                        observer(RunnerEvent::Stopped);
                        return;
                    }
                }
            }
        };
        let restart_in = backoff.delay_after(uptime);
        log_line(&command, &format!("{reason}; restarting in {restart_in:?}"));
        observer(RunnerEvent::Down { reason, restart_in });
        tokio::select! {
            () = tokio::time::sleep(restart_in) => {}
            () = stop.cancelled() => {
                observer(RunnerEvent::Stopped);
                return;
            }
        }
    }
}

fn spawn(command: &RunnerCommand, start: u64) -> std::io::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&command.log_path)?;
    log_line(command, &format!("starting runner (start #{start})"));
    let mut process = Command::new(&command.program);
    process
        .arg("--config")
        .arg(&command.config_path)
        .env_clear()
        .envs(
            INHERITED_ENV
                .iter()
                .filter_map(|name| Some((*name, std::env::var_os(name)?))),
        )
        .current_dir(&command.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        // Its own group: a terminal's Ctrl-C does not reach it, and stopping it can
        // signal everything it started at once.
        .process_group(0);
    if let Some(user) = command.run_as {
        give_runner_files(command, &user)?;
        process
            .uid(user.uid)
            .gid(user.gid)
            .env("HOME", &command.working_dir);
    }
    process.spawn()
}

/// Gives the runner's directory and config file to `user`. The config is opened
/// without following links and must be a plain file with one link, so a runner that
/// replaced it cannot make the backend give away another file.
fn give_runner_files(command: &RunnerCommand, user: &HostUser) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    user.give(&command.working_dir)?;
    let config = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&command.config_path)?;
    let metadata = config.metadata()?;
    if !metadata.is_file() || metadata.nlink() != 1 {
        return Err(std::io::Error::other(format!(
            "{} is not a plain file",
            command.config_path.display()
        )));
    }
    if metadata.uid() != user.uid {
        std::os::unix::fs::fchown(&config, Some(user.uid), Some(user.gid))?;
    }
    Ok(())
}

/// Notes a supervision step in the runner's log, between its own lines.
fn log_line(command: &RunnerCommand, text: &str) {
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&command.log_path);
    if let Ok(mut log) = opened {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let _ = writeln!(log, "[sandbox-backend t={now}] {text}");
    }
}

fn exit_code(status: &std::io::Result<ExitStatus>) -> Option<i32> {
    status.as_ref().ok().and_then(ExitStatus::code)
}

fn describe_exit(status: &std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => format!("runner exited ({status})"),
        Err(error) => format!("cannot wait for the runner: {error}"),
    }
}
