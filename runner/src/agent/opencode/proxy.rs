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

use std::net::SocketAddr;
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
    addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LlmProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LlmProxy {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<LlmProxy> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let state = Arc::new(ProxyState {
            token: super::random_secret(),
            upstream: RwLock::new(None),
            http,
        });
        let app = Router::new().fallback(forward).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the LLM proxy stopped");
            }
        });
        Ok(LlmProxy { addr, state, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token OpenCode must present.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// Where requests go from now on, and with which key.
    pub fn set_upstream(&self, config: LlmConfig) {
        *self
            .state
            .upstream
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(config);
    }
}

fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value.strip_prefix("Bearer ").map(str::trim);
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

/// Compares without stopping at the first difference.
fn same_secret(a: &str, b: &str) -> bool {
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
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "no LLM is configured");
    };
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
        LlmApi::OpenAiCompatible => request.bearer_auth(&upstream.api_key),
        LlmApi::Anthropic => request.header("x-api-key", &upstream.api_key),
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
        let url = format!("{}/chat/completions", proxy.url());

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
        let key = config.api_key.clone();
        proxy.set_upstream(config);
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
}
