//! The runner's copy of its agent's conversation (runner token only):
//! `GET /api/sessions/{id}/conversation?from=N` reads it back a page at a time, and
//! `POST /api/sessions/{id}/conversation` ([`ConversationWrite`]) replaces it from an
//! index on. Both go to the session's `SessionAgent` with the token's sandbox
//! generation, which it checks is the current one, so a runner of a replaced sandbox
//! can neither read nor write the conversation.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::conversation::{ConversationWrite, MAX_CONVERSATION_WRITE_BYTES};
use worker::{Env, Method, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::auth::RunnerGrant;
use crate::body;
use crate::internal::{self, AgentCall};

/// Passes the runner's read or write on to the `SessionAgent`.
pub async fn forward(mut req: Request, env: &Env, grant: &RunnerGrant) -> ApiResult<Response> {
    let (call, query, body) = if req.method() == Method::Get {
        let from = match req.url()?.query_pairs().find(|(key, _)| key == "from") {
            Some((_, value)) => value
                .parse::<u64>()
                .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "from is an entry index"))?,
            None => 0,
        };
        let query = format!("from={from}&generation={}", grant.generation);
        (AgentCall::ReadConversation, query, None)
    } else {
        let raw = body::read_at_most(&mut req, MAX_CONVERSATION_WRITE_BYTES).await?;
        // Checked here so a malformed body never reaches the object, which reads
        // the same bytes.
        let _: ConversationWrite = body::parse_json(&raw)?;
        let raw = String::from_utf8(raw)
            .map_err(|_| ApiError::new(ErrorCode::InvalidJson, "the body is not UTF-8"))?;
        let query = format!("generation={}", grant.generation);
        (AgentCall::WriteConversation, query, Some(raw))
    };
    let request = internal::agent_request(&grant.session_id, call, Some(&query), None, body)?;
    internal::forward_to_agent(env, &grant.session_id, request).await
}
