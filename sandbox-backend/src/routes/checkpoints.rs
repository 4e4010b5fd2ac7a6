//! A sandbox's checkpoints: take one, list them, restore one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nightshift_protocol::checkpoints::{CheckpointList, CheckpointRestored, CheckpointTaken};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn take(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CheckpointTaken>), ApiError> {
    let taken = state.sandboxes().take_checkpoint(&id).await?;
    Ok((StatusCode::CREATED, Json(taken)))
}

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CheckpointList>, ApiError> {
    Ok(Json(CheckpointList {
        checkpoints: state.sandboxes().checkpoints(&id)?,
    }))
}

pub async fn restore(
    State(state): State<AppState>,
    Path((id, checkpoint)): Path<(String, String)>,
) -> Result<Json<CheckpointRestored>, ApiError> {
    Ok(Json(
        state
            .sandboxes()
            .restore_checkpoint(&id, &checkpoint)
            .await?,
    ))
}
