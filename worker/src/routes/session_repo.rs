//! The session's repository as the browser reaches it: `GET
//! /api/sessions/{id}/repo` (the repository, the runner's latest report and the pull
//! request, re-read from GitHub when its copy is older than 30 s), `GET
//! /api/sessions/{id}/diff` (computed in the sandbox) and `POST
//! /api/sessions/{id}/push` (collaborators and above), which the `SessionAgent`
//! passes on to its runner as a `push` frame.

use nightshift_protocol::repo::RepoView;
use worker::{Env, Response};

use super::git::context;
use crate::api_error::{ApiResult, json};
use crate::github::pulls;
use crate::internal::{self, AgentCall, Caller};

pub async fn push(env: &Env, caller: &Caller, session_id: &str) -> ApiResult<Response> {
    internal::call_agent_as::<()>(env, session_id, caller, AgentCall::Push, None).await
}

/// `GET /api/sessions/{id}/repo`: the `SessionAgent`'s view (it admits the caller),
/// with the pull request re-read from GitHub when its copy is older than
/// [`pulls::REFRESH_AFTER_MS`].
pub async fn view(env: &Env, caller: &Caller, id: &str) -> ApiResult<Response> {
    let mut response =
        internal::call_agent_as::<()>(env, id, caller, AgentCall::RepoView, None).await?;
    if !(200..300).contains(&response.status_code()) {
        return Ok(response);
    }
    let mut view: RepoView = response.json().await?;
    if view.pull_request.is_some()
        && let Ok(context) = context(env, id, None).await
    {
        view.pull_request = pulls::current(env, id, &context).await;
    }
    Ok(json(200, &view))
}

pub async fn diff(env: &Env, caller: &Caller, session_id: &str) -> ApiResult<Response> {
    internal::call_agent_as::<()>(env, session_id, caller, AgentCall::Diff, None).await
}
