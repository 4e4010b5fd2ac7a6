//! One shape for running commands on a remote provider: the provider implements
//! [`RemoteShell`] (start one shell command line in a sandbox, feed its input, stream
//! its output and exit code), and everything else is written here once: the working
//! directory and environment, stdin from the plan and from a stream, the timeout and
//! cancellation, killing the command's process group through a second command, and
//! the commands the files API runs.
//!
//! Must not know any provider's wire format; the provider files hold only that.

use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::stream::BoxStream;
use nightshift_protocol::sandbox::ExecExit;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{
    RemoteEvent, collect_raw, command_line, drive, kill_command, run_id, with_default_cwd,
};
use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;
use crate::providers::{ProviderError, RunnerPlacement, SandboxSpec, StdinStream};

/// A command to start: one line for `sh -c`.
#[derive(Debug, Clone)]
pub struct ShellCommand {
    pub line: String,
    /// How long the backend lets it run (a provider may give the service a backstop).
    pub timeout: Duration,
    /// Whether its input is a stream that stays open (a background process).
    pub interactive: bool,
}

impl ShellCommand {
    /// `sh -c <line>`, for services that take an argv.
    pub fn argv(&self) -> Vec<String> {
        vec!["sh".into(), "-c".into(), self.line.clone()]
    }
}

/// The input side of a started command.
#[async_trait]
pub trait RemoteInput: Send {
    async fn write(&mut self, bytes: Vec<u8>) -> Result<(), ProviderError>;
    /// End of input: the command reads end-of-file.
    async fn close(&mut self);
    /// Called when the run is killed, after or instead of `close`, for services that
    /// can signal the command they started (the process-group kill follows anyway).
    async fn interrupt(&mut self) {}
}

/// A started command.
pub struct Opened {
    pub input: Box<dyn RemoteInput>,
    /// Output in order, then exactly one [`RemoteEvent::Exit`] (or an error).
    pub events: BoxStream<'static, Result<RemoteEvent, ProviderError>>,
}

/// What a remote provider must do to run commands: start one in a sandbox.
#[async_trait]
pub trait RemoteShell: Clone + Send + Sync + 'static {
    /// Where the workspace is inside the provider's sandboxes.
    fn workspace(&self) -> &str;
    async fn open(
        &self,
        sandbox: &SandboxSpec,
        command: ShellCommand,
    ) -> Result<Opened, ProviderError>;
}

/// How long one attempt at killing a run may take, and how many are made: a sandbox
/// whose process budget a fork bomb has used up may refuse to start the kill until
/// one of the bomb's processes ends.
const KILL_ATTEMPT: Duration = Duration::from_secs(10);
const KILL_ATTEMPTS: u32 = 50;

/// Starts `plan` in `sandbox` through `shell`: its input is the plan's stdin, then
/// `stdin` when given (end of input at once otherwise).
pub async fn start<S: RemoteShell>(
    shell: &S,
    sandbox: &SandboxSpec,
    plan: ExecPlan,
    stdin: Option<StdinStream>,
    cancel: CancellationToken,
) -> Result<ExecRun, ProviderError> {
    let plan = with_default_cwd(sandbox, plan);
    let run = run_id();
    let command = ShellCommand {
        line: command_line(shell.workspace(), &sandbox.env, &plan, &run),
        timeout: plan.timeout,
        interactive: stdin.is_some(),
    };
    let Opened { mut input, events } = shell.open(sandbox, command).await?;

    let (interrupt, interrupted) = oneshot::channel::<()>();
    let fixed = plan.stdin.clone();
    tokio::spawn(async move {
        let feed = async {
            if let Some(text) = fixed.filter(|text| !text.is_empty())
                && input.write(text.into_bytes()).await.is_err()
            {
                return;
            }
            if let Some(mut stream) = stdin {
                while let Some(bytes) = stream.recv().await {
                    if input.write(bytes).await.is_err() {
                        return;
                    }
                }
            }
            input.close().await;
            // Keep the input for a later interrupt.
            std::future::pending::<()>().await;
        };
        let killed = tokio::select! {
            _ = feed => false,
            // The killer sends when it runs; dropped unsent when the run ended.
            result = interrupted => result.is_ok(),
        };
        if killed {
            input.interrupt().await;
        }
    });

    let killer_shell = shell.clone();
    let killer_sandbox = sandbox.clone();
    let kill: super::Killer = Box::new(move || {
        async move {
            let _ = interrupt.send(());
            kill_group(&killer_shell, &killer_sandbox, &run).await;
        }
        .boxed()
    });
    Ok(drive(events, kill, plan.timeout, cancel))
}

