//! The long-lived routes: a session's event stream (SSE), its runner link
//! (WebSocket) and the session-list stream (SSE).
//!
//! The Worker checks who is asking and that the session exists, then hands the
//! request to the Durable Object that serves the stream; the object's streaming
//! response is returned as is.

use nightshift_protocol::ErrorCode;
use nightshift_session::event_log::parse_replay_position;
use worker::{Env, Headers, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::auth::{RunnerGrant, User};
use crate::internal::{self, AgentCall, Caller, TOKEN_EXPIRES_HEADER, TOKEN_GENERATION_HEADER};
use crate::session_agent::presence;

/// `GET /api/sessions/{id}/events`: everything after `Last-Event-ID` (or `?after=`
/// on a first connect), then live.
pub async fn session_events(
    req: &Request,
    env: &Env,
    user: &User,
    caller: &Caller,
    session_id: &str,
) -> ApiResult<Response> {
    let after = replay_position(req)?;
    // Who watches, for the session's presence; the object admits `caller` itself.
    let viewer = caller.headers()?;
    viewer.set(presence::VIEWER_ID_HEADER, &user.id)?;
    viewer.set(
        presence::VIEWER_NAME_HEADER,
        &crate::header_text::encode(&user.name),
    )?;
    let max_streams = crate::limits::current(env).await?.open_streams;
    viewer.set(internal::MAX_STREAMS_HEADER, &max_streams.to_string())?;
    let query = format!("after={after}");
    let request = internal::agent_request(
        session_id,
        AgentCall::Events,
        Some(&query),
        Some(viewer),
        None,
    )?;
    internal::forward_to_agent(env, session_id, request).await
}

fn replay_position(req: &Request) -> ApiResult<u64> {
    let header = req.headers().get("last-event-id").ok().flatten();
    let query = req
        .url()?
        .query_pairs()
        .find(|(name, _)| name == "after")
        .map(|(_, value)| value.into_owned());
    let Some(value) = header.or(query) else {
        return Ok(0);
    };
    parse_replay_position(&value).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{value}` is not an event id to resume after"),
        )
    })
}

/// `GET /api/sessions/{id}/runner`: the runner's WebSocket, after its token was
/// verified by the authentication gate.
pub async fn runner_link(req: &Request, env: &Env, grant: &RunnerGrant) -> ApiResult<Response> {
    let upgrade = req
        .headers()
        .get("upgrade")
        .ok()
        .flatten()
        .unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the runner link is a WebSocket; send an upgrade",
        ));
    }
    // The token names the session, so only a deleted session gets here unknown.
    let owner = crate::sessions_table::get_owner(env, &grant.session_id).await?;
    if owner.is_none() {
        return Err(ApiError::not_found(format!(
            "no session {}",
            grant.session_id
        )));
    }
    // The upgrade headers go along; the token stays here.
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if !name.eq_ignore_ascii_case("authorization") {
            headers.set(&name, &value)?;
        }
    }
    headers.set(TOKEN_EXPIRES_HEADER, &grant.token_expires_at.to_string())?;
    headers.set(TOKEN_GENERATION_HEADER, &grant.generation.to_string())?;
    let request = internal::agent_request(
        &grant.session_id,
        AgentCall::Runner,
        None,
        Some(headers),
        None,
    )?;
    internal::forward_to_agent(env, &grant.session_id, request).await
}

/// `GET /api/events`: session-list changes, live.
pub async fn session_list_events(env: &Env, user: &User) -> ApiResult<Response> {
    let max_streams = crate::limits::current(env).await?.open_streams;
    let response = internal::subscribe_to_bus(env, &user.id, max_streams).await?;
    if response.status_code() != 200 {
        // A refusal (the stream cap) is an error envelope, not a stream to filter.
        return Err(crate::api_error::from_response(response).await);
    }
    crate::session_access::narrow_list_stream(env, user, response)
}
