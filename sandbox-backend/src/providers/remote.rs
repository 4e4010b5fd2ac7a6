//! What the remote providers (Modal, Railway, Docker) share: how a command line is
//! built for a machine we reach only through an API, how a remote command's output
//! becomes an [`ExecRun`], and the files API done through commands for services that
//! have no file API of their own. [`exec`] puts these together behind the one trait a
//! provider implements ([`exec::RemoteShell`]); [`dockerfile`] turns a template into
//! Dockerfile lines for all three.
//!
//! A remote service has no "kill this exec and its children" call (Modal's control
//! plane and Docker's exec API have none; Railway's bridge signals only the direct
//! child). So every command runs under `setsid -w sh -c '...'`: the inner shell writes
//! its PID (the new process group's id) to a file named after the run, and killing
//! is a second exec of `kill -s KILL -- -<pgid>`. This needs `setsid` (util-linux) and
//! `base64` (coreutils) in the image, as Debian-based images have.

pub mod dockerfile;
pub mod exec;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use nightshift_protocol::sandbox::{ExecExit, ExecOutput};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::utf8::Utf8Chunker;
use crate::exec::{ExecPlan, ExecRun};
use crate::files::{MAX_FILE_BYTES, WorkspacePath};
use crate::providers::ProviderError;
use crate::providers::shell::shell_quote;

/// Where the workspace lives inside a remote sandbox (its image's working directory).
pub const DEFAULT_WORKSPACE: &str = "/workspace";

/// The longest any single control call (create, terminate, a GraphQL mutation) may
/// take before it is reported as the service being unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Creating a sandbox may pull an image or boot a VM.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(300);

/// The working directory of a plan inside the remote sandbox.
pub fn plan_cwd(workspace: &str, plan: &ExecPlan) -> String {
    match plan.cwd.as_deref() {
        None => workspace.to_string(),
        Some(cwd) if cwd.starts_with('/') => cwd.to_string(),
        Some(cwd) => format!("{}/{}", workspace.trim_end_matches('/'), cwd),
    }
}

/// `plan` with the sandbox's default working directory (its template's `workdir`)
/// when it names none.
pub fn with_default_cwd(sandbox: &super::SandboxSpec, mut plan: ExecPlan) -> ExecPlan {
    if plan.cwd.is_none() {
        plan.cwd = sandbox
            .template
            .as_ref()
            .and_then(|template| template.spec.workdir.clone())
            .filter(|dir| !dir.is_empty() && dir != ".");
    }
    plan
}

/// The file the run's process-group id is written to.
pub fn pid_file(run_id: &str) -> String {
    format!("/tmp/.nightshift-exec-{run_id}.pid")
}

/// The shell command line that runs `plan` in its own process group, with the
/// sandbox's environment and the plan's on top, from its working directory.
pub fn command_line(
    workspace: &str,
    sandbox_env: &BTreeMap<String, String>,
    plan: &ExecPlan,
    run_id: &str,
) -> String {
    let mut inner = format!(
        "echo $$ > {} && cd {} && exec env",
        shell_quote(&pid_file(run_id)),
        shell_quote(&plan_cwd(workspace, plan))
    );
    let mut env = sandbox_env.clone();
    env.extend(plan.env.clone());
    for (name, value) in &env {
        inner.push(' ');
        inner.push_str(&shell_quote(&format!("{name}={value}")));
    }
    for arg in &plan.argv {
        inner.push(' ');
        inner.push_str(&shell_quote(arg));
    }
    format!("exec setsid -w sh -c {}", shell_quote(&inner))
}

/// [`command_line`] as an argv for services that take one.
pub fn command_argv(
    workspace: &str,
    sandbox_env: &BTreeMap<String, String>,
    plan: &ExecPlan,
    run_id: &str,
) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        command_line(workspace, sandbox_env, plan, run_id),
    ]
}

/// The command that kills a run's whole process group; it exits 0 once it has run
/// (a group that never started or already ended included).
///
/// Until `rm`, it starts no process: a sandbox whose process budget a fork bomb has
/// used up cannot start another, so the pid file is read with `read` and the group
/// signalled with the shell's own `kill`, again while any member is left (a member
/// forked as the signal went out). It is written for dash, Debian's `sh`, whose `kill`
/// takes a negative process id only as `kill -s KILL -- -<pgid>` (`kill -KILL --
/// -<pgid>` is "Illegal number" there).
pub fn kill_command(run_id: &str) -> String {
    let file = shell_quote(&pid_file(run_id));
    format!(
        "[ -r {file} ] || exit 0; read -r pgid < {file} || exit 0; [ -n \"$pgid\" ] || exit 0; \
         n=0; while [ $n -lt 100 ] && kill -s KILL -- -\"$pgid\" 2>/dev/null; do n=$((n+1)); done; \
         rm -f {file}; exit 0"
    )
}

