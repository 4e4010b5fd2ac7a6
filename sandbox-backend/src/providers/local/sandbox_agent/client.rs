//! The backend's side of an agent connection: turning a spawn into an [`ExecRun`]
//! (streamed output, timeout, cancellation, dropped receivers), and the small
//! requests (ping, configure, hold, shutdown).

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::FutureExt;
use nightshift_protocol::sandbox::{ExecExit, ExecOutput};
use nix::sys::signal::Signal;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::{Frame, Request, read_frame, write_frame, write_request};
use crate::exec::ExecRun;
use crate::exec::utf8::Utf8Chunker;

/// How long a small request (ping, configure, shutdown) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// After a kill, how long the agent gets to report the exit.
const KILL_REPORT_TIMEOUT: Duration = Duration::from_secs(10);
const OUTPUT_BUFFER_LINES: usize = 64;

/// Connects to an agent's socket. Paths longer than a unix socket address allows
/// are reached through `/proc/self/fd/<dir fd>/<name>`.
pub async fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let text = socket.as_os_str().len();
    if text < 100 {
        return UnixStream::connect(socket).await;
    }
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return UnixStream::connect(socket).await;
    };
    let dir = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    let stream = UnixStream::connect(&short).await;
    drop(dir);
    stream
}

/// Binds a listening socket at `socket` (same long-path rule as [`connect`]).
pub fn bind(socket: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    let _ = std::fs::remove_file(socket);
    if socket.as_os_str().len() < 100 {
        return std::os::unix::net::UnixListener::bind(socket);
    }
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return std::os::unix::net::UnixListener::bind(socket);
    };
    let dir = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    let listener = std::os::unix::net::UnixListener::bind(&short);
    drop(dir);
    listener
}

