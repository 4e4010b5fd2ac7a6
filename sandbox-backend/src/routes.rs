//! The HTTP API: which route goes to which handler, and the extractors that turn
//! malformed requests into the protocol's error envelope. Handlers are thin: parse,
//! call [`crate::sandboxes::Sandboxes`], map the result to a response.

mod checkpoints;
mod exec;
mod files;
mod gateway;
pub mod openapi;
mod processes;
mod sandboxes;
mod templates;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware;
use axum::routing::{any, get, post};
use nightshift_protocol::ErrorCode;
use serde::de::DeserializeOwned;

use crate::auth::require_token;
use crate::error::ApiError;
use crate::files::MAX_FILE_BYTES;
use crate::state::AppState;

/// Every route: method and path (as in the OpenAPI document, which a test keeps equal
/// to this list and to the router).
pub const ROUTES: [(&str, &str); 34] = [
    ("GET", "/v1/health"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/providers"),
    ("GET", "/v1/sandboxes"),
    ("POST", "/v1/sandboxes"),
    ("GET", "/v1/sandboxes/{id}"),
    ("DELETE", "/v1/sandboxes/{id}"),
    ("POST", "/v1/sandboxes/{id}/stop"),
    ("POST", "/v1/sandboxes/{id}/start"),
    ("POST", "/v1/sandboxes/{id}/sleep"),
    ("POST", "/v1/sandboxes/{id}/wake"),
    ("POST", "/v1/sandboxes/{id}/fork"),
    ("GET", "/v1/sandboxes/{id}/checkpoints"),
    ("POST", "/v1/sandboxes/{id}/checkpoints"),
    (
        "POST",
        "/v1/sandboxes/{id}/checkpoints/{checkpoint}/restore",
    ),
    ("POST", "/v1/sandboxes/{id}/exec"),
    ("GET", "/v1/sandboxes/{id}/files"),
    ("PUT", "/v1/sandboxes/{id}/files"),
    ("GET", "/v1/sandboxes/{id}/processes"),
    ("POST", "/v1/sandboxes/{id}/processes"),
    ("GET", "/v1/sandboxes/{id}/processes/{pid}"),
    ("GET", "/v1/sandboxes/{id}/processes/{pid}/output"),
    ("POST", "/v1/sandboxes/{id}/processes/{pid}/stdin"),
    ("POST", "/v1/sandboxes/{id}/processes/{pid}/kill"),
    ("GET", "/v1/sandboxes/{id}/tunnels"),
    // The relay takes every method; these are the ones the document lists.
    ("GET", "/v1/sandboxes/{id}/gateway/{path}"),
    ("POST", "/v1/sandboxes/{id}/gateway/{path}"),
    ("PUT", "/v1/sandboxes/{id}/gateway/{path}"),
    ("DELETE", "/v1/sandboxes/{id}/gateway/{path}"),
    ("PATCH", "/v1/sandboxes/{id}/gateway/{path}"),
    ("GET", "/v1/templates"),
    ("POST", "/v1/templates"),
    ("GET", "/v1/templates/{id}"),
    ("DELETE", "/v1/templates/{id}"),
];

/// JSON bodies (sandbox creation, exec requests with their stdin) up to this size.
const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route(
            "/v1/sandboxes",
            get(sandboxes::list).post(sandboxes::create),
        )
        .route(
            "/v1/sandboxes/{id}",
            get(sandboxes::get_one).delete(sandboxes::destroy),
        )
        .route("/v1/sandboxes/{id}/stop", post(sandboxes::stop))
        .route("/v1/sandboxes/{id}/start", post(sandboxes::start))
        .route("/v1/sandboxes/{id}/sleep", post(sandboxes::sleep))
        .route("/v1/sandboxes/{id}/wake", post(sandboxes::wake))
        .route("/v1/sandboxes/{id}/fork", post(sandboxes::fork))
        .route(
            "/v1/sandboxes/{id}/checkpoints",
            get(checkpoints::list).post(checkpoints::take),
        )
        .route(
            "/v1/sandboxes/{id}/checkpoints/{checkpoint}/restore",
            post(checkpoints::restore),
        )
        .route("/v1/sandboxes/{id}/exec", post(exec::exec))
        .route(
            "/v1/sandboxes/{id}/processes",
            get(processes::list).post(processes::start),
        )
        .route(
            "/v1/sandboxes/{id}/processes/{pid}",
            get(processes::get_one),
        )
        .route(
            "/v1/sandboxes/{id}/processes/{pid}/output",
            get(processes::output),
        )
        .route(
            "/v1/sandboxes/{id}/processes/{pid}/stdin",
            post(processes::stdin),
        )
        .route(
            "/v1/sandboxes/{id}/processes/{pid}/kill",
            post(processes::kill),
        )
        .route("/v1/sandboxes/{id}/tunnels", get(gateway::tunnels))
        .route("/v1/sandboxes/{id}/gateway", any(gateway::relay))
        // A wildcard matches no empty rest: the gateway's root needs its own route.
        .route("/v1/sandboxes/{id}/gateway/", any(gateway::relay))
        .route("/v1/sandboxes/{id}/gateway/{*path}", any(gateway::relay))
        .route("/v1/providers", get(templates::providers))
        .route(
            "/v1/templates",
            get(templates::list).post(templates::create),
        )
        .route(
            "/v1/templates/{id}",
            get(templates::get_one).delete(templates::delete),
        )
        .route("/v1/openapi.json", get(openapi::serve))
        .route(
            "/v1/sandboxes/{id}/files",
            get(files::read)
                .put(files::write)
                .layer(DefaultBodyLimit::max(MAX_FILE_BYTES)),
        )
        // Inside the token check: only an authenticated caller makes the backend ask
        // its providers about an id.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            sandboxes::adopt_shared,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/v1/health", get(sandboxes::health))
        .merge(protected)
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// A JSON body whose problems are answered as `invalid_json` (or
/// `payload_too_large`), whatever the content type says.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| {
                ApiError::invalid_json(format!(
                    "the body is not the JSON this route expects: {error}"
                ))
            })
    }
}

/// Why a body could not be read.
pub fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
    } else {
        ApiError::invalid_request(format!(
            "cannot read the request body: {}",
            rejection.body_text()
        ))
    }
}
