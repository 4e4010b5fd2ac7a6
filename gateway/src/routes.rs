//! The gateway's routes and what each role may reach:
//!
//! | route | who |
//! | --- | --- |
//! | `GET /healthz` | anyone (no token; says only that the gateway is up) |
//! | `GET /status` | any valid token |
//! | `/vscode/...` (HTTP and WebSocket) | collaborator, owner (viewer: 403) |
//! | `GET /desktop/vnc` (WebSocket) | everyone: viewers get the view-only VNC |
//! | `GET /terminal/{tab}` (WebSocket) | collaborator, owner (viewer: 403) |
//!
//! Anything else is a 404 in the JSON envelope.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router, middleware};
use nightshift_protocol::error::ErrorCode;
use nightshift_protocol::gateway::GatewayStatus;

use crate::auth::{self, Caller};
use crate::error::GatewayError;
use crate::state::AppState;
use crate::terminal;
use crate::upgrade::{MAX_CLIENT_MESSAGE, websocket};
use crate::{desktop, vscode};

pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/status", get(status))
        .route("/terminal/{tab}", get(terminal))
        .route("/desktop/vnc", get(desktop::vnc))
        .route("/vscode", any(vscode::proxy))
        .route("/vscode/", any(vscode::proxy))
        .route("/vscode/{*rest}", any(vscode::proxy))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(guarded)
        .with_state(state)
}

async fn status(State(state): State<AppState>) -> Json<GatewayStatus> {
    Json(GatewayStatus {
        session_id: state.session_id.clone(),
        services: state.status.snapshot(),
    })
}

async fn terminal(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(tab): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !caller.claims.role.may_change_workspace() {
        return GatewayError::forbidden("viewers do not get a terminal").into_response();
    }
    let upgrade = match websocket(upgrade) {
        Ok(upgrade) => upgrade,
        Err(error) => return error.into_response(),
    };
    if !terminal::valid_tab_name(&tab) {
        return GatewayError::new(
            ErrorCode::InvalidRequest,
            "a tab name is 1 to 32 letters, digits, '-' or '_'",
        )
        .into_response();
    }
    match state.terminals.open(&tab) {
        Ok(tab) => upgrade
            .max_message_size(MAX_CLIENT_MESSAGE)
            .on_upgrade(move |socket| terminal::socket::serve(socket, tab)),
        Err(error) => error.into_response(),
    }
}

async fn method_not_allowed() -> GatewayError {
    GatewayError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method",
    )
}

async fn not_found() -> GatewayError {
    GatewayError::new(ErrorCode::NotFound, "no such route in the gateway")
}
