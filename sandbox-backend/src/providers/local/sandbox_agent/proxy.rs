//! The egress proxy of an `isolated` sandbox. The sandbox has a network namespace of
//! its own with nothing but loopback, so its only way out is this HTTP proxy, served
//! by the agent on `127.0.0.1:<port>` inside the sandbox (commands find it in
//! `HTTP_PROXY`/`HTTPS_PROXY`). Each proxied connection leaves through a connection
//! the backend holds open to the agent ([`super::wire::Request::Egress`]); the
//! backend checks the destination ([`super::egress`]) and refuses loopback, private,
//! link-local and the host's own addresses before it dials.
//!
//! Supported: `CONNECT host:port` (HTTPS and anything tunnelled) and plain HTTP
//! requests in absolute form (`GET http://host/...`), passed on in origin form with
//! `Connection: close` (one request per proxied connection).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::{Mutex, mpsc};

use super::wire::{EgressTarget, Frame, read_frame};

/// How long a proxied connection waits for a way out.
const EGRESS_WAIT: Duration = Duration::from_secs(10);
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// Ways out the backend has offered.
pub type EgressQueue = Arc<Mutex<mpsc::Receiver<BufReader<UnixStream>>>>;

/// Serves the proxy on `127.0.0.1:port` until the agent exits.
pub async fn serve(port: u16, queue: EgressQueue) {
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("sandbox agent: cannot serve the egress proxy on port {port}: {error}");
            return;
        }
    };
    while let Ok((client, _)) = listener.accept().await {
        tokio::spawn(handle(client, queue.clone()));
    }
}

async fn handle(mut client: TcpStream, queue: EgressQueue) {
    let Some(head) = read_head(&mut client, EGRESS_WAIT).await else {
        return;
    };
    let egress = {
        let mut queue = queue.lock().await;
        tokio::time::timeout(EGRESS_WAIT, queue.recv()).await
    };
    let Ok(Some(mut egress)) = egress else {
        let _ = client
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let mut line = serde_json::to_vec(&head.target).unwrap_or_default();
    line.push(b'\n');
    if egress.get_mut().write_all(&line).await.is_err() {
        return;
    }
    match read_frame(&mut egress).await {
        Ok(Some(Frame::Ok)) => {}
        Ok(Some(Frame::Error(reason))) => {
            let _ = client.write_all(&refusal(&reason)).await;
            return;
        }
        _ => {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            return;
        }
    }
    if head.connect
        && client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
    {
        return;
    }
    let first = head.first_bytes();
    if !first.is_empty() && egress.get_mut().write_all(&first).await.is_err() {
        return;
    }
    // Anything still buffered from the agent side goes to the client first.
    let buffered = egress.buffer().to_vec();
    if !buffered.is_empty() && client.write_all(&buffered).await.is_err() {
        return;
    }
    let mut egress = egress.into_inner();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut egress).await;
}

/// A proxy request's head, read by [`read_head`].
pub(crate) struct ProxyHead {
    /// Everything read so far: the head and any bytes after it.
    bytes: Vec<u8>,
    /// Where the head ends in `bytes`.
    end: usize,
    /// A `CONNECT` (a tunnel) rather than a plain HTTP request.
    pub connect: bool,
    pub target: EgressTarget,
}

impl ProxyHead {
    /// What goes to the destination first: for a tunnel the bytes that came after
    /// the `CONNECT` head (they belong to it); for plain HTTP the request in origin
    /// form (`GET /path`, as servers expect it from a proxy), without the
    /// hop-by-hop and `Proxy-*` headers and with `Connection: close`, since the
    /// connection goes on as raw bytes and a second request on it would not be
    /// rewritten.
    pub fn first_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.connect {
            return std::borrow::Cow::Borrowed(&self.bytes[self.end..]);
        }
        let head = String::from_utf8_lossy(&self.bytes[..self.end]);
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let mut parts = first.splitn(3, ' ');
        let (method, uri, version) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or("HTTP/1.1"),
        );
        let path = uri
            .strip_prefix("http://")
            .and_then(|rest| rest.find('/').map(|at| &rest[at..]))
            .unwrap_or("/");
        let mut out = format!("{method} {path} {version}\r\n");
        for line in lines.filter(|line| !line.is_empty()) {
            let name = line.split(':').next().unwrap_or_default().trim();
            let hop_by_hop = [
                "connection",
                "keep-alive",
                "proxy-connection",
                "te",
                "upgrade",
            ]
            .iter()
            .any(|hop| name.eq_ignore_ascii_case(hop))
                || name.to_ascii_lowercase().starts_with("proxy-");
            if !hop_by_hop {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.bytes[self.end..]);
        std::borrow::Cow::Owned(bytes)
    }
}