/// A fresh id for one run (names its pid file).
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What a remote command produced, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
}

/// Kills the remote command (and its children); called at most once.
pub type Killer = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Exited,
    TimedOut,
    Killed,
    Lost,
}

/// Turns a remote command's events into an [`ExecRun`]: output lines in order, the
/// timeout and `cancel` kill it through `kill`, and exactly one exit line ends it.
pub fn drive(
    events: BoxStream<'static, Result<RemoteEvent, ProviderError>>,
    kill: Killer,
    timeout: Duration,
    cancel: CancellationToken,
) -> ExecRun {
    let (sender, output) = mpsc::channel(64);
    let driver = run_driver(events, kill, timeout, cancel, sender).boxed();
    ExecRun { output, driver }
}

async fn run_driver(
    mut events: BoxStream<'static, Result<RemoteEvent, ProviderError>>,
    kill: Killer,
    timeout: Duration,
    cancel: CancellationToken,
    sender: mpsc::Sender<ExecOutput>,
) {
    let started = Instant::now();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut stdout = Utf8Chunker::default();
    let mut stderr = Utf8Chunker::default();
    let mut code = None;
    let ending = loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break Ending::Killed,
            _ = &mut deadline => break Ending::TimedOut,
            _ = sender.closed() => {
                kill().await;
                return;
            }
            event = events.next() => match event {
                Some(Ok(RemoteEvent::Stdout(bytes))) => {
                    let text = stdout.push(&bytes);
                    if !text.is_empty() && sender.send(ExecOutput::Stdout(text)).await.is_err() {
                        kill().await;
                        return;
                    }
                }
                Some(Ok(RemoteEvent::Stderr(bytes))) => {
                    let text = stderr.push(&bytes);
                    if !text.is_empty() && sender.send(ExecOutput::Stderr(text)).await.is_err() {
                        kill().await;
                        return;
                    }
                }
                Some(Ok(RemoteEvent::Exit(exit_code))) => {
                    code = Some(exit_code);
                    break Ending::Exited;
                }
                Some(Err(error)) => {
                    let _ = sender
                        .send(ExecOutput::Stderr(format!("sandbox provider error: {error}\n")))
                        .await;
                    break Ending::Lost;
                }
                None => break Ending::Lost,
            }
        }
    };
    for (chunker, is_stdout) in [(stdout, true), (stderr, false)] {
        let rest = chunker.finish();
        if !rest.is_empty() {
            let line = if is_stdout {
                ExecOutput::Stdout(rest)
            } else {
                ExecOutput::Stderr(rest)
            };
            let _ = sender.send(line).await;
        }
    }
    if matches!(ending, Ending::TimedOut | Ending::Killed | Ending::Lost) {
        kill().await;
    }
    let exit = ExecExit {
        code: match ending {
            Ending::Exited => code.unwrap_or(-1),
            Ending::TimedOut | Ending::Killed => 137,
            Ending::Lost => -1,
        },
        timed_out: ending == Ending::TimedOut,
        killed: matches!(ending, Ending::TimedOut | Ending::Killed),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let _ = sender.send(ExecOutput::Exit(exit)).await;
}

/// Reads a whole run: stdout as bytes-decoded text, stderr, and the exit code.
pub async fn collect_raw(run: ExecRun) -> (String, String, ExecExit) {
    let ExecRun { mut output, driver } = run;
    let driver = tokio::spawn(driver);
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut exit = None;
    while let Some(line) = output.recv().await {
        match line {
            ExecOutput::Stdout(text) => {
                if stdout.len() < 2 * MAX_FILE_BYTES {
                    stdout.push_str(&text);
                }
            }
            ExecOutput::Stderr(text) => {
                if stderr.len() < 64 * 1024 {
                    stderr.push_str(&text);
                }
            }
            ExecOutput::Exit(end) => exit = Some(end),
        }
    }
    let _ = driver.await;
    let exit = exit.unwrap_or(ExecExit {
        code: -1,
        timed_out: false,
        killed: true,
        duration_ms: 0,
    });
    (stdout, stderr, exit)
}

/// Exit codes of the file scripts.
const NOT_FOUND: i32 = 44;
const ESCAPES: i32 = 45;
const NOT_A_FILE: i32 = 46;
const TOO_LARGE: i32 = 47;

