//! Presence of a session (see `crate::session_agent::presence`):
//! - `GET /api/sessions/{id}/presence`: who is watching now (one entry per person
//!   holding a lease);
//! - `POST /api/sessions/{id}/presence`: the caller's heartbeat, which grants or
//!   renews their lease (empty body or `{}`); answers who is watching;
//! - `DELETE /api/sessions/{id}/presence`: the caller leaves at once.

use serde::Deserialize;
use worker::{Env, Headers, Method, Request, Response};

use crate::api_error::{self, ApiResult};
use crate::auth::User;
use crate::body;
use crate::internal::{self, AgentCall};
use crate::session_agent::presence::{VIEWER_ID_HEADER, VIEWER_NAME_HEADER};

/// The heartbeat's body: nothing yet, and nothing unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Heartbeat {}

pub async fn get(env: &Env, session_id: &str) -> ApiResult<Response> {
    call(env, session_id, Method::Get, None).await
}

pub async fn heartbeat(
    req: &mut Request,
    env: &Env,
    user: &User,
    session_id: &str,
) -> ApiResult<Response> {
    let Heartbeat {} = body::read_json_or_default(req).await?;
    call(env, session_id, Method::Post, Some(user)).await
}

pub async fn leave(env: &Env, user: &User, session_id: &str) -> ApiResult<Response> {
    call(env, session_id, Method::Delete, Some(user)).await
}

async fn call(
    env: &Env,
    session_id: &str,
    method: Method,
    user: Option<&User>,
) -> ApiResult<Response> {
    let viewer = match user {
        Some(user) => {
            let headers = Headers::new();
            headers.set(VIEWER_ID_HEADER, &user.id)?;
            headers.set(VIEWER_NAME_HEADER, &crate::header_text::encode(&user.name))?;
            Some(headers)
        }
        None => None,
    };
    let call = match method {
        Method::Post => AgentCall::PresenceHeartbeat,
        Method::Delete => AgentCall::PresenceLeave,
        _ => AgentCall::Presence,
    };
    let request = internal::agent_request(session_id, call, None, viewer, None)?;
    let response = internal::forward_to_agent(env, session_id, request).await?;
    if (200..300).contains(&response.status_code()) {
        Ok(response)
    } else {
        Err(api_error::from_response(response).await)
    }
}
