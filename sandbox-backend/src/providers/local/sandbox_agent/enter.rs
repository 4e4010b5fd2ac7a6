//! `sandbox-backend enter --socket <path> [--cwd <dir>] [--env NAME=VALUE]... -- <command>...`:
//! runs a command inside a local sandbox through its agent, with this process's
//! stdin, stdout and stderr forwarded and its exit code passed on. This is the local
//! provider's `command_wrapper`: the runner (on the host) runs its tools' commands,
//! long-lived servers included, through it.
//!
//! SIGTERM, SIGINT or SIGHUP to this process are passed on to the command's process
//! group; if this process dies, the agent kills the command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

use super::client::connect;
use super::wire::{Frame, Request, read_frame, write_frame, write_request};

struct Args {
    socket: PathBuf,
    cwd: String,
    env: BTreeMap<String, String>,
    argv: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut socket = None;
    let mut cwd = crate::providers::local::sandbox_paths::SANDBOX_WORKSPACE.to_string();
    let mut env = BTreeMap::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--socket" => socket = iter.next().map(PathBuf::from),
            "--cwd" => cwd = iter.next().cloned().ok_or("--cwd needs a value")?,
            "--env" => {
                let pair = iter.next().ok_or("--env needs NAME=VALUE")?;
                let (name, value) = pair.split_once('=').ok_or("--env needs NAME=VALUE")?;
                env.insert(name.to_string(), value.to_string());
            }
            "--" => {
                let argv: Vec<String> = iter.cloned().collect();
                if argv.is_empty() {
                    return Err("no command after --".into());
                }
                return Ok(Args {
                    socket: socket.ok_or("--socket is required")?,
                    cwd,
                    env,
                    argv,
                });
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Err("usage: sandbox-backend enter --socket <path> [--cwd <dir>] [--env NAME=VALUE]... -- <command>...".into())
}

pub fn main(args: &[String]) -> ExitCode {
    let args = match parse(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("sandbox-backend enter: {message}");
            return ExitCode::from(125);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sandbox-backend enter: {error}");
            return ExitCode::from(125);
        }
    };
    let code = runtime.block_on(run(args));
    // Not waiting for the blocking stdin reader: exit right away.
    std::process::exit(code)
}

async fn run(args: Args) -> i32 {
    let mut stream = match connect(&args.socket).await {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!(
                "sandbox-backend enter: the sandbox is not running (cannot reach {}: {error})",
                args.socket.display()
            );
            return 125;
        }
    };
    let request = Request::Spawn {
        argv: args.argv,
        env: args.env,
        cwd: args.cwd,
        stdin: true,
    };
    if write_request(&mut stream, &request).await.is_err() {
        eprintln!("sandbox-backend enter: the sandbox agent went away");
        return 125;
    }
    let (mut read, write) = stream.into_split();
    let (frames, mut frames_rx) = tokio::sync::mpsc::channel::<Frame>(8);
    tokio::spawn(async move {
        let mut write = write;
        while let Some(frame) = frames_rx.recv().await {
            if write_frame(&mut write, &frame).await.is_err() {
                return;
            }
        }
    });
    let stdin_frames = frames.clone();
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stdin_frames
                        .send(Frame::Stdin(buffer[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = stdin_frames.send(Frame::CloseStdin).await;
    });
    let signal_frames = frames.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        let mut count = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => {}
            }
            count += 1;
            let signal = if count == 1 {
                Signal::SIGTERM
            } else {
                Signal::SIGKILL
            };
            let _ = signal_frames.send(Frame::Signal(signal as i32)).await;
        }
    });
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    loop {
        match read_frame(&mut read).await {
            Ok(Some(Frame::Stdout(data))) => {
                let _ = stdout.write_all(&data).await;
                let _ = stdout.flush().await;
            }
            Ok(Some(Frame::Stderr(data))) => {
                let _ = stderr.write_all(&data).await;
                let _ = stderr.flush().await;
            }
            Ok(Some(Frame::Exit { code, .. })) => return code.clamp(0, 255),
            Ok(Some(Frame::Error(message))) => {
                let _ = stderr.write_all(format!("{message}\n").as_bytes()).await;
                return 127;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                let _ = stderr
                    .write_all(b"sandbox-backend enter: the sandbox ended while the command ran\n")
                    .await;
                return 137;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_parsed() {
        let args: Vec<String> = [
            "--socket", "/s", "--env", "A=b=c", "--cwd", "/tmp", "--", "sh", "-c", "x",
        ]
        .map(String::from)
        .to_vec();
        let parsed = parse(&args).unwrap();
        assert_eq!(parsed.socket, PathBuf::from("/s"));
        assert_eq!(parsed.env["A"], "b=c");
        assert_eq!(parsed.cwd, "/tmp");
        assert_eq!(parsed.argv, ["sh", "-c", "x"]);
        assert!(parse(&["--socket".into(), "/s".into()]).is_err());
        assert!(parse(&["--", "x"].map(String::from)).is_err());
    }
}
