//! `POST /api/sessions/{id}/fork`: a new session from a finished turn of this one,
//! owned by the caller, with the parent's agent, model, permission mode and
//! repository settings, its own sandbox made from that turn's checkpoint and the
//! conversation up to it; independent from then on. The parent's `SessionAgent`
//! says what the turn's checkpoint and conversation are (`/fork-source`, refused
//! with `not_found` or `no_checkpoint` before anything is written).

use nightshift_protocol::checkpoints::{TurnRequest, valid_turn_id};
use nightshift_protocol::repo::SessionRepoSummary;
use nightshift_session::title::normalize_title;
use worker::{Env, Request, Response};

use super::sessions::{agent_ok_response, new_row, open_session};
use crate::api_error::{ApiError, ApiResult};
use crate::auth::User;
use crate::internal::{self, AgentCall, ForkSource, InitSession};
use crate::{body, clock, config, ids};

pub async fn fork(req: &mut Request, env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let request: TurnRequest = body::read_json(req).await?;
    if !valid_turn_id(&request.turn) {
        return Err(ApiError::new(
            nightshift_protocol::ErrorCode::InvalidRequest,
            "`turn` is not a turn id",
        ));
    }
    let worker_url = config::worker_url(env, req)?;
    let response = internal::call_agent(env, id, AgentCall::ForkSource, Some(&request)).await;
    let source: ForkSource = agent_ok_response(response).await?;
    let title = normalize_title(&format!("{} (fork)", source.title))
        .or_else(|_| normalize_title("Fork"))
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let session = new_row(
        ids::new_id()?,
        &title,
        source.agent,
        source.model.clone(),
        source.permission_mode,
        &user.id,
        clock::now_ms(),
    );
    let summary = source.repo.as_ref().map(|repo| SessionRepoSummary {
        full_name: repo.full_name.clone(),
        branch: repo.branch.clone(),
        base_branch: repo.base_branch.clone(),
        pull_request: None,
    });
    let init = InitSession {
        owner_id: user.id.clone(),
        title,
        worker_url,
        agent: source.agent,
        model: source.model,
        permission_mode: source.permission_mode,
        repo: source.repo,
        pull_request: None,
        fork: Some(source.fork),
    };
    open_session(env, user, session, summary, init).await
}
