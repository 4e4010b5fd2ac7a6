//! `GET /api/sessions/{id}/presence`: who is watching the session now (one entry per
//! person with an open event stream), as its `SessionAgent` counts them.

use worker::{Env, Method, Response};

use crate::api_error::{self, ApiResult};
use crate::internal;

pub async fn get(env: &Env, session_id: &str) -> ApiResult<Response> {
    let response =
        internal::call_agent::<()>(env, session_id, Method::Get, "/presence", None).await?;
    if (200..300).contains(&response.status_code()) {
        Ok(response)
    } else {
        Err(api_error::from_response(response).await)
    }
}