/// Reads a proxy request's head from `client`, each read within `wait`. A head over
/// [`MAX_HEAD`] is answered 431 and one that is no proxy request 400; those, and a
/// client that goes quiet or away, give `None`.
pub(crate) async fn read_head<S>(client: &mut S, wait: Duration) -> Option<ProxyHead>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        if let Some(end) = find_head_end(&bytes) {
            break end;
        }
        if bytes.len() > MAX_HEAD {
            let _ = client
                .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
                .await;
            return None;
        }
        match tokio::time::timeout(wait, client.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => bytes.extend_from_slice(&buffer[..n]),
            _ => return None,
        }
    };
    let Some((connect, target)) = parse_target(&String::from_utf8_lossy(&bytes[..end])) else {
        let _ = client
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        return None;
    };
    Some(ProxyHead {
        bytes,
        end,
        connect,
        target,
    })
}

/// The answer to a client whose destination the policy refused (also the docker
/// provider's, [`crate::providers::docker::egress`]).
pub(crate) fn refusal(reason: &str) -> Vec<u8> {
    let body = format!("refused by the sandbox's network policy: {reason}\n");
    format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(crate) fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// `(is CONNECT, target)` of a request head.
pub(crate) fn parse_target(head: &str) -> Option<(bool, EgressTarget)> {
    let first = head.lines().next()?;
    let mut parts = first.split_whitespace();
    let method = parts.next()?;
    let uri = parts.next()?;
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = split_host_port(uri, 443)?;
        return Some((true, EgressTarget { host, port }));
    }
    let rest = uri.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = split_host_port(authority, 80)?;
    Some((false, EgressTarget { host, port }))
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let authority = authority.rsplit('@').next()?;
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None => default_port,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default_port)),
    }
    .filter(|(host, _)| !host.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_connect_and_absolute_requests() {
        assert_eq!(
            parse_target("CONNECT example.com:8443 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some((
                true,
                EgressTarget {
                    host: "example.com".into(),
                    port: 8443
                }
            ))
        );
        assert_eq!(
            parse_target("GET http://10.0.0.1/x HTTP/1.1\r\n\r\n"),
            Some((
                false,
                EgressTarget {
                    host: "10.0.0.1".into(),
                    port: 80
                }
            ))
        );
        assert_eq!(
            parse_target("CONNECT [::1]:22 HTTP/1.1\r\n\r\n"),
            Some((
                true,
                EgressTarget {
                    host: "::1".into(),
                    port: 22
                }
            ))
        );
        assert_eq!(parse_target("GET /relative HTTP/1.1\r\n\r\n"), None);
        assert_eq!(find_head_end(b"a\r\n\r\nbody"), Some(5));
    }

    #[test]
    fn plain_requests_go_on_in_origin_form_without_proxy_headers() {
        let bytes = b"POST http://127.0.0.1:8787/api/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8787\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi".to_vec();
        let end = find_head_end(&bytes).unwrap();
        let head = ProxyHead {
            bytes,
            end,
            connect: false,
            target: EgressTarget {
                host: "127.0.0.1".into(),
                port: 8787,
            },
        };
        assert_eq!(
            String::from_utf8(head.first_bytes().into_owned()).unwrap(),
            "POST /api/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8787\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
        let bare = b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
        let end = find_head_end(&bare).unwrap();
        let head = ProxyHead {
            bytes: bare,
            end,
            connect: false,
            target: EgressTarget {
                host: "example.com".into(),
                port: 80,
            },
        };
        assert!(head.first_bytes().starts_with(b"GET / HTTP/1.1\r\n"));
    }
}
