//! How the runner, on the host, talks to services inside its sandbox without anything
//! listening where the sandbox could reach it: both directions go through byte
//! bridges that run inside the sandbox (`RunnerBootConfig::bridge`, the sandbox
//! backend's `__connect` and `__listen`).
//!
//! - [`Bridge::forward_into`] gives the runner a port on the host's loopback whose
//!   connections each start one `__connect <port>` inside the sandbox: the runner's
//!   HTTP client reaches OpenCode's server, which listens on the sandbox's own
//!   loopback. An `isolated` sandbox cannot reach the host's loopback, so the
//!   forwarder is the runner's alone.
//! - [`Bridge::connect`] starts one `__connect <port>` and hands the runner its pipes
//!   as one byte stream, with no listener at all: the browser tools speak HTTP and
//!   WebSocket to Chromium's DevTools in the session's sandbox this way.
//! - [`Bridge::expose_socket`] starts one `__listen <socket>` inside the sandbox: a
//!   port on the sandbox's loopback forwarded to a unix socket the runner serves in
//!   the sandbox's sockets directory. OpenCode's SDKs speak HTTP over TCP only; that
//!   is how they reach the runner's LLM key proxy.
//!
//! Depends on tokio and the standard library only.

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long `__listen` gets to say which port it listens on.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The argv prefix that runs a bridge inside the sandbox.
#[derive(Debug, Clone)]
pub struct Bridge {
    argv: Vec<String>,
}

/// A host-loopback port forwarded into the sandbox; dropping it stops it.
pub struct Forward {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forward {
    pub fn port(&self) -> u16 {
        self.address.port()
    }
}

/// A sandbox-loopback port forwarded to a unix socket; dropping it ends the bridge
/// process (its standard input closes and it is killed).
pub struct Exposed {
    port: u16,
    child: Child,
}

impl Exposed {
    /// The port, as processes inside the sandbox see it.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the bridge process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// One connection to a port on the sandbox's loopback, carried by a `__connect`
/// process's pipes; dropping it kills the process.
pub struct Piped {
    stdout: ChildStdout,
    stdin: ChildStdin,
    _child: Child,
}

impl AsyncRead for Piped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for Piped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

impl Bridge {
    /// `None` when the runner shares the sandbox's loopback (no bridge configured).
    pub fn new(argv: &[String]) -> Option<Bridge> {
        (!argv.is_empty()).then(|| Bridge {
            argv: argv.to_vec(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// A port on the host's loopback that leads to `port` on the sandbox's loopback.
    pub async fn forward_into(&self, port: u16) -> std::io::Result<Forward> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let bridge = self.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let bridge = bridge.clone();
                tokio::spawn(async move {
                    if let Err(error) = bridge.carry(client, port).await {
                        tracing::debug!(%error, port, "a connection into the sandbox failed");
                    }
                });
            }
        });
        Ok(Forward { address, task })
    }

    /// One connection to `port` on the sandbox's loopback. A port nothing listens
    /// on shows as a stream that ends at once (the bridge exits).
    pub async fn connect(&self, port: u16) -> std::io::Result<Piped> {
        let mut child = self.command(&["__connect", &port.to_string()]).spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the bridge has no pipes"));
        };
        Ok(Piped {
            stdout,
            stdin,
            _child: child,
        })
    }

    /// Carries one connection through a `__connect` bridge.
    async fn carry(&self, client: TcpStream, port: u16) -> std::io::Result<()> {
        let mut child = self.command(&["__connect", &port.to_string()]).spawn()?;
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the bridge has no pipes"));
        };
        let (mut from_client, mut to_client) = client.into_split();
        let upstream = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
            let _ = stdin.shutdown().await;
        });
        let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
        let _ = to_client.shutdown().await;
        upstream.abort();
        let _ = child.kill().await;
        Ok(())
    }

    /// A port on the sandbox's loopback that leads to the unix socket
    /// `sandbox_socket` (a path as the sandbox sees it).
    pub async fn expose_socket(&self, sandbox_socket: &str) -> std::io::Result<Exposed> {
        let mut child = self.command(&["__listen", sandbox_socket]).spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("the bridge has no stdout"))?;
        let mut line = String::new();
        let read =
            tokio::time::timeout(LISTEN_TIMEOUT, BufReader::new(stdout).read_line(&mut line)).await;
        let port = match read {
            Ok(Ok(_)) => line.trim().parse::<u16>().ok(),
            _ => None,
        };
        match port {
            Some(port) if port > 0 => Ok(Exposed { port, child }),
            _ => {
                let _ = child.kill().await;
                Err(std::io::Error::other(format!(
                    "the sandbox bridge did not say which port it listens on (it said {:?})",
                    line.trim()
                )))
            }
        }
    }
}
