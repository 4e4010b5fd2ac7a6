//! The loopback LLM proxy that keeps the session's LLM key out of the sandbox.
//!
//! OpenCode runs inside the sandbox, where the agent's commands run too; it is given
//! this proxy's URL and a random proxy token instead of the key. The proxy (in the
//! runner, on the host's loopback) accepts only requests carrying that token (as
//! `Authorization: Bearer` or `x-api-key`, whichever the provider SDK sends), swaps
//! in the real key the way the endpoint expects it, and streams the answer back
//! unchanged. The upstream endpoint and key are set per turn, so a new key or
//! endpoint takes effect without restarting OpenCode.
//!
//! Path mapping: a request for `/<path>` goes to `<base_url>/<path>`.
//!
//! The proxy is narrow on purpose, because anything in the sandbox can reach it and
//! may have read its token from OpenCode's environment: it forwards only the one
//! call a turn makes (`POST /chat/completions` for OpenAI-compatible endpoints, `POST
//! /v1/messages` for Anthropic's), only while a turn runs ([`LlmProxy::arm`] at the
//! start of a turn, [`LlmProxy::disarm`] at its end), and only with the key that turn
//! was given. With a sandbox bridge it listens on a unix socket in the sandbox's
//! sockets directory ([`LlmProxy::start_unix`]), never on a host TCP port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use nightshift_protocol::runner_link::{LlmApi, LlmConfig};

/// Request headers passed on to the endpoint; everything else (the proxy token
/// first of all) stays behind.
const FORWARDED_HEADERS: [&str; 5] = [
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
    "user-agent",
];

struct ProxyState {
    token: String,
    upstream: RwLock<Option<LlmConfig>>,
    http: reqwest::Client,
}

/// A running proxy; dropping it stops it.
pub struct LlmProxy {
    address: ProxyAddress,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

/// Where the proxy listens.
#[derive(Debug, Clone)]
enum ProxyAddress {
    Loopback(SocketAddr),
    Socket(PathBuf),
}

impl Drop for LlmProxy {
    fn drop(&mut self) {
        self.task.abort();
        if let ProxyAddress::Socket(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl LlmProxy {
    fn state() -> std::io::Result<Arc<ProxyState>> {
        // It forwards to the LLM: through the runner's proxy when it has one.
        let http = crate::outbound::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Arc::new(ProxyState {
            token: super::random_secret(),
            upstream: RwLock::new(None),
            http,
        }))
    }

    /// Listens on a free port of the host's loopback (a runner without a sandbox
    /// bridge, which shares its loopback with OpenCode).
    pub async fn start() -> std::io::Result<LlmProxy> {
        let state = LlmProxy::state()?;
        let app = Router::new().fallback(forward).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = ProxyAddress::Loopback(listener.local_addr()?);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the LLM proxy stopped");
            }
        });
        Ok(LlmProxy {
            address,
            state,
            task,
        })
    }

    /// Listens on the unix socket `path` (replacing a stale one).
    pub async fn start_unix(path: &Path) -> std::io::Result<LlmProxy> {
        let state = LlmProxy::state()?;
        let app = Router::new().fallback(forward).with_state(state.clone());
        let _ = std::fs::remove_file(path);
        let listener = bind_unix(path)?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the LLM proxy stopped");
            }
        });
        Ok(LlmProxy {
            address: ProxyAddress::Socket(path.to_path_buf()),
            state,
            task,
        })
    }

    /// `http://127.0.0.1:<port>` for a proxy on the loopback; `None` for one on a
    /// unix socket (reached through a bridge instead).
    pub fn url(&self) -> Option<String> {
        match &self.address {
            ProxyAddress::Loopback(address) => Some(format!("http://{address}")),
            ProxyAddress::Socket(_) => None,
        }
    }

    /// The token OpenCode must present.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// Forwards the turn's calls to this endpoint with this key until [`disarm`].
    ///
    /// [`disarm`]: LlmProxy::disarm
    pub fn arm(&self, config: LlmConfig) {
        *self
            .state
            .upstream
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(config);
    }

    /// Refuses everything until the next turn arms it again.
    pub fn disarm(&self) {
        *self
            .state
            .upstream
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}

