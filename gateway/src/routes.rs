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

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router, middleware};
use nightshift_protocol::error::ErrorCode;
use nightshift_protocol::gateway::GatewayStatus;
use nightshift_session::gateway_token::GatewayKey;

use crate::auth::{self, Caller};
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::services::StatusTable;
use crate::terminal::{self, Terminals};
use crate::{desktop, vscode};

/// The largest WebSocket message a client may send (keystrokes, a paste, RFB input
/// events); far above any real one, far below what would cost the gateway memory.
pub const MAX_CLIENT_MESSAGE: usize = 1024 * 1024;

/// What every route shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<GatewayConfig>,
    pub session_id: String,
    pub key: GatewayKey,
    pub status: StatusTable,
    pub terminals: Terminals,
}

impl AppState {
    pub fn new(config: GatewayConfig, key: GatewayKey, status: StatusTable) -> Self {
        let terminals = Terminals::new(config.workspace.clone(), config.max_tabs);
        Self {
            session_id: config.session_id.clone(),
            config: Arc::new(config),
            key,
            status,
            terminals,
        }
    }
}

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

/// The upgrade of a WebSocket route, or the JSON 400 for a request that is not one
/// (axum's own rejection is plain text).
pub fn websocket(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, GatewayError> {
    upgrade.map_err(|rejection| {
        GatewayError::new(
            ErrorCode::InvalidRequest,
            format!("this route is a WebSocket: {rejection}"),
        )
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
