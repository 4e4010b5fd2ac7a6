//! The session's repository as the browser reaches it: `GET
//! /api/sessions/{id}/repo` (the repository and the runner's latest report), `GET
//! /api/sessions/{id}/diff` (computed in the sandbox) and `POST
//! /api/sessions/{id}/push` (collaborators and above), which the `SessionAgent`
//! passes on to its runner as a `push` frame.

use worker::{Env, Response};

use crate::api_error::ApiResult;
use crate::internal::{self, AgentCall, Caller};

pub async fn push(env: &Env, caller: &Caller, session_id: &str) -> ApiResult<Response> {
    internal::call_agent_as::<()>(env, session_id, caller, AgentCall::Push, None).await
}

pub async fn view(env: &Env, caller: &Caller, session_id: &str) -> ApiResult<Response> {
    internal::call_agent_as::<()>(env, session_id, caller, AgentCall::RepoView, None).await
}

pub async fn diff(env: &Env, caller: &Caller, session_id: &str) -> ApiResult<Response> {
    internal::call_agent_as::<()>(env, session_id, caller, AgentCall::Diff, None).await
}
