//! The Worker's public API as the CLI calls it: every request signed with the
//! personal API token (`Authorization: Bearer ns_...`), every body one of
//! `nightshift_protocol`'s types, every refusal turned into a [`CliError`] that keeps
//! the server's stable error code.
//!
//! Every call has a timeout ([`REQUEST_TIMEOUT`]); the event stream has none for its
//! body (it is meant to stay open) and is watched for silence by `watch` instead.

use std::time::Duration;

use nightshift_protocol::ErrorBody;
use nightshift_protocol::api::{
    AbortResponse, AnswerQuestionRequest, CreateSessionRequest, PostMessageRequest,
    PostMessageResponse, Session, SessionList,
};
use nightshift_protocol::auth::Me;
use nightshift_protocol::events::SessionEvent;
use nightshift_protocol::session_list::{BulkRequest, BulkResponse, ListFilter};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Credentials;
use crate::error::{CliError, CliResult};

/// How long any one request may take, from connecting to the last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A pooled connection idle this long is dropped rather than reused: a server closes
/// idle keep-alive connections on a timer of its own (`wrangler dev` after 5 s), and a
/// request written on one as it closes fails without reaching it.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of one server with one token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    credentials: Credentials,
}

impl Client {
    pub fn new(credentials: Credentials) -> CliResult<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("nightshift-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| CliError::Local(format!("cannot set up HTTP: {error}")))?;
        Ok(Client { http, credentials })
    }

    pub fn server(&self) -> &str {
        &self.credentials.server
    }

