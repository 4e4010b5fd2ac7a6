//! The gateway's routes: where a sandbox's gateway is reached
//! (`GET /v1/sandboxes/{id}/tunnels`) and the relay to it for providers reached
//! through this backend (`ANY /v1/sandboxes/{id}/gateway/{path...}`, HTTP and
//! WebSocket upgrades; see [`crate::relay`]).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::HOST;
use axum::response::Response;
use nightshift_protocol::sandbox::SandboxTunnels;
use serde::Deserialize;

use crate::error::ApiError;
use crate::relay;
use crate::state::AppState;

/// The sandbox a gateway route names (the rest of the path is the relay's).
#[derive(Deserialize)]
pub struct SandboxId {
    id: String,
}

/// The relay's base URL for a sandbox, at the address the caller reached this
/// backend by (an authenticated caller: its `Host` is trusted as far as it goes).
fn relay_url(scheme: &str, host: Option<&str>, listen: &str, id: &str) -> String {
    let authority = host.filter(|host| !host.is_empty()).unwrap_or(listen);
    format!("{scheme}://{authority}/v1/sandboxes/{id}/gateway")
}

pub async fn tunnels(
    State(state): State<AppState>,
    Path(SandboxId { id }): Path<SandboxId>,
    request: Request,
) -> Result<Json<SandboxTunnels>, ApiError> {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|value| value.to_str().ok());
    let url = relay_url(state.scheme(), host, &state.listen().to_string(), &id);
    Ok(Json(state.sandboxes().tunnels(&id, url).await?))
}

pub async fn relay(
    State(state): State<AppState>,
    Path(SandboxId { id }): Path<SandboxId>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let prefix = format!("/v1/sandboxes/{id}/gateway");
    let target = relay::target(request.uri(), &prefix).ok_or_else(|| {
        ApiError::invalid_request("the relay path must be /v1/sandboxes/{id}/gateway/...")
    })?;
    let stream = state.sandboxes().open_gateway(&id).await?;
    relay::forward(stream, request, target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_url_is_where_the_caller_reached_the_backend() {
        assert_eq!(
            relay_url("http", Some("backend:8788"), "127.0.0.1:8788", "sbx_1"),
            "http://backend:8788/v1/sandboxes/sbx_1/gateway"
        );
        assert_eq!(
            relay_url("http", None, "127.0.0.1:8788", "sbx_1"),
            "http://127.0.0.1:8788/v1/sandboxes/sbx_1/gateway"
        );
        // Behind TLS (the backend's own or a proxy's) the relay is HTTPS too.
        assert_eq!(
            relay_url(
                "https",
                Some("sandboxes.example.com"),
                "0.0.0.0:8788",
                "sbx_1"
            ),
            "https://sandboxes.example.com/v1/sandboxes/sbx_1/gateway"
        );
    }
}
