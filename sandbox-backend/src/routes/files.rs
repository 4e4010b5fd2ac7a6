//! `GET` and `PUT /v1/sandboxes/{id}/files?path=...`: raw bytes of one file in the
//! sandbox's workspace. Paths are relative to the workspace and never leave it.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::body_error;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct FilesQuery {
    path: String,
}

fn path_of(query: Result<Query<FilesQuery>, QueryRejection>) -> Result<String, ApiError> {
    query
        .map(|Query(query)| query.path)
        .map_err(|_| ApiError::invalid_request("the `path` query parameter is required"))
}

pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<FilesQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let path = path_of(query)?;
    let contents = state.sandboxes().read_file(&id, &path).await?;
    Ok(([(CONTENT_TYPE, "application/octet-stream")], contents))
}

pub async fn write(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<FilesQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let path = path_of(query)?;
    let body = body.map_err(body_error)?;
    state
        .sandboxes()
        .write_file(&id, &path, body.to_vec())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
