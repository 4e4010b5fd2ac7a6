//! Two small byte bridges that run inside a sandbox, started through the runner's
//! command wrapper like any other command, so they live in the sandbox's network
//! namespace. They let the runner (on the host) and a service inside the sandbox
//! (OpenCode) talk without either listening on a host TCP port the sandbox could
//! reach:
//!
//! - `sandbox-backend __connect <port>`: connects to `127.0.0.1:<port>` inside the
//!   sandbox and copies standard input to it and its answers to standard output. The
//!   runner runs one per connection to OpenCode's HTTP server.
//! - `sandbox-backend __listen <unix socket>`: listens on a fresh port of the
//!   sandbox's loopback, prints the port as its first line, and forwards every
//!   connection to the unix socket (one the runner serves, bound read-only into the
//!   sandbox under `/run/nightshift`). OpenCode's SDKs speak HTTP over TCP only; this
//!   is how they reach the runner's LLM key proxy.
//!
//! Both end when their standard input closes (`__listen`) or either side of the copy
//! ends (`__connect`), so they go away with the runner that started them.

use std::process::ExitCode;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

/// `__connect <port>`.
pub fn connect_main(args: &[String]) -> ExitCode {
    let Some(port) = args.first().and_then(|port| port.parse::<u16>().ok()) else {
        eprintln!("sandbox-backend __connect: usage: __connect <port>");
        return ExitCode::from(2);
    };
    run(async move {
        let stream = match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("sandbox-backend __connect: 127.0.0.1:{port}: {error}");
                return ExitCode::from(1);
            }
        };
        let (mut from_socket, mut to_socket) = stream.into_split();
        let upstream = tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let _ = tokio::io::copy(&mut stdin, &mut to_socket).await;
            let _ = to_socket.shutdown().await;
        });
        // The answer ending ends the bridge: an HTTP client may keep its side open.
        let mut stdout = tokio::io::stdout();
        let _ = tokio::io::copy(&mut from_socket, &mut stdout).await;
        let _ = stdout.flush().await;
        upstream.abort();
        ExitCode::SUCCESS
    })
}

/// `__listen <unix socket>`.
pub fn listen_main(args: &[String]) -> ExitCode {
    let Some(socket) = args.first().cloned() else {
        eprintln!("sandbox-backend __listen: usage: __listen <unix socket>");
        return ExitCode::from(2);
    };
    run(async move {
        let listener = match TcpListener::bind(("127.0.0.1", 0)).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("sandbox-backend __listen: cannot listen on loopback: {error}");
                return ExitCode::from(1);
            }
        };
        let port = match listener.local_addr() {
            Ok(address) => address.port(),
            Err(error) => {
                eprintln!("sandbox-backend __listen: {error}");
                return ExitCode::from(1);
            }
        };
        let mut stdout = tokio::io::stdout();
        if stdout
            .write_all(format!("{port}\n").as_bytes())
            .await
            .and(stdout.flush().await)
            .is_err()
        {
            return ExitCode::from(1);
        }
        // Standard input closing means whoever started the bridge is gone.
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let mut sink = String::new();
        loop {
            tokio::select! {
                read = stdin.read_line(&mut sink) => {
                    if matches!(read, Ok(0) | Err(_)) {
                        return ExitCode::SUCCESS;
                    }
                    sink.clear();
                }
                accepted = listener.accept() => {
                    let Ok((client, _)) = accepted else { continue };
                    let socket = socket.clone();
                    tokio::spawn(async move {
                        let Ok(mut upstream) = UnixStream::connect(&socket).await else {
                            return;
                        };
                        let mut client = client;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    });
                }
            }
        }
    })
}

fn run(future: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(future),
        Err(error) => {
            eprintln!("sandbox-backend: {error}");
            ExitCode::FAILURE
        }
    }
}
