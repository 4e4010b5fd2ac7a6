//! The Worker's settings, read from its environment (`[vars]` in `wrangler.toml`,
//! secrets, or `.env`/`.dev.vars` locally), with the documented defaults.
//!
//! An empty value counts as unset, so a `.env` line like `LLM_MODEL=` means "not
//! configured" rather than "configured as empty".

use nightshift_session::runner_intake::{DEFAULT_SILENT_AFTER_MS, INTAKE_PER_SEC, IntakeBucket};
use nightshift_session::runner_token::RunnerTokenKey;
use nightshift_session::streams::{DEFAULT_MAX_OPEN_STREAMS, DEFAULT_STREAM_MAX_AGE_MS};
use worker::{Env, Request};

use crate::api_error::{ApiError, ApiResult};
use crate::hosts;

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

/// The deployment secret every per-session key is derived from
/// (`RUNNER_TOKEN_SECRET`): gateway keys and panel capability keys. It never leaves
/// the Worker; only keys derived from it per session do.
pub fn deployment_secret(env: &Env) -> Result<String, String> {
    var(env, "RUNNER_TOKEN_SECRET").ok_or_else(|| {
        "RUNNER_TOKEN_SECRET is not set, so no gateway or panel key can be derived".to_owned()
    })
}

/// How long a panel grant lives unless renewed (`PANEL_CAPABILITY_TTL_SECS`,
/// default 300): a capability whose page stopped renewing it dies within this.
pub fn panel_capability_ttl_secs(env: &Env) -> u64 {
    var(env, "PANEL_CAPABILITY_TTL_SECS")
        .and_then(|value| value.parse().ok())
        .filter(|ttl| *ttl > 0)
        .unwrap_or(300)
}

/// How long a panel origin can be renewed for (`PANEL_ORIGIN_MAX_SECS`, default
/// 43200): an open editor keeps its origin this long at most.
pub fn panel_origin_max_secs(env: &Env) -> u64 {
    var(env, "PANEL_ORIGIN_MAX_SECS")
        .and_then(|value| value.parse().ok())
        .filter(|ttl| *ttl > 0)
        .unwrap_or(12 * 3600)
}

/// The domain panel origins sit under (`PANEL_DOMAIN`, `host[:port]`); by default
/// `ws.localhost` with the port `req` came to (Chromium resolves `*.localhost` to
/// loopback).
pub fn panel_domain(env: &Env, req: &Request) -> String {
    if let Some(domain) = var(env, "PANEL_DOMAIN") {
        return domain.to_ascii_lowercase();
    }
    match req.url().ok().and_then(|url| url.port()) {
        Some(port) => format!("ws.localhost:{port}"),
        None => "ws.localhost".to_owned(),
    }
}

/// How long a runner token lives, in seconds.
pub fn runner_token_ttl_secs(env: &Env) -> u64 {
    var(env, "RUNNER_TOKEN_TTL_SECS")
        .and_then(|value| value.parse().ok())
        .filter(|ttl| *ttl > 0)
        .unwrap_or(DEFAULT_RUNNER_TOKEN_TTL_SECS)
}

/// How long a runner connection holding the link may stay silent before a newcomer
/// may take the link (`RUNNER_SILENT_AFTER_MS`).
pub fn runner_silent_after_ms(env: &Env) -> i64 {
    var(env, "RUNNER_SILENT_AFTER_MS")
        .and_then(|value| value.parse().ok())
        .filter(|ms: &i64| *ms > 0)
        .unwrap_or(DEFAULT_SILENT_AFTER_MS)
}

/// Whether a turn's text deltas are joined into whole messages once it ends
/// (`EVENT_LOG_COMPACTION`, on unless `off`: turning it off is for measuring replay
/// without it, or debugging a stream delta by delta).
pub fn event_log_compaction(env: &Env) -> bool {
    var(env, "EVENT_LOG_COMPACTION").is_none_or(|value| value.trim() != "off")
}

/// The URL runners dial: `WORKER_URL`. Without it, the origin `req` came to, but
/// only on a loopback host (a local stack): elsewhere the request's `Host` is the
/// caller's to choose, and runners (with their tokens) would dial wherever it says.
pub fn worker_url(env: &Env, req: &Request) -> ApiResult<String> {
    let url = req
        .url()
        .map_err(|error| ApiError::internal(format!("request URL: {error}")))?;
    let host = url.host_str().unwrap_or_default();
    hosts::runner_dial_url(
        var(env, "WORKER_URL").as_deref(),
        &url.origin().ascii_serialization(),
        host,
    )
    .map_err(ApiError::internal)
}

/// How many streams a user may hold open at once (`MAX_OPEN_STREAMS`, default
/// [`DEFAULT_MAX_OPEN_STREAMS`]): per session for session streams, and of the
/// session-list stream.
pub fn max_open_streams(env: &Env) -> usize {
    var(env, "MAX_OPEN_STREAMS")
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_MAX_OPEN_STREAMS)
}

/// A full intake bucket for a runner link: `RUNNER_INTAKE_PER_SEC` events a second
/// (default 200), with a burst of ten seconds' worth.
pub fn runner_intake_bucket(env: &Env, now_ms: i64) -> IntakeBucket {
    let per_sec = var(env, "RUNNER_INTAKE_PER_SEC")
        .and_then(|value| value.parse::<f64>().ok())
        .filter(|rate| rate.is_finite() && *rate > 0.0)
        .unwrap_or(INTAKE_PER_SEC);
    IntakeBucket::new(now_ms, per_sec * 10.0, per_sec)
}

/// How long a stream lasts before the server ends it (`STREAM_MAX_AGE_MS`, default
/// [`DEFAULT_STREAM_MAX_AGE_MS`]); clients reconnect where they left off.
pub fn stream_max_age_ms(env: &Env) -> i64 {
    var(env, "STREAM_MAX_AGE_MS")
        .and_then(|value| value.parse().ok())
        .filter(|ms: &i64| *ms > 0)
        .unwrap_or(DEFAULT_STREAM_MAX_AGE_MS)
}
