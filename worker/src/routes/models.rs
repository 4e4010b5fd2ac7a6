//! `GET /api/models`: the models the caller can choose for a session, from the LLM
//! providers configured for them (see `crate::llm_config`).

use worker::{Env, Response};

use crate::api_error::{ApiResult, json};
use crate::auth::User;
use crate::llm_config;

pub async fn list(env: &Env, user: &User) -> ApiResult<Response> {
    Ok(json(
        200,
        &llm_config::available_models_with_keys(env, &user.id).await,
    ))
}
