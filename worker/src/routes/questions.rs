//! `POST /api/sessions/{id}/questions/{question_id}/answer`: a user's answer to a
//! question the agent asked. The session's `SessionAgent` decides whether the question
//! is still open (404 unknown, 409 `question_closed`), records the answer and sends it
//! to the runner; the answer is the stored `question_answered` event.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::limits::MAX_MESSAGE_BYTES;
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::internal::{self, AgentCall, AnswerQuestion, Caller, ClientBody};

pub async fn answer(
    req: &mut Request,
    env: &Env,
    caller: &Caller,
    session_id: &str,
    question_id: &str,
) -> ApiResult<Response> {
    let answer = AnswerQuestion {
        body: ClientBody::read(req).await?,
        answered_by: Some(caller.user_id.clone()),
    };
    let call = AgentCall::AnswerQuestion(question_id);
    internal::call_agent_as(env, session_id, caller, call, Some(&answer)).await
}

/// Refuses answers that are blank or too large (checked by the `SessionAgent`
/// after it admitted the caller).
pub fn validate_answer(answer: &str) -> ApiResult<()> {
    if answer.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            ErrorCode::MessageTooLarge,
            format!("an answer may be at most {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    if answer.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyMessage,
            "the answer is empty",
        ));
    }
    Ok(())
}
