//! Health and the sandbox resource itself: create, list, get, stop, start, sleep,
//! wake, destroy.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nightshift_protocol::sandbox::{
    BackendHealth, CreateSandboxRequest, ForkRequest, Sandbox, SandboxList, SandboxSnapshot,
    WakeSandboxRequest,
};

use super::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Json<BackendHealth> {
    Json(BackendHealth {
        ok: true,
        version: nightshift_protocol::VERSION.into(),
        providers: state.sandboxes().provider_names(),
    })
}

/// Before a route of one sandbox: a sandbox another backend created with a sharing
/// provider becomes known here (see `crate::sandboxes::shared`).
pub async fn adopt_shared(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(id) = sandbox_id_of(request.uri().path()) {
        state.sandboxes().adopt(id).await;
    }
    next.run(request).await
}

/// The `{id}` of a `/v1/sandboxes/{id}/...` path.
fn sandbox_id_of(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/sandboxes/")?
        .split('/')
        .next()
        .filter(|id| !id.is_empty())
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CreateSandboxRequest>,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let sandbox = state.sandboxes().create(request).await?;
    Ok((StatusCode::CREATED, Json(sandbox)))
}

pub async fn list(State(state): State<AppState>) -> Json<SandboxList> {
    state.sandboxes().refresh_shared().await;
    Json(SandboxList {
        sandboxes: state.sandboxes().list(),
    })
}

pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.sandboxes().get(&id)?))
}

pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.sandboxes().stop(&id).await?))
}

pub async fn destroy(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.sandboxes().destroy(&id).await?))
}

pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.sandboxes().start(&id).await?))
}

/// Stops the sandbox with its files kept (see `crate::sandboxes::sleep`).
pub async fn sleep(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SandboxSnapshot>, ApiError> {
    Ok(Json(state.sandboxes().sleep(&id).await?))
}

/// The body is optional: an empty one wakes with the runner's stored token.
pub async fn wake(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Sandbox>, ApiError> {
    let request: WakeSandboxRequest = if body.iter().all(u8::is_ascii_whitespace) {
        WakeSandboxRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::invalid_json(format!("the body is not a wake request: {error}"))
        })?
    };
    Ok(Json(state.sandboxes().wake(&id, request).await?))
}

/// The body is optional: an empty one forks with no overrides.
pub async fn fork(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let request: ForkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ForkRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::invalid_json(format!("the body is not a fork request: {error}"))
        })?
    };
    let sandbox = state.sandboxes().fork(&id, request).await?;
    Ok((StatusCode::CREATED, Json(sandbox)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_id_is_the_segment_after_sandboxes() {
        assert_eq!(sandbox_id_of("/v1/sandboxes/sbx_1"), Some("sbx_1"));
        assert_eq!(sandbox_id_of("/v1/sandboxes/sbx_1/files"), Some("sbx_1"));
        assert_eq!(sandbox_id_of("/v1/sandboxes"), None);
        assert_eq!(sandbox_id_of("/v1/sandboxes/"), None);
        assert_eq!(sandbox_id_of("/v1/templates/tpl_1"), None);
    }
}