/// Sends a request that is answered with one `Ok` frame.
pub async fn simple(socket: &Path, request: &Request) -> Result<(), String> {
    let attempt = async {
        let mut stream = connect(socket).await.map_err(|error| error.to_string())?;
        write_request(&mut stream, request)
            .await
            .map_err(|error| error.to_string())?;
        match read_frame(&mut stream).await {
            Ok(Some(Frame::Ok)) => Ok(()),
            Ok(Some(Frame::Error(message))) => Err(message),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(error) => Err(error.to_string()),
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err("the sandbox agent did not answer".into()))
}

/// Opens the connection that keeps the agent from ending its sandbox as an orphan.
pub async fn hold(socket: &Path) -> Result<UnixStream, String> {
    let attempt = async {
        let mut stream = connect(socket).await.map_err(|error| error.to_string())?;
        write_request(&mut stream, &Request::Hold)
            .await
            .map_err(|error| error.to_string())?;
        match read_frame(&mut stream).await {
            Ok(Some(Frame::Ok)) => Ok(stream),
            other => Err(format!("unexpected answer {other:?}")),
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err("the sandbox agent did not answer".into()))
}

/// Opens a connection to `127.0.0.1:<port>` inside the sandbox through its agent:
/// once this returns, the stream carries that socket's bytes both ways.
pub async fn connect_port(socket: &Path, port: u16) -> Result<UnixStream, String> {
    let attempt = async {
        let mut stream = connect(socket).await.map_err(|error| error.to_string())?;
        write_request(&mut stream, &Request::Connect { port })
            .await
            .map_err(|error| error.to_string())?;
        // `read_frame` reads exactly the frame: what follows is the port's bytes.
        match read_frame(&mut stream).await {
            Ok(Some(Frame::Ok)) => Ok(stream),
            Ok(Some(Frame::Error(message))) => Err(message),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(error) => Err(error.to_string()),
        }
    };
    // The agent's own connect timeout is shorter: this one covers a stuck agent.
    tokio::time::timeout(REQUEST_TIMEOUT * 2, attempt)
        .await
        .unwrap_or_else(|_| Err("the sandbox agent did not answer".into()))
}

/// Where a command's stdin comes from.
pub enum Stdin {
    Null,
    /// Written, then closed.
    Once(String),
    /// Each message written as it comes; the channel closing closes stdin.
    Stream(mpsc::Receiver<Vec<u8>>),
}

/// One command to start through an agent.
pub struct Spawn {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: String,
    pub stdin: Stdin,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Exited,
    TimedOut,
    Cancelled,
    Abandoned,
}

/// Starts `spawn` through the agent at `socket`. The run's output ends with exactly
/// one exit line; a timeout, `cancel` or dropping the output kills the command's
/// whole process group inside the sandbox.
pub async fn start(
    socket: &Path,
    spawn: Spawn,
    cancel: CancellationToken,
) -> std::io::Result<ExecRun> {
    let started = Instant::now();
    let mut stream = tokio::time::timeout(REQUEST_TIMEOUT, connect(socket))
        .await
        .map_err(|_| std::io::Error::other("the sandbox agent did not accept the connection"))??;
    let wants_stdin = !matches!(spawn.stdin, Stdin::Null);
    write_request(
        &mut stream,
        &Request::Spawn {
            argv: spawn.argv,
            env: spawn.env,
            cwd: spawn.cwd,
            stdin: wants_stdin,
        },
    )
    .await?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let (sender, output) = mpsc::channel(OUTPUT_BUFFER_LINES);
    // Commands to the agent go through one task that owns the write half.
    let (control, mut control_rx) = mpsc::channel::<Frame>(8);
    let mut stdin = spawn.stdin;
    let control_for_stdin = control.clone();
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = control_rx.recv() => match frame {
                    Some(frame) => if write_frame(&mut write, &frame).await.is_err() { return },
                    None => return,
                },
            }
        }
    });
    let stdin_task = tokio::spawn(async move {
        match &mut stdin {
            Stdin::Null => {}
            Stdin::Once(text) => {
                for chunk in text.as_bytes().chunks(64 * 1024) {
                    if control_for_stdin
                        .send(Frame::Stdin(chunk.to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = control_for_stdin.send(Frame::CloseStdin).await;
            }
            Stdin::Stream(receiver) => {
                while let Some(data) = receiver.recv().await {
                    for chunk in data.chunks(64 * 1024) {
                        if control_for_stdin
                            .send(Frame::Stdin(chunk.to_vec()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                let _ = control_for_stdin.send(Frame::CloseStdin).await;
            }
        }
    });
    let timeout = spawn.timeout;
    let driver = async move {
        let mut stdout = Utf8Chunker::default();
        let mut stderr = Utf8Chunker::default();
        let mut ending = Ending::Exited;
        let mut kill_deadline: Option<tokio::time::Instant> = None;
        let sleep = tokio::time::sleep(timeout);
        tokio::pin!(sleep);
        let exit = loop {
            let kill_wait = async {
                match kill_deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                frame = read_frame(&mut read) => match frame {
                    Ok(Some(Frame::Stdout(data))) => {
                        let text = stdout.push(&data);
                        if !text.is_empty() && sender.send(ExecOutput::Stdout(text)).await.is_err() && ending == Ending::Exited {
                            ending = Ending::Abandoned;
                            break None;
                        }
                    }
                    Ok(Some(Frame::Stderr(data))) => {
                        let text = stderr.push(&data);
                        if !text.is_empty() && sender.send(ExecOutput::Stderr(text)).await.is_err() && ending == Ending::Exited {
                            ending = Ending::Abandoned;
                            break None;
                        }
                    }
                    Ok(Some(Frame::Exit { code, signaled })) => break Some((code, signaled)),
                    Ok(Some(Frame::Error(message))) => {
                        let _ = sender.send(ExecOutput::Stderr(format!("{message}\n"))).await;
                        break Some((127, false));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break None,
                },
                () = &mut sleep, if ending == Ending::Exited => {
                    ending = Ending::TimedOut;
                    let _ = control.send(Frame::Signal(Signal::SIGKILL as i32)).await;
                    kill_deadline = Some(tokio::time::Instant::now() + KILL_REPORT_TIMEOUT);
                }
                () = cancel.cancelled(), if ending == Ending::Exited => {
                    ending = Ending::Cancelled;
                    let _ = control.send(Frame::Signal(Signal::SIGKILL as i32)).await;
                    kill_deadline = Some(tokio::time::Instant::now() + KILL_REPORT_TIMEOUT);
                }
                () = sender.closed(), if ending == Ending::Exited => {
                    ending = Ending::Abandoned;
                    break None;
                }
                () = kill_wait => break None,
            }
        };
        // Dropping the connection makes the agent kill whatever is left.
        writer.abort();
        stdin_task.abort();
        drop(read);
        if ending == Ending::Abandoned {
            return;
        }
        for (chunker, line) in [
            (stdout, ExecOutput::Stdout as fn(String) -> ExecOutput),
            (stderr, ExecOutput::Stderr),
        ] {
            let rest = chunker.finish();
            if !rest.is_empty() {
                let _ = sender.send(line(rest)).await;
            }
        }
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (code, signaled) = exit.unwrap_or((128 + Signal::SIGKILL as i32, true));
        let _ = sender
            .send(ExecOutput::Exit(ExecExit {
                code,
                timed_out: ending == Ending::TimedOut,
                killed: signaled || ending != Ending::Exited,
                duration_ms,
            }))
            .await;
    };
    Ok(ExecRun {
        output,
        driver: driver.boxed(),
    })
}

/// Asks the agent to end the sandbox; `Ok` once it acknowledged.
pub async fn shutdown(socket: &Path) -> Result<(), String> {
    simple(socket, &Request::Shutdown).await
}

/// Flushes and closes a stream (helper for callers holding one).
pub async fn close(mut stream: UnixStream) {
    let _ = stream.shutdown().await;
}
