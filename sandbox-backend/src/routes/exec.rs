//! `POST /v1/sandboxes/{id}/exec`: NDJSON output lines as they come, or one JSON
//! result with `?stream=false`. If the client goes away the command is killed (the
//! output receiver is dropped with the response body).

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use nightshift_protocol::sandbox::{ExecOutput, ExecRequest};
use serde::Deserialize;

use super::JsonBody;
use crate::error::ApiError;
use crate::exec::collect;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ExecQuery {
    /// `false` for one JSON object instead of NDJSON lines.
    stream: Option<bool>,
}

pub async fn exec(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ExecQuery>, axum::extract::rejection::QueryRejection>,
    JsonBody(request): JsonBody<ExecRequest>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid_request(rejection.body_text()))?;
    let output = state.sandboxes().exec(&id, request).await?;
    if query.stream == Some(false) {
        return Ok(Json(collect(output).await).into_response());
    }
    let lines = futures::stream::unfold(output, |mut output| async move {
        let line = output.recv().await?;
        Some((Ok::<Bytes, Infallible>(ndjson_line(&line)), output))
    });
    Ok((
        [
            (CONTENT_TYPE, "application/x-ndjson"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

fn ndjson_line(line: &ExecOutput) -> Bytes {
    // Serializing these plain enums cannot fail; an empty object keeps the stream
    // well-formed if it ever did.
    let mut bytes = serde_json::to_vec(line).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    Bytes::from(bytes)
}