/// A shell script (run from the workspace) that prints the base64 of the regular file
/// `path` if it resolves inside the workspace.
pub fn read_file_plan(workspace: &str, path: &WorkspacePath) -> ExecPlan {
    let script = format!(
        "w=$(pwd -P) || exit 70; f={path}; \
         r=$(realpath -m -- \"$f\") || exit {ESCAPES}; \
         case \"$r\" in \"$w\"/*) ;; *) exit {ESCAPES};; esac; \
         [ -e \"$r\" ] || exit {NOT_FOUND}; \
         [ -f \"$r\" ] || exit {NOT_A_FILE}; \
         [ \"$(wc -c < \"$r\")\" -le {MAX_FILE_BYTES} ] || exit {TOO_LARGE}; \
         exec base64 -w0 -- \"$r\"",
        path = shell_quote(&path.to_string()),
    );
    file_plan(workspace, script, None)
}

/// A shell script that prints where `path` really is (every symlink resolved) if
/// that stays inside the workspace: for reading, an existing regular file; for
/// writing, a file that may be created, its parent directories made.
pub fn resolve_file_plan(workspace: &str, path: &WorkspacePath, for_write: bool) -> ExecPlan {
    let check = if for_write {
        format!(
            "d=$(dirname -- \"$r\"); mkdir -p -- \"$d\" || exit {NOT_A_FILE}; \
             rd=$(realpath -e -- \"$d\") || exit {ESCAPES}; \
             case \"$rd/\" in \"$w\"/*) ;; *) exit {ESCAPES};; esac; \
             if [ -e \"$r\" ] && [ ! -f \"$r\" ]; then exit {NOT_A_FILE}; fi;"
        )
    } else {
        format!(
            "[ -e \"$r\" ] || exit {NOT_FOUND}; [ -f \"$r\" ] || exit {NOT_A_FILE}; \
             [ \"$(wc -c < \"$r\")\" -le {MAX_FILE_BYTES} ] || exit {TOO_LARGE};"
        )
    };
    let script = format!(
        "w=$(pwd -P) || exit 70; f={path}; \
         r=$(realpath -m -- \"$f\") || exit {ESCAPES}; \
         case \"$r\" in \"$w\"/*) ;; *) exit {ESCAPES};; esac; \
         {check} printf %s \"$r\"",
        path = shell_quote(&path.to_string()),
    );
    file_plan(workspace, script, None)
}

