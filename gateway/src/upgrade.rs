//! WebSocket upgrades as every route of the gateway takes them: the size bound on
//! what a client may send, and a JSON 400 for a request that is not an upgrade.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use nightshift_protocol::error::ErrorCode;

use crate::error::GatewayError;

/// The largest WebSocket message a client may send (keystrokes, a paste, RFB input
/// events); far above any real one, far below what would cost the gateway memory.
pub const MAX_CLIENT_MESSAGE: usize = 1024 * 1024;

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
