//! `POST /api/sessions/{id}/rewind`: the session goes back to a finished turn, its
//! files and conversation both (the session's `SessionAgent` does it; see
//! `session_agent/checkpoints.rs`). The owner, a co-owner or an admin only (the
//! route's access, checked against D1 before this runs).

use nightshift_protocol::checkpoints::TurnRequest;
use worker::{Env, Request, Response};

use crate::api_error::ApiResult;
use crate::body;
use crate::internal::{self, AgentCall};

pub async fn rewind(req: &mut Request, env: &Env, session_id: &str) -> ApiResult<Response> {
    // Parsed here too, so a malformed body never reaches the object.
    let request: TurnRequest = body::read_json(req).await?;
    internal::call_agent(env, session_id, AgentCall::Rewind, Some(&request)).await
}
