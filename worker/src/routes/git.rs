//! The runner's git routes (runner token): `POST /api/sessions/{id}/git/credential`,
//! what git's credential helper inside the sandbox asks for, through the runner
//! ([`crate::github::credentials`]). A refusal is 403; a user whose GitHub
//! authorization is gone is 409 `github_not_connected`, and the session's viewers
//! get a `github_reconnect_required` event, so nothing waits on a prompt. And `POST
//! /api/sessions/{id}/git/pull-request`, the agent's pull request tool, which tells
//! the same event when the user's authorization is gone ([`tell_if_disconnected`]).

use nightshift_protocol::repo::{CredentialRequest, PullRequestRequest};
use worker::{Env, Request, Response};

use crate::api_error::{self, ApiResult, json};
use crate::auth::RunnerGrant;
use crate::body;
use crate::github::{credentials, pulls};
use crate::internal::{self, AgentCall, GitContext, GitContextRequest, GithubReconnect};

/// The session's repository, its pull request and whose access git uses now; for a
/// runner (`generation`), only if its token is the current sandbox's.
pub(super) async fn context(
    env: &Env,
    session_id: &str,
    generation: Option<u64>,
) -> ApiResult<GitContext> {
    let asked = GitContextRequest { generation };
    let mut response =
        internal::call_agent(env, session_id, AgentCall::GitContext, Some(&asked)).await?;
    if !(200..300).contains(&response.status_code()) {
        return Err(api_error::from_response(response).await);
    }
    Ok(response.json().await?)
}

/// `POST /api/sessions/{id}/git/credential`.
pub async fn credential(req: &mut Request, env: &Env, grant: &RunnerGrant) -> ApiResult<Response> {
    let asked: CredentialRequest = body::read_json(req).await?;
    let context = context(env, &grant.session_id, Some(grant.generation)).await?;
    let credential = credentials::issue(env, &context, &asked).await;
    let credential =
        tell_if_disconnected(env, &grant.session_id, &context.user_id, credential).await?;
    Ok(json(200, &credential))
}

/// Passes `result` on; when it says `user_id`'s GitHub authorization is gone
/// (`github_not_connected`), the session's viewers are told first with a
/// `github_reconnect_required` event, so whoever waits on git or a pull request sees
/// why and what to do.
pub(super) async fn tell_if_disconnected<T>(
    env: &Env,
    session_id: &str,
    user_id: &str,
    result: ApiResult<T>,
) -> ApiResult<T> {
    if let Err(error) = &result
        && error.code == nightshift_protocol::ErrorCode::GithubNotConnected
    {
        let gone = GithubReconnect {
            user_id: user_id.to_owned(),
        };
        let _ =
            internal::call_agent(env, session_id, AgentCall::GithubReconnect, Some(&gone)).await;
    }
    result
}

/// `POST /api/sessions/{id}/git/pull-request` (the agent's tool): opens or updates
/// the session's pull request as the user whose turn is running, else the owner.
pub async fn pull_request(
    req: &mut Request,
    env: &Env,
    grant: &RunnerGrant,
) -> ApiResult<Response> {
    let asked: PullRequestRequest = body::read_json(req).await?;
    let context = context(env, &grant.session_id, Some(grant.generation)).await?;
    let user_id = context.user_id.clone();
    let pull = pulls::open_or_update(env, &grant.session_id, &context, &user_id, &asked).await;
    let pull = tell_if_disconnected(env, &grant.session_id, &user_id, pull).await?;
    Ok(json(200, &pull))
}
