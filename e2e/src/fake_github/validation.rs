//! The fake GitHub's validation layer: every exchange through the fake's REST routes
//! is checked against GitHub's OpenAPI description ([`crate::github_openapi`]) as it
//! happens. A request that breaks the description never reaches the handler (so it
//! changes no state); a response that breaks it is not delivered. Either way the
//! client gets a 500 naming the violation, the violation is printed and recorded,
//! and the fake fails the test when it is dropped unless the test took the
//! violations it expected ([`super::FakeGithub::take_violations`]).
//!
//! The OAuth web-flow endpoints live on github.com, outside the REST description;
//! they are listed in [`OUTSIDE_REST`] and checked by their handlers alone.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use crate::github_openapi;

/// Paths the fake serves that GitHub's REST description does not cover.
pub const OUTSIDE_REST: &[&str] = &["/login/oauth/access_token", "/login/oauth/authorize"];

const MAX_BODY: usize = 16 << 20;

fn parse(bytes: &[u8]) -> Result<Option<Value>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| format!("the body is not JSON: {e}"))
}

fn refuse(shared: &Shared, what: String) -> Response {
    eprintln!("fake GitHub: {what}");
    shared.book().violations.push(what.clone());
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({ "message": what })),
    )
        .into_response()
}

/// The middleware: see the module comment.
pub async fn layer(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if OUTSIDE_REST.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_string();
    let place = format!("{method} {path}");
    let description = match github_openapi::description() {
        Ok(description) => description,
        Err(e) => return refuse(&shared, format!("{place}: {e:#}")),
    };
    let Some((template, operation)) = description.operation(&method, &path) else {
        return refuse(
            &shared,
            format!("{place}: no such operation in GitHub's OpenAPI description"),
        );
    };
    let place = format!(
        "{place} ({template}, @octokit/openapi {})",
        description.version()
    );
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return refuse(&shared, format!("{place}: request body unreadable"));
    };
    let checked = parse(&bytes)
        .and_then(|body| description.check_request(template, operation, body.as_ref()));
    if let Err(e) = checked {
        return refuse(
            &shared,
            format!("{place}: the request violates the description: {e}"),
        );
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return refuse(&shared, format!("{place}: response body unreadable"));
    };
    let mut body = match parse(&bytes) {
        Ok(body) => body,
        Err(e) => return refuse(&shared, format!("{place}: the response: {e}")),
    };
    let corrupt = shared.book().corrupt_next.take();
    let bytes = match (corrupt, body.as_mut()) {
        (Some(corrupt), Some(value)) => {
            corrupt(value);
            parts.headers.remove(header::CONTENT_LENGTH);
            bytes::Bytes::from(value.to_string())
        }
        _ => bytes,
    };
    let status = parts.status.as_u16();
    if let Err(e) = description.check_response(template, operation, status, body.as_ref()) {
        return refuse(
            &shared,
            format!("{place}: the response violates the description: {e}"),
        );
    }
    Response::from_parts(parts, Body::from(bytes))
}
