//! Reaching the sandbox's Chromium over its DevTools protocol: find the page target
//! (`GET /json/list`, or `PUT /json/new` when there is none), open its WebSocket and
//! make commands on it, one at a time, each with a timeout.
//!
//! Chromium listens on 127.0.0.1:9222 of the sandbox's own loopback. The runner gets
//! there through a `__connect` bridge run inside the sandbox ([`Bridge::connect`]), so
//! nothing listens on the host for it; a runner that shares the sandbox's loopback
//! (container providers, tests) dials the port directly.
//!
//! Everything Chromium answers is the sandbox's, so attacker-controlled: the HTTP
//! answer is read up to [`MAX_HTTP_BYTES`], a WebSocket message up to
//! [`MAX_MESSAGE_BYTES`], a target id is used only if it is a plain token, and every
//! read and call is bounded in time.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::sandbox_bridge::Bridge;

/// Chromium's DevTools port inside a session's sandbox (the gateway starts it so).
pub const DEVTOOLS_PORT: u16 = 9222;
/// The largest HTTP answer read from `/json/list`.
pub const MAX_HTTP_BYTES: usize = 1024 * 1024;
/// The largest WebSocket message taken from Chromium: a screenshot at the artifact
/// cap, base64-encoded, with room for the JSON around it.
pub const MAX_MESSAGE_BYTES: usize =
    nightshift_protocol::artifacts::MAX_ARTIFACT_BYTES / 3 * 4 + 64 * 1024;
/// How long reaching Chromium (bridge, HTTP, WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the browser could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DevtoolsError {
    #[error(
        "the sandbox's browser does not answer (Chromium's DevTools on 127.0.0.1:{DEVTOOLS_PORT}: {0}); \
         the browser tools need the session's desktop, which this sandbox may not have"
    )]
    Unavailable(String),
    #[error("the browser sent something unexpected: {0}")]
    Garbled(String),
    #[error("the browser did not answer {0} within {1} ms")]
    Timeout(String, u128),
    #[error("the browser refused {method}: {message}")]
    Refused { method: String, message: String },
    #[error("the connection to the browser closed")]
    Closed,
}

/// A byte stream to the DevTools port.
trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// How the runner reaches the DevTools port.
#[derive(Debug, Clone)]
pub enum Devtools {
    /// Through a bridge into the sandbox.
    Bridged(Bridge, u16),
    /// On the runner's own loopback (shared with the sandbox).
    Direct(u16),
}

impl Devtools {
    async fn dial(&self) -> Result<Box<dyn Duplex>, DevtoolsError> {
        let unavailable = |error: std::io::Error| DevtoolsError::Unavailable(error.to_string());
        match self {
            Devtools::Bridged(bridge, port) => {
                Ok(Box::new(bridge.connect(*port).await.map_err(unavailable)?))
            }
            Devtools::Direct(port) => Ok(Box::new(
                tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .map_err(unavailable)?,
            )),
        }
    }

    /// Opens a session on the browser's first page, making one when there is none.
    pub async fn open_page(&self) -> Result<PageSession, DevtoolsError> {
        let within = |what: &str| DevtoolsError::Timeout(what.into(), CONNECT_TIMEOUT.as_millis());
        let targets = tokio::time::timeout(CONNECT_TIMEOUT, self.http("GET", "/json/list"))
            .await
            .map_err(|_| within("/json/list"))??;
        let target = match first_page(&targets)? {
            Some(id) => id,
            None => {
                // Chromium takes only PUT here (since 111).
                let created = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    self.http("PUT", "/json/new?about:blank"),
                )
                .await
                .map_err(|_| within("/json/new"))??;
                let target: Target = serde_json::from_slice(&created)
                    .map_err(|error| DevtoolsError::Garbled(format!("/json/new: {error}")))?;
                checked_id(&target.id)?.to_string()
            }
        };
        let stream = self.dial().await?;
        let url = format!("ws://127.0.0.1:{DEVTOOLS_PORT}/devtools/page/{target}");
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (socket, _) = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
        )
        .await
        .map_err(|_| within("the WebSocket handshake"))?
        .map_err(|error| DevtoolsError::Unavailable(format!("the page's WebSocket: {error}")))?;
        Ok(PageSession { socket, next_id: 0 })
    }

    /// One HTTP/1.1 request with `Connection: close`; the body, if the status is 200.
    async fn http(&self, method: &str, path: &str) -> Result<Vec<u8>, DevtoolsError> {
        let mut stream = self.dial().await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{DEVTOOLS_PORT}\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| DevtoolsError::Unavailable(error.to_string()))?;
        // Chromium keeps the connection open whatever the request says: read until
        // the answer is whole by its `Content-Length` (or the stream ends).
        let mut answer = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let read = stream
                .read(&mut chunk)
                .await
                .map_err(|error| DevtoolsError::Unavailable(error.to_string()))?;
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..read]);
            if answer.len() > MAX_HTTP_BYTES || whole(&answer) {
                break;
            }
        }
        parse_http(&answer)
    }
}

/// Whether `answer` holds its headers and as much body as they announce.
fn whole(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    content_length(&head).is_some_and(|length| answer.len() - end - 4 >= length)
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    })
}

