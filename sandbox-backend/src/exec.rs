//! Running one command in a sandbox: checking the request ([`ExecPlan`]), driving the
//! process ([`run`]), and gathering a whole result for `?stream=false` ([`collect`]).
//!
//! Provider-independent: a provider turns an [`ExecPlan`] into a host command (or a
//! remote call) and hands back an [`ExecRun`]; the HTTP layer only sees
//! [`ExecOutput`] lines. Nothing here knows about axum or HTTP: a refused request is
//! an [`ExecRequestError`], which the HTTP edge maps to its answer.

pub mod run;
pub mod utf8;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use nightshift_protocol::sandbox::{ExecExit, ExecOutput, ExecRequest, ExecResult};
use tokio::sync::mpsc;

/// Used when neither the request nor the sandbox names a timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a single command may run.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// `?stream=false` keeps at most this much of each of stdout and stderr.
pub const MAX_COLLECTED_BYTES: usize = 8 * 1024 * 1024;

/// Why an exec request (or an environment) was refused; the HTTP edge answers each
/// with 400 `invalid_request` and this text (`crate::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecRequestError {
    #[error("`command` must not be empty")]
    EmptyCommand,
    #[error("`command` and `args` must not contain NUL bytes")]
    NulInCommand,
    #[error("`cwd` must not contain NUL bytes")]
    NulInCwd,
    #[error("`timeout_ms` must be at least 1")]
    ZeroTimeout,
    #[error("`timeout_ms` must be at most {} ms", MAX_TIMEOUT.as_millis())]
    TimeoutTooLong,
    #[error("{0:?} is not a valid environment variable name")]
    BadEnvName(String),
    #[error("the value of {0} must not contain NUL bytes")]
    NulInEnvValue(String),
}

/// A checked exec request, ready for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPlan {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Set on top of the sandbox's own environment.
    pub env: BTreeMap<String, String>,
    /// The working directory as the sandbox sees it: `None` for the workspace, else a
    /// normalized path that is either absolute or relative to the workspace.
    pub cwd: Option<String>,
    pub timeout: Duration,
    pub stdin: Option<String>,
}

impl ExecPlan {
    /// Checks `request`; `sandbox_default` is the sandbox's `default_timeout_ms`.
    pub fn from_request(
        request: ExecRequest,
        sandbox_default: Option<u64>,
    ) -> Result<ExecPlan, ExecRequestError> {
        if request.command.is_empty() {
            return Err(ExecRequestError::EmptyCommand);
        }
        if request.command.contains('\0') || request.args.iter().any(|arg| arg.contains('\0')) {
            return Err(ExecRequestError::NulInCommand);
        }
        validate_env(&request.env)?;
        let cwd = match request.cwd {
            None => None,
            Some(cwd) if cwd.contains('\0') => return Err(ExecRequestError::NulInCwd),
            Some(cwd) if cwd.trim().is_empty() || cwd == "." => None,
            Some(cwd) => Some(cwd),
        };
        let timeout_ms = request.timeout_ms.or(sandbox_default);
        let timeout = match timeout_ms {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err(ExecRequestError::ZeroTimeout),
            Some(ms) if Duration::from_millis(ms) > MAX_TIMEOUT => {
                return Err(ExecRequestError::TimeoutTooLong);
            }
            Some(ms) => Duration::from_millis(ms),
        };
        let mut argv = vec![request.command];
        argv.extend(request.args);
        Ok(ExecPlan {
            argv,
            env: request.env,
            cwd,
            timeout,
            stdin: request.stdin,
        })
    }
}

/// Environment variable names a shell accepts, values without NUL bytes. Applies to
/// a sandbox's own environment and to each command's.
pub fn validate_env(env: &BTreeMap<String, String>) -> Result<(), ExecRequestError> {
    for (name, value) in env {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ExecRequestError::BadEnvName(name.clone()));
        }
        if value.contains('\0') {
            return Err(ExecRequestError::NulInEnvValue(name.clone()));
        }
    }
    Ok(())
}

/// A command that has been started. `output` yields its output and, last, exactly one
/// [`ExecOutput::Exit`]; `driver` must be polled (spawned) for anything to happen.
/// Dropping `output` kills the command: nobody is listening any more.
pub struct ExecRun {
    pub output: mpsc::Receiver<ExecOutput>,
    pub driver: BoxFuture<'static, ()>,
}

