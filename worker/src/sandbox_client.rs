//! The Worker's client of the sandbox backend's HTTP API (`/v1`, bearer-token
//! authenticated; bodies from `nightshift_protocol::sandbox`).
//!
//! Every call has a time limit and reports failure as a sentence a user can act on,
//! because that sentence ends up as the session's error.

use std::time::Duration;

use nightshift_protocol::ErrorBody;
use nightshift_protocol::api::PartHealth;
use nightshift_protocol::sandbox::{
    BackendHealth, CreateSandboxRequest, ExecRequest, ExecResult, Sandbox, SandboxSnapshot,
    WakeSandboxRequest,
};
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{AbortController, Env, Fetch, Headers, Method, Request, RequestInit};

use crate::config;
use crate::timeout::with_timeout;

mod checkpoints;

pub use checkpoints::{CheckpointFailure, restore_checkpoint, take_checkpoint};

/// `GET /v1/health` answers within this, or the backend counts as down.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Creating a sandbox (workspace, runner start) answers within this.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(15);

/// The backend's part of `GET /api/health`.
pub async fn health(env: &Env) -> PartHealth {
    let url = format!("{}/v1/health", config::sandbox_backend_url(env));
    match call::<BackendHealth>(Method::Get, &url, None, None, HEALTH_TIMEOUT).await {
        Ok(health) => PartHealth {
            ok: health.ok,
            version: Some(health.version),
            error: None,
        },
        Err(error) => PartHealth {
            ok: false,
            version: None,
            error: Some(error),
        },
    }
}

/// Asks the backend for a sandbox (and the runner in it).
pub async fn create_sandbox(env: &Env, request: &CreateSandboxRequest) -> Result<Sandbox, String> {
    let base = config::sandbox_backend_url(env);
    let token = config::sandbox_backend_token(env).ok_or_else(|| {
        "SANDBOX_BACKEND_TOKEN is not set, so no sandbox can be requested".to_owned()
    })?;
    let body = serde_json::to_string(request).map_err(|error| error.to_string())?;
    call(
        Method::Post,
        &format!("{base}/v1/sandboxes"),
        Some(&token),
        Some(body),
        CREATE_TIMEOUT,
    )
    .await
    .map_err(|error| format!("the sandbox backend at {base} could not create a sandbox: {error}"))
}

/// Puts a sandbox to sleep: stopped, its files kept (`POST .../sleep`).
pub async fn sleep_sandbox(env: &Env, sandbox_id: &str) -> Result<SandboxSnapshot, String> {
    let base = config::sandbox_backend_url(env);
    let token = config::sandbox_backend_token(env)
        .ok_or_else(|| "SANDBOX_BACKEND_TOKEN is not set".to_owned())?;
    let url = format!("{base}/v1/sandboxes/{}/sleep", urlencoding_path(sandbox_id));
    call(Method::Post, &url, Some(&token), None, CREATE_TIMEOUT)
        .await
        .map_err(|error| format!("the sandbox backend could not save the sandbox: {error}"))
}

/// Wakes a sandbox put to sleep, its runner with a new token (`POST .../wake`).
pub async fn wake_sandbox(
    env: &Env,
    sandbox_id: &str,
    request: &WakeSandboxRequest,
) -> Result<Sandbox, String> {
    let base = config::sandbox_backend_url(env);
    let token = config::sandbox_backend_token(env)
        .ok_or_else(|| "SANDBOX_BACKEND_TOKEN is not set".to_owned())?;
    let url = format!("{base}/v1/sandboxes/{}/wake", urlencoding_path(sandbox_id));
    let body = serde_json::to_string(request).map_err(|error| error.to_string())?;
    call(Method::Post, &url, Some(&token), Some(body), CREATE_TIMEOUT)
        .await
        .map_err(|error| format!("the sandbox backend could not restore the sandbox: {error}"))
}

/// Destroys a sandbox for good (repeating it is harmless; an unknown one is gone
/// already).
pub async fn destroy_sandbox(env: &Env, sandbox_id: &str) -> Result<(), String> {
    let base = config::sandbox_backend_url(env);
    let token = config::sandbox_backend_token(env)
        .ok_or_else(|| "SANDBOX_BACKEND_TOKEN is not set".to_owned())?;
    let url = format!("{base}/v1/sandboxes/{}", urlencoding_path(sandbox_id));
    match call::<serde_json::Value>(Method::Delete, &url, Some(&token), None, CREATE_TIMEOUT).await
    {
        Ok(_) => Ok(()),
        Err(error) if error.contains("(not_found)") => Ok(()),
        Err(error) => Err(format!(
            "the sandbox backend could not destroy {sandbox_id}: {error}"
        )),
    }
}

/// Runs one command in a sandbox and collects its output (`?stream=false`). The
/// answer is the sandbox's output: callers parse it as hostile. `limit` covers the
/// whole exchange (the command's own `timeout_ms` should be shorter).
pub async fn exec(
    env: &Env,
    sandbox_id: &str,
    request: &ExecRequest,
    limit: Duration,
) -> Result<ExecResult, String> {
    let base = config::sandbox_backend_url(env);
    let token = config::sandbox_backend_token(env)
        .ok_or_else(|| "SANDBOX_BACKEND_TOKEN is not set".to_owned())?;
    let url = format!(
        "{base}/v1/sandboxes/{}/exec?stream=false",
        urlencoding_path(sandbox_id)
    );
    let body = serde_json::to_string(request).map_err(|error| error.to_string())?;
    call(Method::Post, &url, Some(&token), Some(body), limit)
        .await
        .map_err(|error| format!("the sandbox backend could not run a command: {error}"))
}

/// A sandbox id as one path segment (ids are the backend's, but never trusted raw).
fn urlencoding_path(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}

async fn call<T: DeserializeOwned>(
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
    limit: Duration,
) -> Result<T, String> {
    let headers = Headers::new();
    headers
        .set("accept", "application/json")
        .map_err(|e| e.to_string())?;
    if let Some(token) = token {
        headers
            .set("authorization", &format!("Bearer {token}"))
            .map_err(|e| e.to_string())?;
    }
    if body.is_some() {
        headers
            .set("content-type", "application/json")
            .map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(method)
        .with_headers(headers)
        .with_body(body.map(|b| JsValue::from_str(&b)));
    let request = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;

    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let mut response = Fetch::Request(request)
            .send_with_signal(&signal)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status_code();
        let text = response.text().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, text))
    };
    let (status, text) = match with_timeout(limit, exchange).await {
        Ok(result) => result?,
        Err(timed_out) => {
            controller.abort();
            return Err(timed_out.to_string());
        }
    };
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|error| format!("unexpected answer: {error}"));
    }
    Err(match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => format!("{} ({})", body.error.message, body.error.code.as_str()),
        Err(_) => format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ),
    })
}
