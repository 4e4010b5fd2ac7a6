//! Drives one host process for an exec: streams its output as [`ExecOutput`] lines,
//! enforces the timeout, and kills its whole process group when it times out, when the
//! sandbox stops, or when nobody reads the output any more.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures::FutureExt;
use nightshift_protocol::sandbox::{ExecExit, ExecOutput};
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ExecRun;
use super::utf8::Utf8Chunker;
use crate::process::signal_group;

/// How long output may keep arriving after the command's process group is gone.
/// Only a process that escaped the group can hold a pipe open that long.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Lines buffered between the process and a slow reader before the process is made to
/// wait (the pipe fills up and its writes block).
const OUTPUT_BUFFER_LINES: usize = 64;
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Exited,
    TimedOut,
    Cancelled,
    /// The receiver of the output was dropped (the HTTP client went away).
    Abandoned,
}

/// Starts `command` (program, arguments, environment and working directory already
/// set) in a process group of its own and returns the run. `cancel` kills it.
pub fn start(
    mut command: Command,
    stdin: Option<String>,
    timeout: Duration,
    cancel: CancellationToken,
) -> std::io::Result<ExecRun> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // If the driver is dropped without finishing (the runtime shuts down), the
        // command must not outlive it.
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let started = Instant::now();
    let group = child.id().unwrap_or(0);
    let (sender, output) = mpsc::channel(OUTPUT_BUFFER_LINES);

    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A separate task, so a command that never reads its input cannot stall the
        // run; the write fails with EPIPE once the command is gone.
        tokio::spawn(async move {
            let _ = pipe.write_all(input.as_bytes()).await;
        });
    }
    let stdout = child
        .stdout
        .take()
        .map(|pipe| tokio::spawn(pump(pipe, sender.clone(), ExecOutput::Stdout)));
    let stderr = child
        .stderr
        .take()
        .map(|pipe| tokio::spawn(pump(pipe, sender.clone(), ExecOutput::Stderr)));

    let driver = async move {
        let ending = tokio::select! {
            status = child.wait() => Ok((status, Ending::Exited)),
            () = tokio::time::sleep(timeout) => Err(Ending::TimedOut),
            () = cancel.cancelled() => Err(Ending::Cancelled),
            () = sender.closed() => Err(Ending::Abandoned),
        };
        let (status, ending) = match ending {
            Ok(done) => done,
            Err(ending) => {
                signal_group(group, Signal::SIGKILL);
                (child.wait().await, ending)
            }
        };
        // Whatever the command left running in its group goes with it, so no stray
        // process keeps the pipes (and this run) open.
        signal_group(group, Signal::SIGKILL);
        for pump in [stdout, stderr].into_iter().flatten() {
            let abort = pump.abort_handle();
            if tokio::time::timeout(DRAIN_GRACE, pump).await.is_err() {
                abort.abort();
            }
        }
        let exit = exit_of(status, ending, started.elapsed());
        if ending == Ending::TimedOut {
            tracing::debug!(group, "exec timed out and was killed");
        }
        let _ = sender.send(ExecOutput::Exit(exit)).await;
    };
    Ok(ExecRun {
        output,
        driver: driver.boxed(),
    })
}

/// Copies one pipe into output lines until it ends or nobody listens.
async fn pump<R>(mut pipe: R, sender: mpsc::Sender<ExecOutput>, line: fn(String) -> ExecOutput)
where
    R: AsyncRead + Unpin,
{
    let mut chunker = Utf8Chunker::default();
    let mut buffer = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let read = match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let text = chunker.push(&buffer[..read]);
        if !text.is_empty() && sender.send(line(text)).await.is_err() {
            return;
        }
    }
    let rest = chunker.finish();
    if !rest.is_empty() {
        let _ = sender.send(line(rest)).await;
    }
}

fn exit_of(status: std::io::Result<ExitStatus>, ending: Ending, elapsed: Duration) -> ExecExit {
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let timed_out = ending == Ending::TimedOut;
    match status {
        Ok(status) => {
            let signal = status.signal();
            // The shell convention: a command ended by signal N exits with 128 + N.
            let code = status
                .code()
                .unwrap_or_else(|| 128 + signal.unwrap_or(Signal::SIGKILL as i32));
            ExecExit {
                code,
                timed_out,
                killed: signal.is_some() || ending != Ending::Exited,
                duration_ms,
            }
        }
        Err(error) => {
            tracing::warn!(%error, "could not wait for an exec'd command");
            ExecExit {
                code: -1,
                timed_out,
                killed: ending != Ending::Exited,
                duration_ms,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::collect;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    async fn run(
        command: Command,
        stdin: Option<&str>,
        timeout: Duration,
    ) -> nightshift_protocol::sandbox::ExecResult {
        let run = start(
            command,
            stdin.map(String::from),
            timeout,
            CancellationToken::new(),
        )
        .unwrap();
        tokio::spawn(run.driver);
        collect(run.output).await
    }

    #[tokio::test]
    async fn reports_output_and_exit_code() {
        let result = run(
            shell("echo out; echo err >&2; exit 7"),
            None,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(result.stdout, "out\n");
        assert_eq!(result.stderr, "err\n");
        assert_eq!(result.exit.code, 7);
        assert!(!result.exit.killed && !result.exit.timed_out);
    }

    #[tokio::test]
    async fn feeds_stdin_then_closes_it() {
        let result = run(Command::new("cat"), Some("hello"), Duration::from_secs(10)).await;
        assert_eq!(result.stdout, "hello");
        assert_eq!(result.exit.code, 0);
    }

    #[tokio::test]
    async fn a_timeout_kills_the_command_and_its_children() {
        let started = Instant::now();
        let result = run(
            shell("sleep 30 & sleep 30"),
            None,
            Duration::from_millis(300),
        )
        .await;
        assert!(result.exit.timed_out && result.exit.killed);
        assert_eq!(result.exit.code, 137);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the background sleep kept the run open"
        );
    }

    #[tokio::test]
    async fn cancelling_kills_the_run() {
        let cancel = CancellationToken::new();
        let run = start(
            shell("sleep 30"),
            None,
            Duration::from_secs(60),
            cancel.clone(),
        )
        .unwrap();
        tokio::spawn(run.driver);
        cancel.cancel();
        let result = tokio::time::timeout(Duration::from_secs(5), collect(run.output))
            .await
            .unwrap();
        assert!(result.exit.killed && !result.exit.timed_out);
    }
}
