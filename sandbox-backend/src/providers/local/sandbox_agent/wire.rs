//! What the backend and a sandbox agent say to each other over one connection: a
//! JSON request line, then length-prefixed frames (`tag: u8`, `len: u32` big-endian,
//! payload).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame payload accepted.
pub const MAX_FRAME: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Answered with [`Frame::Ok`].
    Ping,
    /// Sets the environment every command starts with (answered with `Ok`), and, for
    /// an `isolated` sandbox, the loopback port of its egress proxy.
    Configure {
        env: BTreeMap<String, String>,
        #[serde(default)]
        proxy_port: Option<u16>,
    },
    /// Held open by the backend until the sandbox's egress proxy needs a way out:
    /// the agent then writes one [`EgressTarget`] line, the backend answers `Ok` (and
    /// the connection carries the proxied bytes) or `Error`.
    Egress,
    /// Starts a command in a process group of its own; frames follow both ways until
    /// [`Frame::Exit`].
    Spawn {
        argv: Vec<String>,
        /// Applied on top of the configured environment.
        env: BTreeMap<String, String>,
        cwd: String,
        /// Whether the command's stdin is a pipe fed by [`Frame::Stdin`] frames (else
        /// `/dev/null`).
        stdin: bool,
    },
    /// Connects to `127.0.0.1:<port>` inside the sandbox (its own network
    /// namespace) and answers `Ok`; the connection then carries that socket's bytes
    /// both ways, or `Error` when nothing answers there. The backend asks only for
    /// the gateway's port.
    Connect { port: u16 },
    /// Held open by the backend; when no holder has been connected for the agent's
    /// orphan grace, the agent ends the sandbox.
    Hold,
    /// Kills every command and exits (ending the sandbox); answered with `Ok` first.
    Shutdown,
}

/// Where a proxied connection wants to go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressTarget {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    // Agent to backend.
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command ended: its exit code, or `128 + signal`.
    Exit {
        code: i32,
        signaled: bool,
    },
    /// The request failed (e.g. the program does not exist).
    Error(String),
    Ok,
    // Backend to agent.
    Stdin(Vec<u8>),
    CloseStdin,
    /// Signal the command's process group (a signal number).
    Signal(i32),
}

impl Frame {
    fn parts(&self) -> (u8, Vec<u8>) {
        match self {
            Frame::Stdout(data) => (b'O', data.clone()),
            Frame::Stderr(data) => (b'E', data.clone()),
            Frame::Exit { code, signaled } => {
                let mut payload = code.to_be_bytes().to_vec();
                payload.push(u8::from(*signaled));
                (b'X', payload)
            }
            Frame::Error(message) => (b'R', message.as_bytes().to_vec()),
            Frame::Ok => (b'K', Vec::new()),
            Frame::Stdin(data) => (b'I', data.clone()),
            Frame::CloseStdin => (b'C', Vec::new()),
            Frame::Signal(signal) => (b'S', signal.to_be_bytes().to_vec()),
        }
    }

    fn from_parts(tag: u8, payload: Vec<u8>) -> std::io::Result<Frame> {
        let int = |payload: &[u8]| -> std::io::Result<i32> {
            let bytes: [u8; 4] = payload
                .get(..4)
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| invalid("short frame"))?;
            Ok(i32::from_be_bytes(bytes))
        };
        Ok(match tag {
            b'O' => Frame::Stdout(payload),
            b'E' => Frame::Stderr(payload),
            b'X' => Frame::Exit {
                code: int(&payload)?,
                signaled: payload.get(4) == Some(&1),
            },
            b'R' => Frame::Error(String::from_utf8_lossy(&payload).into_owned()),
            b'K' => Frame::Ok,
            b'I' => Frame::Stdin(payload),
            b'C' => Frame::CloseStdin,
            b'S' => Frame::Signal(int(&payload)?),
            other => return Err(invalid(&format!("unknown frame tag {other}"))),
        })
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
) -> std::io::Result<()> {
    let (tag, payload) = frame.parts();
    let len = u32::try_from(payload.len()).map_err(|_| invalid("frame too large"))?;
    let mut bytes = Vec::with_capacity(5 + payload.len());
    bytes.push(tag);
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&payload);
    writer.write_all(&bytes).await
}

/// The next frame, or `None` at a clean end of the stream.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Frame>> {
    let mut header = [0u8; 5];
    match reader.read_exact(&mut header[..1]).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    reader.read_exact(&mut header[1..]).await?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_FRAME {
        return Err(invalid("frame too large"));
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).await?;
    Frame::from_parts(header[0], payload).map(Some)
}

/// Writes the request line.
pub async fn write_request<W: AsyncWrite + Unpin>(
    writer: &mut W,
    request: &Request,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(request).map_err(|error| invalid(&error.to_string()))?;
    line.push(b'\n');
    writer.write_all(&line).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let frames = [
            Frame::Stdout(b"out".to_vec()),
            Frame::Stderr(Vec::new()),
            Frame::Exit {
                code: 137,
                signaled: true,
            },
            Frame::Error("no such program".into()),
            Frame::Ok,
            Frame::Stdin(b"in".to_vec()),
            Frame::CloseStdin,
            Frame::Signal(9),
        ];
        let mut bytes = Vec::new();
        for frame in &frames {
            write_frame(&mut bytes, frame).await.unwrap();
        }
        let mut reader = &bytes[..];
        for frame in &frames {
            assert_eq!(read_frame(&mut reader).await.unwrap().as_ref(), Some(frame));
        }
        assert_eq!(read_frame(&mut reader).await.unwrap(), None);
        let mut bad: &[u8] = &[b'Z', 0, 0, 0, 0];
        assert!(read_frame(&mut bad).await.is_err());
    }
}