/// Binds a unix socket at `path`; a path longer than a socket address allows is
/// bound through `/proc/self/fd/<directory fd>/<name>`.
pub(crate) fn bind_unix(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    if path.as_os_str().len() < 100 {
        return tokio::net::UnixListener::bind(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return tokio::net::UnixListener::bind(path);
    };
    let dir = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    tokio::net::UnixListener::bind(&short)
}

/// Whether `method path` is the call a turn makes to an endpoint of this kind.
fn allowed_call(api: LlmApi, method: &Method, path: &str) -> bool {
    let allowed_path = match api {
        LlmApi::OpenAiCompatible => "/chat/completions",
        LlmApi::Anthropic => "/v1/messages",
    };
    method == Method::POST && path == allowed_path
}

pub(super) fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value.strip_prefix("Bearer ").map(str::trim);
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

/// Compares without stopping at the first difference.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"error": {"message": message, "type": "nightshift_proxy"}});
    (status, axum::Json(body)).into_response()
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !presented_token(&headers).is_some_and(|token| same_secret(token, &state.token)) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid proxy token");
    }
    let upstream = state
        .upstream
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let Some(upstream) = upstream else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "no turn is running");
    };
    if !allowed_call(upstream.api, &method, uri.path()) {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!("{method} {} is not a call a turn makes", uri.path()),
        );
    }
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!(
        "{}{}",
        upstream.base_url.trim_end_matches('/'),
        path_and_query
    );
    let mut request = state.http.request(method, &url).body(body);
    for name in FORWARDED_HEADERS {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    request = match upstream.api {
        LlmApi::OpenAiCompatible => request.bearer_auth(upstream.api_key.expose()),
        LlmApi::Anthropic => request.header("x-api-key", upstream.api_key.expose()),
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%url, %error, "the LLM proxy cannot reach the endpoint");
            return refuse(
                StatusCode::BAD_GATEWAY,
                &format!("cannot reach the LLM at {url}"),
            );
        }
    };
    let mut builder = Response::builder().status(response.status().as_u16());
    for name in [
        "content-type",
        "retry-after",
        "retry-after-ms",
        "x-request-id",
        "request-id",
    ] {
        if let Some(value) = response
            .headers()
            .get(name)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            builder = builder.header(name, value);
        }
    }
    let stream = response.bytes_stream().map_err(std::io::Error::other);
    builder
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| refuse(StatusCode::BAD_GATEWAY, "unreadable answer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_llm::{Reply, TestLlm, openai_text};

    #[tokio::test]
    async fn the_proxy_swaps_its_token_for_the_key_and_refuses_others() {
        let llm = TestLlm::start(vec![Reply::stream(openai_text(&["hi"], 1, 1))]).await;
        let proxy = LlmProxy::start().await.unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/chat/completions", proxy.url().unwrap());

        // Before a turn set the upstream, there is nothing to reach.
        let early = http
            .post(&url)
            .bearer_auth(proxy.token())
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(early.status(), 503);

        let config = llm.config(LlmApi::OpenAiCompatible);
        let key = config.api_key.expose().clone();
        proxy.arm(config);
        let refused = http
            .post(&url)
            .bearer_auth("guess")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        let refused = http.post(&url).body("{}").send().await.unwrap();
        assert_eq!(refused.status(), 401);
        assert!(llm.requests().is_empty(), "refused requests never leave");

        let answer = http
            .post(&url)
            .bearer_auth(proxy.token())
            .header("content-type", "application/json")
            .body(r#"{"model":"m","stream":true}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert!(answer.text().await.unwrap().contains("hi"));
        let requests = llm.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].path, "/v1/chat/completions");
        assert_eq!(
            requests[0].headers["authorization"],
            format!("Bearer {key}").as_str()
        );
        assert_ne!(proxy.token(), key);
    }

    #[tokio::test]
    async fn the_proxy_forwards_only_the_turns_call_and_only_while_armed() {
        let llm = TestLlm::start(vec![
            Reply::stream(openai_text(&["one"], 1, 1)),
            Reply::stream(openai_text(&["two"], 1, 1)),
        ])
        .await;
        let proxy = LlmProxy::start().await.unwrap();
        let http = reqwest::Client::new();
        let base = proxy.url().unwrap();
        proxy.arm(llm.config(LlmApi::OpenAiCompatible));

        // Anything but the one call a turn makes is refused, token or not.
        for (method, path) in [
            (reqwest::Method::GET, "/models"),
            (reqwest::Method::POST, "/embeddings"),
            (reqwest::Method::POST, "/files"),
            (reqwest::Method::GET, "/chat/completions"),
            (reqwest::Method::DELETE, "/chat/completions"),
            (reqwest::Method::POST, "/chat/completions/../models"),
            (reqwest::Method::POST, "/v1/messages"),
        ] {
            let answer = http
                .request(method.clone(), format!("{base}{path}"))
                .bearer_auth(proxy.token())
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 403, "{method} {path}");
        }
        assert!(llm.requests().is_empty(), "refused calls never leave");

        let answer = http
            .post(format!("{base}/chat/completions"))
            .bearer_auth(proxy.token())
            .body(r#"{"stream":true}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);

        // After the turn, the token buys nothing.
        proxy.disarm();
        let after = http
            .post(format!("{base}/chat/completions"))
            .bearer_auth(proxy.token())
            .body(r#"{"stream":true}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), 503);
        assert_eq!(llm.requests().len(), 1);
    }

    #[test]
    fn anthropic_turns_may_only_post_messages() {
        assert!(allowed_call(
            LlmApi::Anthropic,
            &Method::POST,
            "/v1/messages"
        ));
        assert!(!allowed_call(
            LlmApi::Anthropic,
            &Method::POST,
            "/v1/complete"
        ));
        assert!(!allowed_call(
            LlmApi::Anthropic,
            &Method::GET,
            "/v1/messages"
        ));
        assert!(!allowed_call(
            LlmApi::Anthropic,
            &Method::POST,
            "/chat/completions"
        ));
    }

    #[tokio::test]
    async fn a_proxy_on_a_unix_socket_answers_there_and_has_no_url() {
        let dir = tempfile::tempdir().unwrap();
        // Longer than a socket address can hold, as sandbox directories often are.
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(40));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("llm.sock");
        assert!(path.as_os_str().len() > 108);
        let proxy = LlmProxy::start_unix(&path).await.unwrap();
        assert!(proxy.url().is_none());
        let dir_file = std::fs::File::open(&deep).unwrap();
        use std::os::fd::AsRawFd;
        let short = format!("/proc/self/fd/{}/llm.sock", dir_file.as_raw_fd());
        let mut stream = tokio::net::UnixStream::connect(&short).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"POST /chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        drop(proxy);
        assert!(!path.exists(), "a stopped proxy removes its socket");
    }
}
