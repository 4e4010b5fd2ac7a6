//! A session's images (the browser tool's screenshots): `POST
//! /api/sessions/{id}/artifacts` takes one from the session's runner, `GET
//! /api/sessions/{id}/artifacts/{artifact}` serves it to whoever may view the session.
//!
//! An upload comes out of the sandbox (the pixels are a page's, the bytes the
//! runner's), so it is checked before anything is stored: the runner token names
//! this session, the body is at most `MAX_ARTIFACT_BYTES`, starts with a PNG
//! signature and an `IHDR` whose dimensions are sane (`protocol::artifacts`). Only
//! then is it written to R2 (`FILES`) under `sessions/<session>/artifacts/<uuid>`,
//! with an id the Worker chose; the event log holds only that id. Served images
//! carry `nosniff` and `Content-Security-Policy: sandbox`, so even a file that got
//! past the check could not run as a page on the app's origin.

use std::time::Duration;

use nightshift_protocol::ErrorCode;
use nightshift_protocol::artifacts::{
    ArtifactCreated, MAX_ARTIFACT_BYTES, PNG_MEDIA_TYPE, is_artifact_id, png_dimensions,
};
use worker::{Env, HttpMetadata, Request, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::RunnerGrant;
use crate::timeout::with_timeout;

/// The R2 binding images are kept in.
const BUCKET: &str = "FILES";
/// How long one R2 call may take.
const R2_TIMEOUT: Duration = Duration::from_secs(15);

/// Where an artifact of a session is kept.
fn key(session_id: &str, artifact: &str) -> String {
    format!("sessions/{session_id}/artifacts/{artifact}")
}

/// The prefix of every artifact of a session.
pub fn prefix(session_id: &str) -> String {
    format!("sessions/{session_id}/artifacts/")
}

fn storage_failed(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("the artifact store failed: {error}"))
}

/// `POST /api/sessions/{id}/artifacts` (runner token): stores one PNG.
pub async fn upload(req: &mut Request, env: &Env, grant: &RunnerGrant) -> ApiResult<Response> {
    let media_type = req
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .unwrap_or_default();
    if media_type.split(';').next().map(str::trim) != Some(PNG_MEDIA_TYPE) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "an artifact is sent as Content-Type: image/png",
        ));
    }
    let bytes = crate::body::read_at_most(req, MAX_ARTIFACT_BYTES).await?;
    let (width, height) = png_dimensions(&bytes)
        .map_err(|refusal| ApiError::new(ErrorCode::InvalidRequest, refusal.message()))?;
    // The token names the session, so only a deleted session gets here unknown.
    if crate::sessions_table::get_owner(env, &grant.session_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no session {}",
            grant.session_id
        )));
    }
    let artifact = crate::ids::new_id()?;
    let size = bytes.len() as u64;
    let bucket = env.bucket(BUCKET)?;
    let metadata = HttpMetadata {
        content_type: Some(PNG_MEDIA_TYPE.to_string()),
        ..HttpMetadata::default()
    };
    with_timeout(
        R2_TIMEOUT,
        bucket
            .put(key(&grant.session_id, &artifact), bytes)
            .http_metadata(metadata)
            .execute(),
    )
    .await
    .map_err(storage_failed)?
    .map_err(storage_failed)?;
    Ok(json(
        201,
        &ArtifactCreated {
            artifact,
            width,
            height,
            bytes: size,
        },
    ))
}

/// `GET /api/sessions/{id}/artifacts/{artifact}`: the image, for a viewer of the
/// session (access was checked before this runs).
pub async fn get(env: &Env, session_id: &str, artifact: &str) -> ApiResult<Response> {
    let missing = || ApiError::not_found(format!("no artifact {artifact} in this session"));
    if !is_artifact_id(artifact) {
        return Err(missing());
    }
    let bucket = env.bucket(BUCKET)?;
    let object = with_timeout(R2_TIMEOUT, bucket.get(key(session_id, artifact)).execute())
        .await
        .map_err(storage_failed)?
        .map_err(storage_failed)?
        .ok_or_else(missing)?;
    let body = object.body().ok_or_else(missing)?;
    let bytes = with_timeout(R2_TIMEOUT, body.bytes())
        .await
        .map_err(storage_failed)?
        .map_err(storage_failed)?;
    let response = Response::from_bytes(bytes)?;
    let headers = response.headers();
    headers.set("content-type", PNG_MEDIA_TYPE)?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("content-security-policy", "sandbox")?;
    // An artifact never changes; only the signed-in viewer's browser keeps it.
    headers.set("cache-control", "private, max-age=86400, immutable")?;
    Ok(response)
}

/// Deletes every artifact of a session (when the session is deleted). Best effort:
/// a failure is logged, and the objects stay unreachable since no session serves them.
pub async fn delete_all(env: &Env, session_id: &str) {
    let Ok(bucket) = env.bucket(BUCKET) else {
        return;
    };
    // A session makes few artifacts; a bounded number of pages is enough.
    for _ in 0..20 {
        let listed = with_timeout(
            R2_TIMEOUT,
            bucket.list().prefix(prefix(session_id)).execute(),
        )
        .await;
        let objects = match listed {
            Ok(Ok(objects)) => objects,
            _ => {
                worker::console_warn!("listing the artifacts of {session_id} failed");
                return;
            }
        };
        let keys: Vec<String> = objects
            .objects()
            .iter()
            .map(|object| object.key())
            .collect();
        if keys.is_empty() {
            return;
        }
        if !matches!(
            with_timeout(R2_TIMEOUT, bucket.delete_multiple(keys)).await,
            Ok(Ok(()))
        ) {
            worker::console_warn!("deleting the artifacts of {session_id} failed");
            return;
        }
        if !objects.truncated() {
            return;
        }
    }
}
