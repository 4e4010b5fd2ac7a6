//! LLM keys: `GET`/`POST /api/keys`, `DELETE /api/keys/{id}`.

use nightshift_protocol::ErrorCode;
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::auth::User;

pub async fn list(env: &Env, user: &User) -> ApiResult<Response> {
    let _ = (env, user);
    Err(ApiError::new(ErrorCode::Internal, "not available yet"))
}

pub async fn create(req: &mut Request, env: &Env, user: &User) -> ApiResult<Response> {
    let _ = (req, env, user);
    Err(ApiError::new(ErrorCode::Internal, "not available yet"))
}

pub async fn delete(env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let _ = (env, user, id);
    Err(ApiError::new(ErrorCode::Internal, "not available yet"))
}