/// A shell script that writes its stdin (base64) to `path`, creating parents, if the
/// file and its directory resolve inside the workspace.
pub fn write_file_plan(workspace: &str, path: &WorkspacePath, contents: &[u8]) -> ExecPlan {
    let script = format!(
        "w=$(pwd -P) || exit 70; f={path}; d=$(dirname -- \"$f\"); \
         r=$(realpath -m -- \"$f\") || exit {ESCAPES}; rd=$(realpath -m -- \"$d\") || exit {ESCAPES}; \
         case \"$r\" in \"$w\"/*) ;; *) exit {ESCAPES};; esac; \
         case \"$rd/\" in \"$w\"/*) ;; *) exit {ESCAPES};; esac; \
         mkdir -p -- \"$d\" || exit {NOT_A_FILE}; \
         if [ -e \"$r\" ] && [ ! -f \"$r\" ]; then exit {NOT_A_FILE}; fi; \
         base64 -d > \"$r\"",
        path = shell_quote(&path.to_string()),
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(contents);
    file_plan(workspace, script, Some(encoded))
}

fn file_plan(workspace: &str, script: String, stdin: Option<String>) -> ExecPlan {
    ExecPlan {
        argv: vec!["sh".into(), "-c".into(), script],
        env: BTreeMap::new(),
        cwd: Some(workspace.to_string()),
        timeout: Duration::from_secs(120),
        stdin,
    }
}

/// The bytes a [`read_file_plan`] run printed, or the error its exit code means.
pub fn read_file_result(
    path: &WorkspacePath,
    stdout: &str,
    stderr: &str,
    exit: &ExecExit,
) -> Result<Vec<u8>, ProviderError> {
    file_error(path, stderr, exit)?;
    base64::engine::general_purpose::STANDARD
        .decode(stdout.trim())
        .map_err(|error| {
            ProviderError::Unavailable(format!(
                "reading {path}: the sandbox sent bad data: {error}"
            ))
        })
}

/// `Ok` if a file script succeeded, else the error its exit code means.
pub fn file_error(
    path: &WorkspacePath,
    stderr: &str,
    exit: &ExecExit,
) -> Result<(), ProviderError> {
    match exit.code {
        0 => Ok(()),
        NOT_FOUND => Err(ProviderError::FileNotFound(path.to_string())),
        ESCAPES => Err(ProviderError::InvalidPath(format!(
            "{path} resolves outside the workspace"
        ))),
        NOT_A_FILE => Err(ProviderError::NotAFile(path.to_string())),
        TOO_LARGE => Err(ProviderError::InvalidRequest(format!(
            "{path} is larger than {MAX_FILE_BYTES} bytes"
        ))),
        code => Err(ProviderError::Unavailable(format!(
            "file operation on {path} failed in the sandbox (exit {code}): {}",
            stderr.trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_set_env_cwd_and_a_process_group() {
        let plan = ExecPlan {
            argv: vec!["echo".into(), "a b".into()],
            env: [("B".to_string(), "2".to_string())].into(),
            cwd: Some("sub".into()),
            timeout: Duration::from_secs(1),
            stdin: None,
        };
        let env = [("A".to_string(), "1".to_string())].into();
        let line = command_line("/workspace", &env, &plan, "r1");
        assert!(line.starts_with("exec setsid -w sh -c "), "{line}");
        assert!(line.contains("/workspace/sub"), "{line}");
        assert!(line.contains("A=1") && line.contains("B=2"), "{line}");
        assert!(line.contains("/tmp/.nightshift-exec-r1.pid"), "{line}");
    }

    /// The kill command, run by dash and bash, ends a group that ignores every
    /// catchable signal, children included.
    #[test]
    fn the_kill_command_ends_the_whole_group_in_every_shell() {
        for shell in ["dash", "bash"] {
            let run = format!("test-{shell}-{}", std::process::id());
            let plan = ExecPlan {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "trap '' TERM INT HUP; sleep 300 & sleep 300".into(),
                ],
                env: BTreeMap::new(),
                cwd: Some("/".into()),
                timeout: Duration::from_secs(1),
                stdin: None,
            };
            let mut child = std::process::Command::new(shell)
                .args(["-c", &command_line("/", &BTreeMap::new(), &plan, &run)])
                .spawn()
                .unwrap();
            let file = pid_file(&run);
            let started = Instant::now();
            while std::fs::read_to_string(&file).map_or(true, |text| text.trim().is_empty()) {
                assert!(started.elapsed() < Duration::from_secs(5), "no pid file");
                std::thread::sleep(Duration::from_millis(20));
            }
            let pgid: u32 = std::fs::read_to_string(&file)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let killed = std::process::Command::new(shell)
                .args(["-c", &kill_command(&run)])
                .status()
                .unwrap();
            assert!(killed.success(), "{shell}: {killed:?}");
            let _ = child.wait();
            // Killed members may stay zombies until whoever inherited them reaps
            // them: only living members count.
            let living = || {
                std::fs::read_dir("/proc")
                    .unwrap()
                    .filter_map(|entry| {
                        std::fs::read_to_string(entry.ok()?.path().join("stat")).ok()
                    })
                    .filter(|stat| {
                        let fields: Vec<&str> = stat
                            .rsplit_once(") ")
                            .map(|(_, rest)| rest.split(' ').collect())
                            .unwrap_or_default();
                        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
                    })
                    .count()
            };
            let checked = Instant::now();
            while living() > 0 && checked.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(living(), 0, "{shell}: the group survived");
            assert!(!std::path::Path::new(&file).exists());
        }
    }

    #[tokio::test]
    async fn the_driver_reports_a_timeout_and_kills() {
        let events = futures::stream::pending().boxed();
        let (killed_sender, killed) = tokio::sync::oneshot::channel();
        let kill: Killer = Box::new(move || {
            async move {
                let _ = killed_sender.send(());
            }
            .boxed()
        });
        let run = drive(
            events,
            kill,
            Duration::from_millis(50),
            CancellationToken::new(),
        );
        let (_, _, exit) = collect_raw(run).await;
        assert!(exit.timed_out && exit.killed && exit.code != 0);
        killed.await.unwrap();
    }

    #[tokio::test]
    async fn the_driver_keeps_order_and_the_exit_code() {
        let events = futures::stream::iter([
            Ok(RemoteEvent::Stdout(b"a".to_vec())),
            Ok(RemoteEvent::Stderr(b"b".to_vec())),
            Ok(RemoteEvent::Stdout(b"c".to_vec())),
            Ok(RemoteEvent::Exit(3)),
        ])
        .boxed();
        let run = drive(
            events,
            Box::new(|| async {}.boxed()),
            Duration::from_secs(5),
            CancellationToken::new(),
        );
        let mut output = run.output;
        tokio::spawn(run.driver);
        let mut lines = Vec::new();
        while let Some(line) = output.recv().await {
            lines.push(line);
        }
        assert_eq!(lines[0], ExecOutput::Stdout("a".into()));
        assert_eq!(lines[1], ExecOutput::Stderr("b".into()));
        assert_eq!(lines[2], ExecOutput::Stdout("c".into()));
        assert!(matches!(
            lines[3],
            ExecOutput::Exit(ExecExit { code: 3, .. })
        ));
    }
}
