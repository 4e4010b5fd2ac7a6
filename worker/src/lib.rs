//! The Nightshift Cloudflare Worker: the `/api` HTTP edge, the `SessionAgent` and
//! `EventBus` Durable Objects, D1 access, and the app's static assets.
//!
//! Requests on a panel host (`<capability>.<panel domain>`) go to [`panels`], the
//! proxy to the session's gateway. Requests under `/api/` go through [`routes`] (one
//! authentication gate, thin handlers); everything else is served from the assets
//! binding with a single-page app fallback. Each chat session is one [`session_agent::SessionAgent`], keyed by the
//! session id, which owns the session's prompt queue, event log and runner link; the
//! one global [`event_bus::EventBus`] fans session-list changes out to browsers.
//!
//! This is the only crate that knows `worker::*`. The rules it applies (status,
//! queue, sequencing, tokens, titles) live in `nightshift_session`, and every body it
//! sends or receives is a `nightshift_protocol` type; it must not grow its own.

use worker::{Context, Env, Request, Response, Result, event};

mod access;
mod api_error;
mod api_keys;
mod auth;
mod body;
mod clock;
mod config;
mod event_bus;
mod github;
mod header_text;
mod hosts;
mod ids;
mod inbox;
mod internal;
mod limits;
mod llm_config;
mod panels;
mod rate_limit;
mod routes;
mod sandbox_client;
mod session_access;
mod session_agent;
mod sessions_table;
mod sleep_settings;
mod spend;
mod sse;
mod timeout;

pub use api_keys::APIKeys;
pub use event_bus::EventBus;
pub use session_agent::SessionAgent;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    // A panel host (`<capability>.<panel domain>`) is the session's gateway for
    // every path; nothing of the app or its API is served there.
    if let Some(label) = panels::capability_of(&req, &env) {
        return Ok(panels::handle(req, env, label).await);
    }
    let path = req.path();
    if path == "/api" || path.starts_with("/api/") {
        return Ok(routes::handle(req, env).await);
    }
    if path.starts_with("/auth/") {
        return Ok(routes::auth_routes::handle(req, env).await);
    }
    // `wrangler.toml` sends every request to the Worker first (a panel host must
    // never be answered with the app); the app's own origin gets its assets and the
    // single-page fallback from the binding, as before.
    env.assets("ASSETS")?.fetch_request(req).await
}
