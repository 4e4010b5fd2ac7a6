//! The `bash` tool: runs a command in the sandbox and returns its combined output and
//! exit code.
//!
//! The command runs as `command_wrapper ++ ["bash", "-lc", command]` (plain
//! `bash -lc` in the workspace when there is no wrapper), in a process group of its
//! own, with stdin closed and an environment cleared down to PATH, HOME, LANG and
//! TERM: the runner's token and LLM key are never visible to it. On timeout or abort
//! the whole group gets SIGTERM, then SIGKILL after a grace period, so nothing the
//! command started outlives it. Background processes that keep running after a
//! normal exit are left alone; their output is not awaited beyond a short grace.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::ToolOutput;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the command exited (background processes
/// may hold the pipe open).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);
/// Output kept in memory; the event and the model get far less (see
/// `limits::MAX_TOOL_OUTPUT_BYTES`), this only bounds the runner's memory.
const CAPTURE_LIMIT: usize = 1024 * 1024;
const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BashArgs {
    pub command: String,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// How commands are started in this sandbox.
#[derive(Debug, Clone)]
pub struct CommandSettings {
    /// Argv prefix that runs a command inside the sandbox; empty for "run here".
    pub wrapper: Vec<String>,
    /// The workspace on this machine (the working directory without a wrapper).
    pub workspace_dir: PathBuf,
    /// HOME for commands: the workspace as commands see it.
    pub home: String,
}

#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    dropped: u64,
}

enum Ending {
    Exited(std::process::ExitStatus),
    TimedOut,
    Aborted,
}

/// Kills the process group if the command is abandoned (the future dropped) while it
/// still runs.
struct GroupGuard {
    group: Option<Pid>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

pub async fn run(
    settings: &CommandSettings,
    args: BashArgs,
    cancel: &CancellationToken,
) -> ToolOutput {
    let timeout = args
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
        .clamp(Duration::from_millis(1), MAX_TIMEOUT);
    match run_command(settings, &args.command, timeout, cancel).await {
        Ok(output) => output,
        Err(error) => ToolOutput::error(format!("cannot start the command: {error}")),
    }
}

async fn run_command(
    settings: &CommandSettings,
    command: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> std::io::Result<ToolOutput> {
    let (reader, writer) = std::io::pipe()?;
    let mut process = match settings.wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut process = Command::new(program);
            process.args(wrapper_args).arg("bash");
            process
        }
        None => Command::new("bash"),
    };
    process
        .args(["-lc", command])
        .current_dir(&settings.workspace_dir)
        .env_clear()
        .env("PATH", SEARCH_PATH)
        .env("HOME", &settings.home)
        .env("LANG", "C.UTF-8")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = process.spawn()?;
    // The command object holds the parent's copies of the pipe's write end; the
    // output would never reach end-of-file while they are open.
    drop(process);

    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut guard = GroupGuard { group };

    let capture = Arc::new(Mutex::new(Capture::default()));
    let mut receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let reading = {
        let capture = capture.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                match receiver.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        let mut capture = capture
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        let room = CAPTURE_LIMIT.saturating_sub(capture.bytes.len());
                        let kept = read.min(room);
                        capture.bytes.extend_from_slice(&buffer[..kept]);
                        capture.dropped += (read - kept) as u64;
                    }
                }
            }
        })
    };

    let ending = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => Ending::Exited(status),
            Err(error) => return Err(error),
        },
        _ = tokio::time::sleep(timeout) => Ending::TimedOut,
        _ = cancel.cancelled() => Ending::Aborted,
    };
    let status = match ending {
        Ending::Exited(status) => Some(status),
        Ending::TimedOut | Ending::Aborted => {
            terminate(group, &mut child).await;
            None
        }
    };
    guard.group = None;

    // Collect what is left in the pipe, but do not wait on background processes
    // that inherited it.
    let mut reading = reading;
    if tokio::time::timeout(OUTPUT_GRACE, &mut reading)
        .await
        .is_err()
    {
        reading.abort();
    }
    let (bytes, dropped) = {
        let mut capture = capture
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (std::mem::take(&mut capture.bytes), capture.dropped)
    };

    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if dropped > 0 {
        text.push_str(&format!("\n[{dropped} more bytes of output were not kept]"));
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let (footer, is_error) = match (&ending, status) {
        (Ending::TimedOut, _) => (
            format!(
                "[timed out after {} ms; the command and everything it started were killed]",
                timeout.as_millis()
            ),
            true,
        ),
        (Ending::Aborted, _) => (
            "[aborted; the command and everything it started were killed]".to_string(),
            true,
        ),
        (Ending::Exited(_), Some(status)) => match status.code() {
            Some(code) => (format!("[exit code: {code}]"), code != 0),
            None => {
                use std::os::unix::process::ExitStatusExt;
                (
                    format!("[killed by signal {}]", status.signal().unwrap_or(0)),
                    true,
                )
            }
        },
        (Ending::Exited(_), None) => ("[exit status unknown]".to_string(), true),
    };
    text.push_str(&footer);
    Ok(ToolOutput {
        text,
        is_error,
        image: None,
    })
}

