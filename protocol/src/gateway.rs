//! What a sandbox's gateway (`gateway/`, `nightshift-gateway`) speaks besides plain
//! proxying: the control messages of its terminal WebSockets and the body of its
//! `/status`.
//!
//! A terminal WebSocket (`/terminal/{tab}`) carries the shell's output as binary
//! frames, gateway to client. Text frames are JSON: [`TerminalInput`] from the client
//! (keystrokes and resizes; a client may also send keystrokes as binary frames) and
//! [`TerminalNotice`] from the gateway.

use serde::{Deserialize, Serialize};

/// A text frame a terminal client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalInput {
    /// Keystrokes (or pasted text) for the shell.
    Input { data: String },
    /// The client's terminal size in character cells; the tab takes the last one sent.
    Resize { cols: u16, rows: u16 },
}

/// A text frame the gateway sends on a terminal WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalNotice {
    /// The tab's shell ended; the gateway closes the socket after this. Opening the
    /// tab again starts a new shell.
    Exited { message: String },
    /// A frame the gateway could not use (the socket stays open).
    Refused { message: String },
}

/// The state of one service the gateway supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Started (or restarting) and not yet answering its health check.
    Starting,
    /// Answering its health check.
    Ready,
    /// Not running: not installed, or waiting before a restart (see the reason).
    Unavailable,
}

/// One service in [`GatewayStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `display`, `window_manager`, `vnc`, `vnc_view_only`, `browser` or `vscode`.
    pub name: String,
    pub state: ServiceState,
    /// Why the service is not ready, for people (absent when ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of the gateway's `GET /status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStatus {
    pub session_id: String,
    pub services: Vec<ServiceStatus>,
}

/// `GET /api/sessions/{id}/workspace`: the caller's panels of a session, on the
/// session's panel origin (`<capability>.<panel domain>`), never the app's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// The panel origin, `http(s)://<capability>.<panel domain>`.
    pub origin: String,
    /// The caller's gateway role: `viewer`, `collaborator` or `owner`.
    pub role: String,
    /// The grant behind the capability; pass it back as `?renew=` to keep this same
    /// origin working (so an open editor never reloads).
    pub grant: String,
    /// Unix seconds from which the grant is refused unless renewed before.
    pub expires_at_secs: u64,
    /// Unix seconds after which the origin itself is refused (renewal cannot pass it).
    pub origin_expires_at_secs: u64,
    pub panels: Vec<Panel>,
}

/// One panel of [`Workspace`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Panel {
    pub kind: PanelKind,
    /// Where the panel's content is: an `http(s)` page for VS Code, a `ws(s)` URL for
    /// the desktop, and a `ws(s)` URL to append a tab name to for the terminal.
    /// Absent when the caller's role has no such panel (see `reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The desktop is view-only for viewers.
    #[serde(default)]
    pub view_only: bool,
    pub state: ServiceState,
    /// Why the panel is not ready, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The panels a session page shows besides the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    Vscode,
    Desktop,
    Terminal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn terminal_frames_have_the_documented_shape() {
        assert_eq!(
            serde_json::from_value::<TerminalInput>(
                json!({"type": "resize", "cols": 100, "rows": 30})
            )
            .unwrap(),
            TerminalInput::Resize {
                cols: 100,
                rows: 30
            }
        );
        assert_eq!(
            serde_json::from_value::<TerminalInput>(json!({"type": "input", "data": "ls\r"}))
                .unwrap(),
            TerminalInput::Input {
                data: "ls\r".into()
            }
        );
        assert_eq!(
            serde_json::to_value(TerminalNotice::Exited {
                message: "bye".into()
            })
            .unwrap(),
            json!({"type": "exited", "message": "bye"})
        );
    }

    #[test]
    fn a_status_names_each_service_and_says_why_it_is_not_ready() {
        let status = GatewayStatus {
            session_id: "s1".into(),
            services: vec![
                ServiceStatus {
                    name: "display".into(),
                    state: ServiceState::Ready,
                    reason: None,
                },
                ServiceStatus {
                    name: "vscode".into(),
                    state: ServiceState::Unavailable,
                    reason: Some("code-server is not installed".into()),
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!({"session_id": "s1", "services": [
                {"name": "display", "state": "ready"},
                {"name": "vscode", "state": "unavailable", "reason": "code-server is not installed"},
            ]})
        );
    }
}
