//! GitHub's REST API as the Worker calls it: one request with a bearer token, a time
//! limit, GitHub's headers, and the answer's status, JSON body and whether a next
//! page exists (the `Link` header).
//!
//! Nothing here puts a token into an error, a log line or a URL: the token travels in
//! the `Authorization` header only, and failures name the path and the status.

use std::time::Duration;

use nightshift_protocol::ErrorCode;
use serde_json::Value;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

use crate::api_error::{ApiError, ApiResult};
use crate::config;
use crate::timeout::with_timeout;

/// Each call to GitHub answers within this.
const GITHUB_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer read from GitHub (lists of 100 repositories fit well within).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// GitHub's REST API base URL (`GITHUB_API_URL`, else api.github.com), without a
/// trailing slash.
pub fn api_url(env: &Env) -> String {
    config::var(env, "GITHUB_API_URL")
        .unwrap_or_else(|| "https://api.github.com".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// What GitHub answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The `Link` header names a next page.
    pub has_next: bool,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// GitHub's own message, for errors shown to users (GitHub never echoes tokens).
    pub fn message(&self) -> String {
        let message = self.body["message"].as_str().unwrap_or("no message");
        format!(
            "GitHub answered {}: {}",
            self.status,
            message.chars().take(200).collect::<String>()
        )
    }

    /// The answer as an error of ours, for a status that is not a success.
    pub fn into_error(self, what: &str) -> ApiError {
        ApiError::new(
            ErrorCode::GithubUnavailable,
            format!("{what}: {}", self.message()),
        )
    }
}

/// The authorization a request carries.
pub enum Auth<'a> {
    /// A user's or an installation's token (`Bearer`).
    Token(&'a str),
    /// A GitHub App's JWT (`Bearer` as well; kept apart for clarity at call sites).
    AppJwt(&'a str),
}

/// One request to `path` (from `/`, after the API base URL) with `auth`.
pub async fn call(
    env: &Env,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<&Value>,
) -> ApiResult<Answer> {
    let url = format!("{}{path}", api_url(env));
    let unavailable = |what: String| ApiError::new(ErrorCode::GithubUnavailable, what);
    let headers = Headers::new();
    let token = match auth {
        Auth::Token(token) | Auth::AppJwt(token) => token,
    };
    headers.set("authorization", &format!("Bearer {token}"))?;
    headers.set("accept", "application/vnd.github+json")?;
    headers.set("x-github-api-version", "2022-11-28")?;
    headers.set("user-agent", "nightshift")?;
    if body.is_some() {
        headers.set("content-type", "application/json")?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(body) = body {
        init.with_body(Some(wasm_bindgen::JsValue::from_str(&body.to_string())));
    }
    let request = Request::new_with_init(&url, &init)?;
    let mut response = with_timeout(GITHUB_TIMEOUT, Fetch::Request(request).send())
        .await
        .map_err(|timed_out| unavailable(format!("GitHub did not answer {path}: {timed_out}")))?
        .map_err(|_| unavailable(format!("GitHub could not be reached for {path}")))?;
    let has_next = response
        .headers()
        .get("link")
        .ok()
        .flatten()
        .is_some_and(|link| link.contains("rel=\"next\""));
    let status = response.status_code();
    let bytes = response
        .bytes()
        .await
        .map_err(|_| unavailable(format!("reading GitHub's answer to {path} failed")))?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(unavailable(format!(
            "GitHub's answer to {path} is too large"
        )));
    }
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Ok(Answer {
        status,
        body,
        has_next,
    })
}

/// A path segment or query value, percent-encoded.
pub fn encode(value: &str) -> String {
    worker::js_sys::encode_uri_component(value).into()
}