/// SIGTERM to the whole group, a grace period, then SIGKILL to whatever is left.
async fn terminate(group: Option<Pid>, child: &mut tokio::process::Child) {
    let Some(group) = group else {
        let _ = child.kill().await;
        return;
    };
    let _ = killpg(group, Signal::SIGTERM);
    let _ = tokio::time::timeout(TERMINATE_GRACE, child.wait()).await;
    // Children of the command may ignore SIGTERM or outlive the shell.
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait().await;
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn settings(dir: &std::path::Path) -> CommandSettings {
        CommandSettings {
            wrapper: Vec::new(),
            workspace_dir: dir.to_path_buf(),
            home: dir.to_string_lossy().into_owned(),
        }
    }

    fn args(command: &str) -> BashArgs {
        BashArgs {
            command: command.to_string(),
            timeout_ms: None,
        }
    }

    /// Processes of a group that are still alive (zombies do not count: they are
    /// dead, only not yet reaped by whichever process adopted them).
    fn live_members(group: i32) -> Vec<i32> {
        let mut members = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command name, which is in parentheses and may
            // contain spaces: state, ppid, pgrp, ...
            let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
                continue;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            if fields.len() > 2 && fields[2] == group.to_string() && fields[0] != "Z" {
                members.push(pid);
            }
        }
        members
    }

    #[tokio::test]
    async fn output_is_combined_and_ends_with_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let output = run(
            &settings(dir.path()),
            args("echo out; echo err >&2; pwd; exit 3"),
            &CancellationToken::new(),
        )
        .await;
        let workspace = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            output.text,
            format!("out\nerr\n{}\n[exit code: 3]", workspace.display())
        );
        assert!(output.is_error);
    }

    #[tokio::test]
    async fn the_environment_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        // Cargo runs tests with CARGO_MANIFEST_DIR set; a command must not see it,
        // nor anything else of the runner's environment.
        assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
        let output = run(
            &settings(dir.path()),
            args("echo \"home=$HOME manifest=$CARGO_MANIFEST_DIR lang=$LANG\""),
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(
            output.text,
            format!(
                "home={} manifest= lang=C.UTF-8\n[exit code: 0]",
                dir.path().display()
            )
        );
    }

    #[tokio::test]
    async fn a_timeout_kills_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let output = run(
            &settings(dir.path()),
            BashArgs {
                command: "echo before; sleep 30".into(),
                timeout_ms: Some(300),
            },
            &CancellationToken::new(),
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(output.is_error);
        assert!(
            output.text.starts_with("before\n[timed out after 300 ms"),
            "{}",
            output.text
        );
    }

    #[tokio::test]
    async fn abort_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        // The shell records its process group id (its own pid), then starts a
        // background sleeper and a foreground one.
        let command = "echo $$ > group.txt; sleep 300 & sleep 300; wait";
        let task = {
            let settings = settings(dir.path());
            let cancel = cancel.clone();
            tokio::spawn(async move { run(&settings, args(command), &cancel).await })
        };
        let group_file = dir.path().join("group.txt");
        let group = loop {
            if let Ok(text) = std::fs::read_to_string(&group_file)
                && let Ok(group) = text.trim().parse::<i32>()
            {
                break group;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Wait until both sleepers run, so the group has three live members.
        for _ in 0..100 {
            if live_members(group).len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            live_members(group).len() >= 3,
            "the group should be running: {:?}",
            live_members(group)
        );

        cancel.cancel();
        let output = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert!(output.is_error);
        assert!(output.text.contains("[aborted"), "{}", output.text);
        assert_eq!(
            live_members(group),
            Vec::<i32>::new(),
            "every process of the group must be dead"
        );
    }

    #[tokio::test]
    async fn a_background_process_does_not_hold_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let output = run(
            &settings(dir.path()),
            args("sleep 5 & echo started"),
            &CancellationToken::new(),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert!(output.text.starts_with("started\n"), "{}", output.text);
        assert!(output.text.ends_with("[exit code: 0]"), "{}", output.text);
    }
}
