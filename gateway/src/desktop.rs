//! The desktop's VNC over a WebSocket (`/desktop/vnc`): binary frames carry the RFB
//! byte stream to and from an x11vnc on loopback, which is what noVNC's `RFB` speaks.
//!
//! Collaborators and owners reach the interactive x11vnc; viewers the second one,
//! started with `-viewonly`, which ignores their pointer, keys and clipboard. The
//! choice is made here from the token's role, not by anything the client sends.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::Caller;
use crate::error::GatewayError;
use crate::services::ServiceName;
use crate::state::AppState;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn vnc(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match crate::upgrade::websocket(upgrade) {
        Ok(upgrade) => upgrade,
        Err(error) => return error.into_response(),
    };
    let (service, port) = if caller.claims.role.drives_desktop() {
        (ServiceName::Vnc, state.config.vnc_port)
    } else {
        (ServiceName::VncViewOnly, state.config.vnc_view_port)
    };
    // Connect before upgrading, so a desktop that is down is a 503 with the reason
    // rather than a socket that opens and closes.
    let upstream = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        _ => return GatewayError::unavailable(state.status.why_not_ready(service)).into_response(),
    };
    upgrade
        .protocols(["binary"])
        .max_message_size(crate::upgrade::MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| bridge(socket, upstream))
}

async fn bridge(mut socket: WebSocket, mut upstream: TcpStream) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = upstream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Message::Binary(bytes::Bytes::copy_from_slice(&buffer[..n]));
                    if socket.send(frame).await.is_err() {
                        break;
                    }
                }
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if upstream.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                // RFB is binary only; text frames carry nothing for it.
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