/// Reads a whole run into one [`ExecResult`], keeping at most
/// [`MAX_COLLECTED_BYTES`] of each stream.
pub async fn collect(mut output: mpsc::Receiver<ExecOutput>) -> ExecResult {
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut truncated = false;
    let mut exit = None;
    while let Some(line) = output.recv().await {
        match line {
            ExecOutput::Stdout(text) => truncated |= append_capped(&mut stdout, &text),
            ExecOutput::Stderr(text) => truncated |= append_capped(&mut stderr, &text),
            ExecOutput::Exit(end) => exit = Some(end),
        }
    }
    // A driver always ends with an exit line; if it somehow did not, say the command
    // was killed rather than invent a success.
    let exit = exit.unwrap_or(ExecExit {
        code: 137,
        timed_out: false,
        killed: true,
        duration_ms: 0,
    });
    ExecResult {
        stdout,
        stderr,
        exit,
        truncated,
    }
}

/// Appends as much of `text` as fits under the cap; `true` when something was dropped.
fn append_capped(buffer: &mut String, text: &str) -> bool {
    let room = MAX_COLLECTED_BYTES.saturating_sub(buffer.len());
    if text.len() <= room {
        buffer.push_str(text);
        return false;
    }
    let mut cut = room;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    buffer.push_str(&text[..cut]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: &str) -> ExecRequest {
        ExecRequest {
            command: command.into(),
            ..ExecRequest::default()
        }
    }

    #[test]
    fn a_plan_joins_command_and_args_and_picks_the_timeout() {
        let mut with_args = request("echo");
        with_args.args = vec!["a".into(), "b".into()];
        let plan = ExecPlan::from_request(with_args, None).unwrap();
        assert_eq!(plan.argv, ["echo", "a", "b"]);
        assert_eq!(plan.timeout, DEFAULT_TIMEOUT);

        let plan = ExecPlan::from_request(request("true"), Some(5_000)).unwrap();
        assert_eq!(plan.timeout, Duration::from_secs(5));
        let mut explicit = request("true");
        explicit.timeout_ms = Some(250);
        assert_eq!(
            ExecPlan::from_request(explicit, Some(5_000))
                .unwrap()
                .timeout,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(ExecPlan::from_request(request(""), None).is_err());
        let mut zero = request("true");
        zero.timeout_ms = Some(0);
        assert!(ExecPlan::from_request(zero, None).is_err());
        let mut huge = request("true");
        huge.timeout_ms = Some(u64::MAX);
        assert!(ExecPlan::from_request(huge, None).is_err());
        let mut bad_env = request("true");
        bad_env.env.insert("NOT-A-NAME".into(), "x".into());
        assert!(ExecPlan::from_request(bad_env, None).is_err());
    }

    #[test]
    fn env_names_follow_shell_rules() {
        let ok: BTreeMap<_, _> = [("_A1".to_string(), "v".to_string())].into();
        assert!(validate_env(&ok).is_ok());
        for name in ["", "1A", "A=B", "A B"] {
            let bad: BTreeMap<_, _> = [(name.to_string(), "v".to_string())].into();
            assert!(validate_env(&bad).is_err(), "{name:?} was accepted");
        }
    }

    #[tokio::test]
    async fn collect_caps_each_stream_and_keeps_the_exit() {
        let (sender, receiver) = mpsc::channel(8);
        let big = "x".repeat(MAX_COLLECTED_BYTES);
        sender.send(ExecOutput::Stdout("a".into())).await.unwrap();
        sender.send(ExecOutput::Stdout(big)).await.unwrap();
        sender.send(ExecOutput::Stderr("e".into())).await.unwrap();
        let exit = ExecExit {
            code: 2,
            timed_out: false,
            killed: false,
            duration_ms: 1,
        };
        sender.send(ExecOutput::Exit(exit)).await.unwrap();
        drop(sender);
        let result = collect(receiver).await;
        assert_eq!(result.stdout.len(), MAX_COLLECTED_BYTES);
        assert!(result.truncated);
        assert_eq!(result.stderr, "e");
        assert_eq!(result.exit, exit);
    }
}
