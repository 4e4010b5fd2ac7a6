//! The Worker's settings, read from its environment (`[vars]` in `wrangler.toml`,
//! secrets, or `.env`/`.dev.vars` locally), with the documented defaults.
//!
//! An empty value counts as unset, so a `.env` line like `LLM_MODEL=` means "not
//! configured" rather than "configured as empty".

use nightshift_session::runner_token::RunnerTokenKey;
use worker::{Env, Request};

use crate::api_error::{ApiError, ApiResult};

pub const DEFAULT_SANDBOX_BACKEND_URL: &str = "http://127.0.0.1:8788";
pub const DEFAULT_RUNNER_TOKEN_TTL_SECS: u64 = 3600;

/// A variable or secret, trimmed; `None` when unset or blank.
pub fn var(env: &Env, name: &str) -> Option<String> {
    let value = env.var(name).ok()?.to_string();
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The sandbox backend's base URL, without a trailing slash.
pub fn sandbox_backend_url(env: &Env) -> String {
    var(env, "SANDBOX_BACKEND_URL")
        .unwrap_or_else(|| DEFAULT_SANDBOX_BACKEND_URL.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// The bearer token the sandbox backend expects.
pub fn sandbox_backend_token(env: &Env) -> Option<String> {
    var(env, "SANDBOX_BACKEND_TOKEN")
}

/// The key runner tokens are signed with, from `RUNNER_TOKEN_SECRET`.
pub fn runner_token_key(env: &Env) -> Result<RunnerTokenKey, String> {
    let secret = var(env, "RUNNER_TOKEN_SECRET").ok_or_else(|| {
        "RUNNER_TOKEN_SECRET is not set; runners cannot be authenticated".to_owned()
    })?;
    RunnerTokenKey::new(secret.as_bytes()).map_err(|error| format!("RUNNER_TOKEN_SECRET: {error}"))
}

/// How long a runner token lives, in seconds.
pub fn runner_token_ttl_secs(env: &Env) -> u64 {
    var(env, "RUNNER_TOKEN_TTL_SECS")
        .and_then(|value| value.parse().ok())
        .filter(|ttl| *ttl > 0)
        .unwrap_or(DEFAULT_RUNNER_TOKEN_TTL_SECS)
}

/// The URL runners dial: `WORKER_URL`, or else the origin `req` came to.
pub fn worker_url(env: &Env, req: &Request) -> ApiResult<String> {
    if let Some(url) = var(env, "WORKER_URL") {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let url = req
        .url()
        .map_err(|error| ApiError::internal(format!("request URL: {error}")))?;
    Ok(url.origin().ascii_serialization())
}
