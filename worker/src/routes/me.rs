//! `GET` and `PATCH /api/me`: the signed-in user, their team and the CSRF token the
//! app sends back with every state-changing request.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::{Me, PatchMeRequest, TeamInfo};
use serde::Deserialize;
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::d1::{self, Arg};
use crate::auth::{AuthMethod, TEAM_ID, User};
use crate::body;

#[derive(Deserialize)]
struct TeamRow {
    id: String,
    name: String,
}

pub async fn me(env: &Env, user: &User) -> ApiResult<Me> {
    let team: TeamRow = d1::first(
        env,
        "SELECT id, name FROM teams WHERE id = ?",
        &[Arg::Text(TEAM_ID)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("the team row is missing"))?;
    let csrf_token = match &user.method {
        AuthMethod::Cookie { csrf_token, .. } => csrf_token.clone(),
        AuthMethod::Token { .. } => String::new(),
    };
    Ok(Me {
        user: user.info(),
        team: TeamInfo {
            id: team.id,
            name: team.name,
        },
        csrf_token,
    })
}

pub async fn get(env: &Env, user: &User) -> ApiResult<Response> {
    Ok(json(200, &me(env, user).await?))
}

/// The longest display name.
const MAX_NAME_CHARS: usize = 100;

pub async fn patch(req: &mut Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: PatchMeRequest = body::read_json(req).await?;
    let mut user = user.clone();
    if let Some(name) = request.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("a name has 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        user.name = name.to_owned();
    }
    if let Some(model) = request.default_model {
        let model = model.trim();
        user.default_model = (!model.is_empty()).then(|| model.chars().take(200).collect());
    }
    d1::run(
        env,
        "UPDATE users SET display_name = ?, default_model = ? WHERE id = ?",
        &[
            Arg::Text(&user.name),
            Arg::OptText(user.default_model.as_deref()),
            Arg::Text(&user.id),
        ],
    )
    .await?;
    // This isolate's next request reads the new name and model (others within the
    // sign-in cache's lifetime).
    crate::auth::cache::forget_user(&user.id);
    Ok(json(200, &me(env, &user).await?))
}