/// Kills run `run`'s process group with a second command, again until that command
/// could run and exited 0.
async fn kill_group<S: RemoteShell>(shell: &S, sandbox: &SandboxSpec, run: &str) {
    let command = ShellCommand {
        line: kill_command(run),
        timeout: KILL_ATTEMPT,
        interactive: false,
    };
    for _ in 0..KILL_ATTEMPTS {
        if let Ok(Opened { mut input, events }) = shell.open(sandbox, command.clone()).await {
            input.close().await;
            let ended = tokio::time::timeout(KILL_ATTEMPT, exit_of(events)).await;
            if let Ok(Some(0)) = ended {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!(sandbox = %sandbox.id, "could not kill a command's process group");
}

/// The exit code at the end of `events`, if one came.
async fn exit_of(
    mut events: BoxStream<'static, Result<RemoteEvent, ProviderError>>,
) -> Option<i32> {
    use futures::StreamExt;
    while let Some(event) = events.next().await {
        match event {
            Ok(RemoteEvent::Exit(code)) => return Some(code),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Runs `plan` to its end without input: stdout, stderr and the exit.
pub async fn run_to_end<S: RemoteShell>(
    shell: &S,
    sandbox: &SandboxSpec,
    plan: ExecPlan,
) -> Result<(String, String, ExecExit), ProviderError> {
    let run = start(shell, sandbox, plan, None, CancellationToken::new()).await?;
    Ok(collect_raw(run).await)
}

/// A file of the workspace, read through a command (`base64`), confined to the
/// workspace by the sandbox's own `realpath`.
pub async fn read_file<S: RemoteShell>(
    shell: &S,
    sandbox: &SandboxSpec,
    path: &WorkspacePath,
) -> Result<Vec<u8>, ProviderError> {
    let plan = super::read_file_plan(shell.workspace(), path);
    let (stdout, stderr, exit) = run_to_end(shell, sandbox, plan).await?;
    super::read_file_result(path, &stdout, &stderr, &exit)
}

/// Writes a file of the workspace through a command, confined as [`read_file`].
pub async fn write_file<S: RemoteShell>(
    shell: &S,
    sandbox: &SandboxSpec,
    path: &WorkspacePath,
    contents: &[u8],
) -> Result<(), ProviderError> {
    let plan = super::write_file_plan(shell.workspace(), path, contents);
    let (_, stderr, exit) = run_to_end(shell, sandbox, plan).await?;
    super::file_error(path, &stderr, &exit)
}

/// Makes sure the workspace exists in a new sandbox (an image may not have it).
pub async fn make_workspace<S: RemoteShell>(
    shell: &S,
    sandbox: &SandboxSpec,
) -> Result<(), ProviderError> {
    let mkdir = ExecPlan {
        argv: vec!["mkdir".into(), "-p".into(), shell.workspace().to_string()],
        env: Default::default(),
        cwd: Some("/".into()),
        timeout: super::CALL_TIMEOUT,
        stdin: None,
    };
    let (_, stderr, exit) = run_to_end(shell, sandbox, mkdir).await?;
    if exit.code != 0 {
        return Err(ProviderError::Unavailable(format!(
            "cannot create the workspace in the sandbox: {}",
            stderr.trim()
        )));
    }
    Ok(())
}

/// Where a runner would work: the workspace, the same inside as out (Modal and
/// Railway sandboxes cannot host a session's runner yet).
pub fn placement(workspace: &str) -> RunnerPlacement {
    RunnerPlacement {
        workspace_dir: workspace.to_string(),
        sandbox_workspace_dir: workspace.to_string(),
        command_wrapper: Vec::new(),
        // No bridge into a remote sandbox: the runner runs inside it.
        bridge: Vec::new(),
        opencode: None,
        sockets_dir: None,
        proxy: None,
        sandbox_sockets_dir: None,
        egress_credential_socket: None,
    }
}

/// The provider's record of a sandbox (its persisted handle), or an error naming
/// what is missing (`what`: "container", "Modal sandbox").
pub fn handle_of<H: DeserializeOwned>(
    sandbox: &SandboxSpec,
    what: &str,
) -> Result<H, ProviderError> {
    serde_json::from_value(sandbox.handle.0.clone()).map_err(|_| {
        ProviderError::Unavailable(format!("sandbox {} has no {what} recorded", sandbox.id))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::providers::ProviderHandle;

    /// A shell on this host: each command is `sh -c <line>` as a child process, so
    /// the skeleton's input, output, timeout and group kill are checked for real.
    #[derive(Clone, Default)]
    struct HostShell {
        lines: Arc<Mutex<Vec<String>>>,
    }

    struct ChildInput(Option<tokio::process::ChildStdin>);

    #[async_trait]
    impl RemoteInput for ChildInput {
        async fn write(&mut self, bytes: Vec<u8>) -> Result<(), ProviderError> {
            let stdin = self
                .0
                .as_mut()
                .ok_or_else(|| ProviderError::Unavailable("closed".into()))?;
            stdin
                .write_all(&bytes)
                .await
                .map_err(|error| ProviderError::io("stdin", error))
        }
        async fn close(&mut self) {
            self.0 = None;
        }
    }

    #[async_trait]
    impl RemoteShell for HostShell {
        fn workspace(&self) -> &str {
            "/tmp"
        }
        async fn open(
            &self,
            _sandbox: &SandboxSpec,
            command: ShellCommand,
        ) -> Result<Opened, ProviderError> {
            self.lines.lock().unwrap().push(command.line.clone());
            let mut child = tokio::process::Command::new("sh")
                .args(["-c", &command.line])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|error| ProviderError::io("spawn", error))?;
            let input = ChildInput(child.stdin.take());
            let mut stdout = child.stdout.take().expect("piped");
            let events = futures::stream::once(async move {
                let mut bytes = Vec::new();
                let _ = stdout.read_to_end(&mut bytes).await;
                let code = child
                    .wait()
                    .await
                    .ok()
                    .and_then(|status| status.code())
                    .unwrap_or(-1);
                futures::stream::iter([Ok(RemoteEvent::Stdout(bytes)), Ok(RemoteEvent::Exit(code))])
            })
            .flatten()
            .boxed();
            Ok(Opened {
                input: Box::new(input),
                events,
            })
        }
    }

    fn sandbox() -> SandboxSpec {
        SandboxSpec {
            id: "sb".into(),
            dir: std::path::PathBuf::from("/nonexistent"),
            env: BTreeMap::new(),
            network: nightshift_protocol::sandbox::NetworkMode::None,
            handle: ProviderHandle(serde_json::json!({"container_id": "c1"})),
            template: None,
            labels: BTreeMap::new(),
            gateway: None,
            shared_record: None,
            has_runner: false,
        }
    }

    fn plan(script: &str, timeout: Duration, stdin: Option<&str>) -> ExecPlan {
        ExecPlan {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
            cwd: Some("/tmp".into()),
            timeout,
            stdin: stdin.map(String::from),
        }
    }

    #[tokio::test]
    async fn input_from_the_plan_and_the_stream_reaches_the_command() {
        let shell = HostShell::default();
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        sender.send(b"streamed\n".to_vec()).await.unwrap();
        drop(sender);
        let run = start(
            &shell,
            &sandbox(),
            plan(
                "echo $GREETING; cat",
                Duration::from_secs(10),
                Some("fixed\n"),
            ),
            Some(receiver),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let (stdout, _, exit) = collect_raw(run).await;
        assert_eq!(stdout, "hi\nfixed\nstreamed\n");
        assert_eq!(exit.code, 0);
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group_through_a_second_command() {
        let shell = HostShell::default();
        let marker = format!("/tmp/.nightshift-exec-test-{}", std::process::id());
        let script = format!("sleep 30 & echo $! > {marker}; wait");
        let (_, _, exit) = run_to_end(
            &shell,
            &sandbox(),
            plan(&script, Duration::from_millis(300), None),
        )
        .await
        .unwrap();
        assert!(exit.timed_out && exit.killed, "{exit:?}");
        let lines = shell.lines.lock().unwrap().clone();
        assert!(
            lines.len() >= 2 && lines[1].contains("kill -s KILL"),
            "{lines:?}"
        );
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = std::fs::remove_file(&marker);
        // The background `sleep` of the group is gone (or a zombie awaiting reaping).
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest.chars().next())
            .unwrap_or(None);
        assert!(matches!(state, None | Some('Z')), "{stat}");
    }

    #[test]
    fn handles_name_what_is_missing() {
        #[derive(serde::Deserialize)]
        struct Container {
            #[allow(dead_code)]
            container_id: String,
        }
        assert!(handle_of::<Container>(&sandbox(), "container").is_ok());
        let mut empty = sandbox();
        empty.handle = ProviderHandle(serde_json::Value::Null);
        let error = handle_of::<Container>(&empty, "container").err().unwrap();
        assert!(
            error.to_string().contains("no container recorded"),
            "{error}"
        );
    }
}
