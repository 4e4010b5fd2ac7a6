//! Running git inside the session's sandbox, never in the runner's own context: a
//! repository's config and hooks are written by whoever controls the sandbox, so
//! git reads them only where it can do no more harm than the agent already can.
//!
//! Every command runs as `command_wrapper ++ ["env", <git settings>, "git", ...]`
//! (plain `env ... git` in the workspace without a wrapper), with a timeout, and its
//! output is cut at a limit: it is the sandbox's output, read as hostile.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Error output kept (for the message of a failed command).
const MAX_STDERR: usize = 8 * 1024;

/// The settings every git command gets. Git never prompts (a credential the runner
/// refuses or cannot get fails the command at once instead of waiting for a
/// terminal), and the remote is always reached through the sandbox's way out: the
/// session's repository is never inside the sandbox, so `NO_PROXY` (which names the
/// sandbox's own loopback) must not send git there.
const GIT_ENV: &[&str] = &[
    "-u",
    "GIT_ASKPASS",
    "-u",
    "SSH_ASKPASS",
    "GIT_TERMINAL_PROMPT=0",
    "GIT_PAGER=cat",
    "LC_ALL=C",
    "NO_PROXY=",
    "no_proxy=",
];

/// How git commands reach the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxGit {
    /// Argv prefix that runs a command inside the sandbox in its workspace; empty
    /// for "run here, in `workspace_dir`".
    pub wrapper: Vec<String>,
    /// The workspace on the runner's side (the working directory without a wrapper).
    pub workspace_dir: PathBuf,
    /// HOME without a wrapper (the sandbox gives its own otherwise).
    pub home: String,
}

/// What one git command did.
#[derive(Debug, Clone, Default)]
pub struct GitOutput {
    pub success: bool,
    pub stdout: Vec<u8>,
    /// Standard output went past the limit and was cut.
    pub truncated: bool,
    pub stderr: String,
}

impl GitOutput {
    /// Standard output as text (lossy), trimmed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }

    /// The last lines of the error output, for a message.
    pub fn error(&self) -> String {
        let text = self.stderr.trim();
        let start = text.len().saturating_sub(1000);
        let start = (start..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }
}

impl SandboxGit {
    /// Runs `git args...`, keeping at most `max_stdout` bytes of its output; `Err`
    /// when it cannot start or runs past `timeout` (it is killed then).
    pub async fn run(
        &self,
        args: &[&str],
        max_stdout: usize,
        timeout: Duration,
    ) -> Result<GitOutput, String> {
        let mut command = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg("env");
                command
            }
            None => {
                let mut command = Command::new("env");
                command
                    .env_clear()
                    .env("PATH", SEARCH_PATH)
                    .env("HOME", &self.home);
                command
            }
        };
        command
            .args(GIT_ENV)
            .arg("git")
            .args(args)
            .current_dir(&self.workspace_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start git: {error}"))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("git has no pipes".into());
        };
        let work = async {
            let ((stdout, truncated), (stderr, _)) = tokio::join!(
                read_bounded(stdout, max_stdout),
                read_bounded(stderr, MAX_STDERR)
            );
            let status = child.wait().await;
            (status, stdout, truncated, stderr)
        };
        match tokio::time::timeout(timeout, work).await {
            Err(_) => Err(format!(
                "git {} took longer than {timeout:?}",
                args.first().unwrap_or(&"")
            )),
            Ok((status, stdout, truncated, stderr)) => Ok(GitOutput {
                success: status.is_ok_and(|status| status.success()),
                stdout,
                truncated,
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            }),
        }
    }

    /// Runs `git args...` and returns its output as text, or its error output as
    /// the reason it failed.
    pub async fn checked(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let output = self.run(args, 64 * 1024, timeout).await?;
        if output.success {
            Ok(output.text())
        } else {
            Err(format!(
                "git {} failed: {}",
                args.first().unwrap_or(&""),
                output.error()
            ))
        }
    }
}

/// Reads everything, keeping the first `limit` bytes (the rest is drained so the
/// writer never blocks).
async fn read_bounded(mut reader: impl AsyncRead + Unpin, limit: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let room = limit.saturating_sub(kept.len());
                if read > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buffer[..read.min(room)]);
            }
        }
    }
    (kept, truncated)
}
