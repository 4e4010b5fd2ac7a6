//! A session's prompts: `POST` and `GET /api/sessions/{id}/messages`,
//! `PATCH` and `DELETE /api/sessions/{id}/messages/{message_id}` and
//! `POST /api/sessions/{id}/abort`.
//!
//! The session's `SessionAgent` admits the caller itself, from the owner and shares
//! it keeps (no D1 read on this path), then parses and validates the body (with
//! [`validate_content`]) before it stores anything; it stores nothing for an id it
//! was never initialized for. The agent's answers (protocol bodies or error envelopes)
//! are passed through unchanged.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::limits::MAX_MESSAGE_BYTES;
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::internal::{self, AgentCall, Caller, ClientBody, EnqueuePrompt};
use crate::{config, limits};

pub async fn post(
    req: &mut Request,
    env: &Env,
    caller: &Caller,
    session_id: &str,
) -> ApiResult<Response> {
    let enqueue = EnqueuePrompt {
        body: ClientBody::read(req).await?,
        worker_url: config::worker_url(env, req)?,
        sent_by: Some(caller.user_id.clone()),
        max_queued: Some(limits::current(env).await?.queued_prompts),
        spend_caps: Some(crate::spend::settings::current(env).await?.caps),
    };
    internal::call_agent_as(env, session_id, caller, AgentCall::Enqueue, Some(&enqueue)).await
}

/// Refuses prompts that are blank or too large.
pub fn validate_content(content: &str) -> ApiResult<()> {
    if content.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            ErrorCode::MessageTooLarge,
            format!(
                "a prompt may be at most {MAX_MESSAGE_BYTES} bytes; this one is {}",
                content.len()
            ),
        ));
    }
    if content.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyMessage,
            "the prompt is empty",
        ));
    }
    Ok(())
}

pub async fn list(env: &Env, caller: &Caller, session_id: &str) -> ApiResult<Response> {
    internal::call_agent_as::<()>(env, session_id, caller, AgentCall::ListMessages, None).await
}

pub async fn cancel(
    env: &Env,
    caller: &Caller,
    session_id: &str,
    message_id: &str,
) -> ApiResult<Response> {
    let call = AgentCall::CancelMessage(message_id);
    internal::call_agent_as::<()>(env, session_id, caller, call, None).await
}

/// `PATCH .../messages/{message_id}`: replaces a queued prompt's content.
pub async fn edit(
    req: &mut Request,
    env: &Env,
    caller: &Caller,
    session_id: &str,
    message_id: &str,
) -> ApiResult<Response> {
    let edit = internal::EditPrompt {
        body: ClientBody::read(req).await?,
        edited_by: Some(caller.user_id.clone()),
    };
    let call = AgentCall::EditMessage(message_id);
    internal::call_agent_as(env, session_id, caller, call, Some(&edit)).await
}

pub async fn abort(env: &Env, caller: &Caller, session_id: &str) -> ApiResult<Response> {
    internal::call_agent_as::<()>(env, session_id, caller, AgentCall::Abort, None).await
}

/// `POST /api/sessions/{id}/wake`: wakes an asleep session (a no-op for one that is
/// awake); answers `{"status": ...}` as it is after the request.
pub async fn wake(env: &Env, caller: &Caller, session_id: &str) -> ApiResult<Response> {
    internal::call_agent_as::<()>(env, session_id, caller, AgentCall::Wake, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_oversized_prompts_are_refused() {
        assert_eq!(
            validate_content(" \n\t").unwrap_err().code,
            ErrorCode::EmptyMessage
        );
        assert_eq!(
            validate_content("").unwrap_err().code,
            ErrorCode::EmptyMessage
        );
        let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert_eq!(
            validate_content(&big).unwrap_err().code,
            ErrorCode::MessageTooLarge
        );
        assert!(validate_content(&"x".repeat(MAX_MESSAGE_BYTES)).is_ok());
        assert!(validate_content("hi").is_ok());
    }
}
