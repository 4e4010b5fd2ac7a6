//! `GET /api/sessions/{id}/presence`: who is watching the session now (filled in by
//! the session's event streams).

use nightshift_protocol::auth::{SessionRole, Viewer};
use worker::{Env, Response};

use crate::api_error::{ApiResult, json};

pub async fn get(env: &Env, session_id: &str, role: Option<SessionRole>) -> ApiResult<Response> {
    let _ = (env, session_id, role);
    let viewers: Vec<Viewer> = Vec::new();
    Ok(json(200, &viewers))
}
