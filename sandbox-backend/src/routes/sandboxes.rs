//! Health and the sandbox resource itself: create, list, get, stop, destroy.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nightshift_protocol::sandbox::{BackendHealth, CreateSandboxRequest, Sandbox, SandboxList};

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

pub async fn create(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CreateSandboxRequest>,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let sandbox = state.sandboxes().create(request).await?;
    Ok((StatusCode::CREATED, Json(sandbox)))
}

pub async fn list(State(state): State<AppState>) -> Json<SandboxList> {
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
