//! The agent side (`sandbox-backend __agent`), running inside a sandbox as the child
//! of bubblewrap's init. Single-threaded: it only forwards bytes.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::AsFd;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::proxy::EgressQueue;
use super::wire::{Frame, Request, read_frame, write_frame};
use crate::process::signal_group;

const READ_CHUNK: usize = 16 * 1024;
/// How long output may keep coming after a command's group was killed.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How long a `Connect` waits for the port inside the sandbox to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request line accepted.
const MAX_REQUEST_LINE: usize = 4 * 1024 * 1024;

struct State {
    env: Mutex<BTreeMap<String, String>>,
    /// Ways out for the egress proxy, offered by the backend.
    egress: mpsc::Sender<BufReader<UnixStream>>,
    egress_queue: EgressQueue,
    proxy_started: std::sync::atomic::AtomicBool,
    groups: Mutex<HashSet<u32>>,
    holders: Mutex<(usize, Instant)>,
}

impl State {
    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs the agent until the sandbox is shut down. The listening socket is standard
/// input; `args` may hold `--orphan-grace-secs N`.
pub fn main(args: &[String]) -> ExitCode {
    let grace = args
        .windows(2)
        .find(|pair| pair[0] == "--orphan-grace-secs")
        .and_then(|pair| pair[1].parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(600));
    let listener = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => std::os::unix::net::UnixListener::from(fd),
        Err(error) => {
            eprintln!("sandbox agent: no listening socket on stdin: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sandbox agent: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(listener, grace))
}

async fn serve(listener: std::os::unix::net::UnixListener, grace: Duration) -> ExitCode {
    if listener.set_nonblocking(true).is_err() {
        return ExitCode::FAILURE;
    }
    let Ok(listener) = tokio::net::UnixListener::from_std(listener) else {
        return ExitCode::FAILURE;
    };
    let (egress, egress_rx) = mpsc::channel(64);
    let state = Arc::new(State {
        env: Mutex::new(BTreeMap::new()),
        egress,
        egress_queue: Arc::new(tokio::sync::Mutex::new(egress_rx)),
        proxy_started: std::sync::atomic::AtomicBool::new(false),
        groups: Mutex::new(HashSet::new()),
        holders: Mutex::new((0, Instant::now())),
    });
    let (shutdown, mut shutdown_requested) = mpsc::channel::<()>(1);
    let mut orphan_check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(connection(stream, state.clone(), shutdown.clone()));
                }
            }
            _ = shutdown_requested.recv() => break,
            _ = orphan_check.tick() => {
                let (holders, since) = *State::lock(&state.holders);
                if holders == 0 && since.elapsed() > grace {
                    break;
                }
            }
        }
    }
    for group in State::lock(&state.groups).iter() {
        signal_group(*group, Signal::SIGKILL);
    }
    // Everything else in the sandbox too: processes that left their group (daemons,
    // the services the gateway starts in sessions of their own) would otherwise keep
    // the sandbox's PID namespace, and so the sandbox, alive after its agent ended.
    // Inside the namespace, -1 reaches every process but this one and its init. The
    // agent always runs as the sandbox's uid 1000 in a PID namespace of its own; as
    // root (never the case) it would reach the host, so it does not try.
    if !nix::unistd::getuid().is_root() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGKILL);
    }
    ExitCode::SUCCESS
}

async fn connection(stream: UnixStream, state: Arc<State>, shutdown: mpsc::Sender<()>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let request = match read_line(&mut reader, &mut line).await {
        Some(()) => serde_json::from_slice::<Request>(&line),
        None => return,
    };
    let request = match request {
        Ok(request) => request,
        Err(error) => {
            let _ = write_frame(
                reader.get_mut(),
                &Frame::Error(format!("bad request: {error}")),
            )
            .await;
            return;
        }
    };
    match request {
        Request::Ping => {
            let _ = write_frame(reader.get_mut(), &Frame::Ok).await;
        }
        Request::Configure { env, proxy_port } => {
            *State::lock(&state.env) = env;
            if let Some(port) = proxy_port
                && !state
                    .proxy_started
                    .swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                tokio::spawn(super::proxy::serve(port, state.egress_queue.clone()));
            }
            let _ = write_frame(reader.get_mut(), &Frame::Ok).await;
        }
        Request::Egress => {
            let _ = state.egress.send(reader).await;
        }
        Request::Hold => {
            {
                let mut holders = State::lock(&state.holders);
                holders.0 += 1;
            }
            let _ = write_frame(reader.get_mut(), &Frame::Ok).await;
            // Held until the backend goes away.
            let mut sink = [0u8; 64];
            while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
            let mut holders = State::lock(&state.holders);
            holders.0 = holders.0.saturating_sub(1);
            holders.1 = Instant::now();
        }
        Request::Connect { port } => connect_port(reader, port).await,
        Request::Shutdown => {
            let _ = write_frame(reader.get_mut(), &Frame::Ok).await;
            let _ = reader.get_mut().flush().await;
            let _ = shutdown.send(()).await;
        }
        Request::Spawn {
            argv,
            env,
            cwd,
            stdin,
        } => {
            let buffered = std::io::Cursor::new(reader.buffer().to_vec());
            let (read, write) = reader.into_inner().into_split();
            let reader = BufReader::new(buffered.chain(read));
            spawn(reader, write, &state, argv, env, cwd, stdin).await
        }
    }
}

