//! The terminal WebSocket (`/terminal/{tab}`): replays the tab's scroll-back, then
//! streams its output as binary frames and takes keystrokes and resizes
//! ([`TerminalInput`] text frames, or raw keystrokes as binary frames).

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use nightshift_protocol::gateway::{TerminalInput, TerminalNotice};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

use super::{Tab, TabEvent};

/// Close code for a client that fell too far behind the shell's output.
const CLOSE_TOO_SLOW: u16 = 4008;

pub async fn serve(mut socket: WebSocket, tab: Arc<Tab>) {
    let (backlog, mut events, exited) = tab.attach();
    if !backlog.is_empty() && socket.send(Message::Binary(backlog.into())).await.is_err() {
        return;
    }
    if let Some(message) = exited {
        finish(socket, message).await;
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(TabEvent::Output(bytes)) => {
                    if socket.send(Message::Binary(bytes)).await.is_err() {
                        return;
                    }
                }
                Ok(TabEvent::Exited(message)) => {
                    finish(socket, message).await;
                    return;
                }
                Err(RecvError::Lagged(_)) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: CLOSE_TOO_SLOW,
                            reason: "fell behind the terminal's output; reconnect to replay it".into(),
                        })))
                        .await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if let Err(why) = tab.write(bytes.to_vec()) {
                        refuse(&mut socket, why.to_owned()).await;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    let outcome = match serde_json::from_str::<TerminalInput>(text.as_str()) {
                        Ok(TerminalInput::Input { data }) => tab.write(data.into_bytes()).map_err(str::to_owned),
                        Ok(TerminalInput::Resize { cols, rows }) => tab.resize(cols, rows),
                        Err(error) => Err(format!("not a terminal message: {error}")),
                    };
                    if let Err(why) = outcome {
                        refuse(&mut socket, why).await;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            },
        }
    }
}

async fn refuse(socket: &mut WebSocket, message: String) {
    let notice = TerminalNotice::Refused { message };
    if let Ok(text) = serde_json::to_string(&notice) {
        let _ = socket.send(Message::Text(text.into())).await;
    }
}

async fn finish(mut socket: WebSocket, message: String) {
    let notice = TerminalNotice::Exited { message };
    if let Ok(text) = serde_json::to_string(&notice) {
        let _ = socket.send(Message::Text(text.into())).await;
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "the shell exited".into(),
        })))
        .await;
}