/// The body of a complete `200` answer.
fn parse_http(answer: &[u8]) -> Result<Vec<u8>, DevtoolsError> {
    if answer.is_empty() {
        return Err(DevtoolsError::Unavailable("nothing listens there".into()));
    }
    if answer.len() > MAX_HTTP_BYTES {
        return Err(DevtoolsError::Garbled(format!(
            "an HTTP answer over {MAX_HTTP_BYTES} bytes"
        )));
    }
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(DevtoolsError::Garbled(
            "an HTTP answer without headers".into(),
        ));
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        let line = head
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect::<String>();
        return Err(DevtoolsError::Garbled(format!("HTTP {line}")));
    }
    let body = &answer[end + 4..];
    match content_length(&head) {
        Some(length) if length <= body.len() => Ok(body[..length].to_vec()),
        Some(_) => Err(DevtoolsError::Garbled("an HTTP answer cut short".into())),
        None => Ok(body.to_vec()),
    }
}

#[derive(Deserialize)]
struct Target {
    id: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// The id of the first `page` target in a `/json/list` answer.
fn first_page(body: &[u8]) -> Result<Option<String>, DevtoolsError> {
    let targets: Vec<Target> = serde_json::from_slice(body)
        .map_err(|error| DevtoolsError::Garbled(format!("/json/list: {error}")))?;
    match targets.iter().find(|target| target.kind == "page") {
        Some(target) => Ok(Some(checked_id(&target.id)?.to_string())),
        None => Ok(None),
    }
}

/// A target id goes into a URL path: only a plain token is used.
fn checked_id(id: &str) -> Result<&str, DevtoolsError> {
    let plain = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if plain {
        Ok(id)
    } else {
        Err(DevtoolsError::Garbled(
            "a target id that is not a plain token".into(),
        ))
    }
}

/// A DevTools session on one page.
pub struct PageSession {
    socket: WebSocketStream<Box<dyn Duplex>>,
    next_id: u64,
}

#[derive(Deserialize)]
struct Reply {
    id: Option<u64>,
    result: Option<Value>,
    error: Option<ReplyError>,
}

#[derive(Deserialize)]
struct ReplyError {
    #[serde(default)]
    message: String,
}

impl PageSession {
    /// Sends `method` and waits up to `within` for its answer, passing over the
    /// events Chromium sends meanwhile.
    pub async fn call(
        &mut self,
        method: &str,
        params: Value,
        within: Duration,
    ) -> Result<Value, DevtoolsError> {
        self.next_id += 1;
        let id = self.next_id;
        let frame = json!({"id": id, "method": method, "params": params}).to_string();
        tokio::time::timeout(within, self.exchange(id, method, frame))
            .await
            .map_err(|_| DevtoolsError::Timeout(method.to_string(), within.as_millis()))?
    }

    async fn exchange(
        &mut self,
        id: u64,
        method: &str,
        frame: String,
    ) -> Result<Value, DevtoolsError> {
        self.socket
            .send(Message::Text(frame.into()))
            .await
            .map_err(|_| DevtoolsError::Closed)?;
        loop {
            let text = match self.socket.next().await {
                None | Some(Ok(Message::Close(_))) => return Err(DevtoolsError::Closed),
                Some(Err(error)) => return Err(DevtoolsError::Garbled(error.to_string())),
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
            };
            let Ok(reply) = serde_json::from_str::<Reply>(&text) else {
                continue;
            };
            if reply.id != Some(id) {
                continue;
            }
            if let Some(error) = reply.error {
                return Err(DevtoolsError::Refused {
                    method: method.to_string(),
                    message: error.message.chars().take(500).collect(),
                });
            }
            return Ok(reply.result.unwrap_or(Value::Null));
        }
    }

    /// Closes the WebSocket (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_answer_gives_its_body_up_to_its_length() {
        let answer =
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n[]";
        assert_eq!(parse_http(answer).unwrap(), b"[]");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n[]";
        assert!(matches!(parse_http(short), Err(DevtoolsError::Garbled(_))));
        let refused = b"HTTP/1.1 405 Method Not Allowed\r\n\r\n";
        assert!(matches!(
            parse_http(refused),
            Err(DevtoolsError::Garbled(_))
        ));
        assert!(matches!(
            parse_http(b""),
            Err(DevtoolsError::Unavailable(_))
        ));
        let huge = vec![b'x'; MAX_HTTP_BYTES + 1];
        assert!(matches!(parse_http(&huge), Err(DevtoolsError::Garbled(_))));
    }

    #[test]
    fn only_a_page_with_a_plain_id_is_chosen() {
        let list = br#"[{"id":"B0B2","type":"browser_ui"},{"id":"61E2-71","type":"page"}]"#;
        assert_eq!(first_page(list).unwrap(), Some("61E2-71".to_string()));
        assert_eq!(
            first_page(br#"[{"id":"x","type":"iframe"}]"#).unwrap(),
            None
        );
        let hostile = br#"[{"id":"../../browser/x?","type":"page"}]"#;
        assert!(first_page(hostile).is_err());
        assert!(first_page(b"{}").is_err());
    }
}
