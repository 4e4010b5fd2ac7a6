//! Background processes: start, list, inspect, stream output from an offset, write
//! to stdin, kill.

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use nightshift_protocol::sandbox::{
    ProcessInfo, ProcessList, ProcessStdinRequest, StartProcessRequest,
};
use serde::Deserialize;

use super::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<StartProcessRequest>,
) -> Result<(StatusCode, Json<ProcessInfo>), ApiError> {
    let process = state.sandboxes().start_process(&id, request).await?;
    Ok((StatusCode::CREATED, Json(process)))
}

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProcessList>, ApiError> {
    Ok(Json(ProcessList {
        processes: state.sandboxes().processes(&id)?,
    }))
}

pub async fn get_one(
    State(state): State<AppState>,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Json<ProcessInfo>, ApiError> {
    Ok(Json(state.sandboxes().process_info(&id, &pid)?))
}

#[derive(Debug, Deserialize)]
pub struct OutputQuery {
    /// Start of both streams (default 0).
    offset: Option<u64>,
    stdout_offset: Option<u64>,
    stderr_offset: Option<u64>,
    /// Keep streaming until the process ends (default true).
    follow: Option<bool>,
}

pub async fn output(
    State(state): State<AppState>,
    Path((id, pid)): Path<(String, String)>,
    query: Result<Query<OutputQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid_request(rejection.body_text()))?;
    let base = query.offset.unwrap_or(0);
    let lines = state.sandboxes().process_output(
        &id,
        &pid,
        query.stdout_offset.unwrap_or(base),
        query.stderr_offset.unwrap_or(base),
        query.follow.unwrap_or(true),
    )?;
    let stream = futures::stream::unfold(lines, |mut lines| async move {
        let line = lines.recv().await?;
        let mut bytes = serde_json::to_vec(&line).unwrap_or_else(|_| b"{}".to_vec());
        bytes.push(b'\n');
        Some((Ok::<Bytes, Infallible>(Bytes::from(bytes)), lines))
    });
    Ok((
        [
            (CONTENT_TYPE, "application/x-ndjson"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn stdin(
    State(state): State<AppState>,
    Path((id, pid)): Path<(String, String)>,
    JsonBody(request): JsonBody<ProcessStdinRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .sandboxes()
        .process_stdin(&id, &pid, request.data, request.eof)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(
    State(state): State<AppState>,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Json<ProcessInfo>, ApiError> {
    Ok(Json(state.sandboxes().kill_process(&id, &pid).await?))
}
