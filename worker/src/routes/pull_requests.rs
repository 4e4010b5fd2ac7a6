//! The browser's side of a session's pull request: `POST
//! /api/sessions/{id}/pull-request` (collaborators and above, who can push on
//! GitHub; the pull request is opened with the caller's own token, so they are its
//! author). A caller whose GitHub authorization is gone gets 409
//! `github_not_connected` and the session a `github_reconnect_required` event.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::repo::PullRequestRequest;
use worker::{Env, Request, Response};

use super::git::{context, tell_if_disconnected};
use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::User;
use crate::body;
use crate::github::pulls;

/// `POST /api/sessions/{id}/pull-request`.
pub async fn open(req: &mut Request, env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let asked: PullRequestRequest = body::read_json(req).await?;
    let context = context(env, id, None).await.map_err(no_repository)?;
    let pull = pulls::open_or_update(env, id, &context, &user.id, &asked).await;
    let pull = tell_if_disconnected(env, id, &user.id, pull).await?;
    Ok(json(200, &pull))
}

/// A session without a repository has no repository routes.
fn no_repository(error: ApiError) -> ApiError {
    if error.code == ErrorCode::Forbidden {
        ApiError::not_found("this session has no repository")
    } else {
        error
    }
}