/// Splices the backend's connection to `127.0.0.1:<port>` of the sandbox's own
/// loopback, after an `Ok` (or an `Error` when nothing answers in time).
async fn connect_port(mut reader: BufReader<UnixStream>, port: u16) {
    let connected = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await;
    let mut target = match connected {
        Ok(Ok(target)) => target,
        Ok(Err(error)) => {
            let message = format!("nothing answers on 127.0.0.1:{port}: {error}");
            let _ = write_frame(reader.get_mut(), &Frame::Error(message)).await;
            return;
        }
        Err(_) => {
            let message = format!("127.0.0.1:{port} did not accept within {CONNECT_TIMEOUT:?}");
            let _ = write_frame(reader.get_mut(), &Frame::Error(message)).await;
            return;
        }
    };
    let _ = target.set_nodelay(true);
    if write_frame(reader.get_mut(), &Frame::Ok).await.is_err() {
        return;
    }
    // Bytes the backend sent right after the request line are already buffered.
    let buffered = reader.buffer().to_vec();
    if !buffered.is_empty() && target.write_all(&buffered).await.is_err() {
        return;
    }
    let mut stream = reader.into_inner();
    let _ = tokio::io::copy_bidirectional(&mut stream, &mut target).await;
}

async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> Option<()> {
    use tokio::io::AsyncBufReadExt;
    let mut limited = reader.take(MAX_REQUEST_LINE as u64);
    let read = limited.read_until(b'\n', line).await.ok()?;
    (read > 0 && line.ends_with(b"\n")).then_some(())
}

#[allow(clippy::too_many_arguments)]
async fn spawn<R: AsyncRead + Unpin + Send + 'static>(
    mut reader: BufReader<R>,
    mut write: OwnedWriteHalf,
    state: &Arc<State>,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: String,
    stdin: bool,
) {
    let Some(program) = argv.first() else {
        let _ = write_frame(&mut write, &Frame::Error("empty command".into())).await;
        return;
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(State::lock(&state.env).iter())
        .envs(&env)
        .current_dir(&cwd)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let message = match error.kind() {
                std::io::ErrorKind::NotFound if !std::path::Path::new(&cwd).is_dir() => {
                    format!("the working directory {cwd} does not exist")
                }
                std::io::ErrorKind::NotFound => format!("{program}: command not found"),
                _ => format!("cannot run {program}: {error}"),
            };
            let _ = write_frame(&mut write, &Frame::Error(message)).await;
            return;
        }
    };
    let group = child.id().unwrap_or(0);
    State::lock(&state.groups).insert(group);

    // Frames from the backend: stdin and signals. The connection ending means
    // nobody wants the command any more.
    let (signals_tx, mut signals) = mpsc::channel::<Option<i32>>(4);
    let mut child_stdin = child.stdin.take();
    let (stdin_tx, mut stdin_rx) = mpsc::channel::<Vec<u8>>(8);
    tokio::spawn(async move {
        while let Some(data) = stdin_rx.recv().await {
            let Some(pipe) = child_stdin.as_mut() else {
                break;
            };
            if pipe.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut stdin_tx = Some(stdin_tx);
        loop {
            match read_frame(&mut reader).await {
                Ok(Some(Frame::Stdin(data))) => {
                    if let Some(tx) = &stdin_tx {
                        let _ = tx.send(data).await;
                    }
                }
                Ok(Some(Frame::CloseStdin)) => stdin_tx = None,
                Ok(Some(Frame::Signal(signal))) => {
                    let _ = signals_tx.send(Some(signal)).await;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    let _ = signals_tx.send(None).await;
                    return;
                }
            }
        }
    });

    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut out_buf = vec![0u8; READ_CHUNK];
    let mut err_buf = vec![0u8; READ_CHUNK];
    let mut status = None;
    let mut abandoned = false;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    loop {
        if status.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        let deadline = drain_deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => match read {
                Some(n) => {
                    if !abandoned && write_frame(&mut write, &Frame::Stdout(out_buf[..n].to_vec())).await.is_err() {
                        abandoned = true;
                        signal_group(group, Signal::SIGKILL);
                    }
                }
                None => stdout = None,
            },
            read = read_some(&mut stderr, &mut err_buf) => match read {
                Some(n) => {
                    if !abandoned && write_frame(&mut write, &Frame::Stderr(err_buf[..n].to_vec())).await.is_err() {
                        abandoned = true;
                        signal_group(group, Signal::SIGKILL);
                    }
                }
                None => stderr = None,
            },
            signal = signals.recv(), if !abandoned => match signal.flatten() {
                Some(number) => {
                    if let Ok(signal) = Signal::try_from(number) {
                        signal_group(group, signal);
                    }
                }
                None => {
                    abandoned = true;
                    signal_group(group, Signal::SIGKILL);
                }
            },
            waited = child.wait(), if status.is_none() => {
                status = Some(waited);
                // What the command left in its group goes with it.
                signal_group(group, Signal::SIGKILL);
                drain_deadline = Some(tokio::time::Instant::now() + DRAIN_GRACE);
            },
            () = tokio::time::sleep_until(deadline), if drain_deadline.is_some() => break,
        }
    }
    State::lock(&state.groups).remove(&group);
    if abandoned {
        return;
    }
    let (code, signaled) = match status {
        Some(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => (code, false),
                (None, Some(signal)) => (128 + signal, true),
                (None, None) => (-1, false),
            }
        }
        _ => (-1, false),
    };
    let _ = write_frame(&mut write, &Frame::Exit { code, signaled }).await;
    let _ = write.flush().await;
}

/// Reads some bytes from an open pipe; `None` at its end. A closed pipe never
/// resolves.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buffer: &mut [u8]) -> Option<usize> {
    match pipe {
        None => std::future::pending().await,
        Some(pipe) => match pipe.read(buffer).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
    }
}