    /// The web page of a session (the app is served on the API's origin).
    pub fn session_url(&self, id: &str) -> String {
        format!("{}/sessions/{id}", self.server())
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server()))
            .bearer_auth(self.credentials.token.expose())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> CliResult<T> {
        let mut request = self.request(method, path).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.transport(error))?;
        let response = refusal(response).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.transport(error))?;
        serde_json::from_slice(&bytes).map_err(|error| {
            CliError::Transport(format!(
                "{} answered {path} with something that is not Nightshift's API: {error}",
                self.server()
            ))
        })
    }

    fn transport(&self, error: reqwest::Error) -> CliError {
        if error.is_timeout() {
            CliError::Transport(format!(
                "{} did not answer in time ({} s)",
                self.server(),
                REQUEST_TIMEOUT.as_secs()
            ))
        } else {
            CliError::Transport(format!(
                "cannot reach {}: {}",
                self.server(),
                with_causes(&error)
            ))
        }
    }

    /// `GET /api/me`: who the token belongs to.
    pub async fn me(&self) -> CliResult<Me> {
        self.call(Method::GET, "/api/me", None::<&()>).await
    }

    /// `GET /api/sessions`: one page of the list `filter` keeps, newest first.
    pub async fn sessions_page(
        &self,
        limit: u32,
        cursor: Option<&str>,
        filter: &ListFilter,
    ) -> CliResult<SessionList> {
        let mut path = format!("/api/sessions?limit={limit}");
        for (name, value) in filter.query_pairs() {
            path.push_str(&format!("&{name}={}", encode_query(&value)));
        }
        if let Some(cursor) = cursor {
            path.push_str("&cursor=");
            path.push_str(&encode_query(cursor));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `POST /api/sessions/bulk`: archives or deletes sessions, an outcome each.
    pub async fn bulk(&self, request: &BulkRequest) -> CliResult<BulkResponse> {
        self.call(Method::POST, "/api/sessions/bulk", Some(request))
            .await
    }

    pub async fn session(&self, id: &str) -> CliResult<Session> {
        self.call(Method::GET, &session_path(id, ""), None::<&()>)
            .await
    }

    pub async fn create_session(&self, request: &CreateSessionRequest) -> CliResult<Session> {
        self.call(Method::POST, "/api/sessions", Some(request))
            .await
    }

    pub async fn post_message(
        &self,
        id: &str,
        request: &PostMessageRequest,
    ) -> CliResult<PostMessageResponse> {
        self.call(Method::POST, &session_path(id, "/messages"), Some(request))
            .await
    }

    pub async fn abort(&self, id: &str) -> CliResult<AbortResponse> {
        self.call(
            Method::POST,
            &session_path(id, "/abort"),
            Some(&serde_json::json!({})),
        )
        .await
    }

    /// Answers a question the agent asked; the answer is the stored
    /// `question_answered` event.
    pub async fn answer(
        &self,
        id: &str,
        question_id: &str,
        answer: &str,
    ) -> CliResult<SessionEvent> {
        let path = session_path(
            id,
            &format!("/questions/{}/answer", encode_path(question_id)),
        );
        let body = AnswerQuestionRequest {
            answer: answer.to_string(),
        };
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// `POST /api/sessions/{id}/presence`: grants or renews the caller's presence
    /// lease, so others see them watching.
    pub async fn presence_heartbeat(&self, id: &str) -> CliResult<()> {
        self.call::<serde_json::Value>(
            Method::POST,
            &session_path(id, "/presence"),
            Some(&serde_json::json!({})),
        )
        .await
        .map(drop)
    }

    /// `DELETE /api/sessions/{id}/presence`: gives the lease up at once.
    pub async fn leave_presence(&self, id: &str) -> CliResult<()> {
        self.call::<serde_json::Value>(Method::DELETE, &session_path(id, "/presence"), None::<&()>)
            .await
            .map(drop)
    }

    /// Opens `GET /api/sessions/{id}/events`, resuming after `last_event_id`. Only
    /// the wait for the answer's head has a timeout; the body streams for as long as
    /// the server keeps it open.
    pub async fn open_events(
        &self,
        id: &str,
        last_event_id: Option<u64>,
    ) -> CliResult<reqwest::Response> {
        let mut request = self
            .request(Method::GET, &session_path(id, "/events"))
            .header("accept", "text/event-stream");
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last.to_string());
        }
        let response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
            .await
            .map_err(|_| {
                CliError::Transport(format!(
                    "{} did not open the event stream in time ({} s)",
                    self.server(),
                    REQUEST_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|error| self.transport(error))?;
        refusal(response).await
    }
}

/// An error with the causes under it (reqwest's own message names only the URL;
/// "connection refused" or a certificate problem is in its sources).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A session's path: the id is percent-encoded, so no argument can reach another route.
fn session_path(id: &str, rest: &str) -> String {
    format!("/api/sessions/{}{rest}", encode_path(id))
}

fn encode_path(segment: &str) -> String {
    encode(segment, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
    })
}

fn encode_query(value: &str) -> String {
    encode_path(value)
}

fn encode(value: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if keep(byte) && !(byte == b'.' && (value == "." || value == "..")) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The response when it is a success; otherwise the server's error envelope as a
/// [`CliError`] (or, for an answer that is not the envelope, its status and text).
async fn refusal(response: reqwest::Response) -> CliResult<reqwest::Response> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(response);
    }
    let text = tokio::time::timeout(REQUEST_TIMEOUT, response.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Err(match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => CliError::Server {
            status,
            code: body.error.code.as_str().to_string(),
            message: body.error.message,
        },
        Err(_) => {
            // An envelope whose code this build does not know is still an envelope.
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let code = value["error"]["code"].as_str().map(str::to_string);
            let message = value["error"]["message"].as_str().map(str::to_string);
            CliError::Server {
                status,
                code: code.unwrap_or_else(|| format!("http_{status}")),
                message: message.unwrap_or_else(|| text.chars().take(300).collect()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_cannot_escape_their_route() {
        assert_eq!(
            session_path("abc-123", "/abort"),
            "/api/sessions/abc-123/abort"
        );
        assert_eq!(
            session_path("../admin/routes", ""),
            "/api/sessions/..%2Fadmin%2Froutes"
        );
        assert_eq!(session_path("..", ""), "/api/sessions/%2E%2E");
        assert_eq!(encode_query("a b&c"), "a%20b%26c");
    }

    /// A server that answers the first request of each connection and closes the
    /// connection when a second one arrives on it: what a server closing an idle
    /// keep-alive connection does to a request written just as it closes.
    async fn one_answer_per_connection() -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if socket.write_all(answer).await.is_err() {
                        return;
                    }
                    // The next request on this connection is read and never answered.
                    let _ = socket.read(&mut buf).await;
                });
            }
        });
        address
    }

    #[tokio::test]
    async fn a_connection_idle_past_the_pool_timeout_is_not_reused() {
        let address = one_answer_per_connection().await;
        let client = Client::new(Credentials {
            server: format!("http://{address}"),
            token: "t".into(),
        })
        .unwrap();
        let url = format!("http://{address}/");
        let first = client.http.get(&url).send().await.unwrap();
        assert_eq!(first.text().await.unwrap(), "ok");
        tokio::time::sleep(POOL_IDLE_TIMEOUT + Duration::from_millis(500)).await;
        let second = client.http.get(&url).send().await;
        assert!(
            second.is_ok(),
            "a connection idle past the pool timeout was reused: {second:?}"
        );
    }
}
