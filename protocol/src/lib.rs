//! Nightshift's wire types, and nothing else.
//!
//! Every byte that crosses a process boundary in Nightshift is described here:
//! the REST bodies of the Worker's `/api` (see [`api`]), the SSE events the browser
//! receives ([`events`]), the WebSocket frames between a sandbox's runner and its
//! session's `SessionAgent` ([`runner_link`]), the sandbox backend's HTTP API
//! ([`sandbox`], its checkpoints in [`checkpoints`]), what a sandbox's gateway speaks on its terminal WebSockets and
//! `/status` ([`gateway`]), a session's GitHub repository and pull request ([`repo`]), the session list's filters and bulk bodies ([`session_list`]), spend reports and caps ([`usage`]), the inbox and the team's webhook ([`inbox`]), sleep times and their bounds ([`sleep`]) and the one error envelope every HTTP edge answers with ([`error`]).
//! Beside them, [`roles`] holds the one copy of what each role allows, since both
//! the Worker (which enforces it) and the app (which hides what would be refused)
//! decide with it.
//!
//! Invariant: this crate depends on `serde` and `serde_json` only, so it builds for
//! both `wasm32-unknown-unknown` (the Worker, the app) and native targets (the
//! runner, the sandbox backend, the tests). It never depends on a platform crate.

pub mod agent;
pub mod api;
pub mod artifacts;
pub mod auth;
pub mod calendar;
pub mod checkpoints;
pub mod conversation;
pub mod error;
pub mod events;
pub mod gateway;
pub mod inbox;
pub mod limits;
pub mod redacted;
pub mod repo;
pub mod roles;
pub mod runner_link;
pub mod sandbox;
pub mod session_list;
pub mod sleep;
pub mod usage;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};

/// The version every Nightshift part reports in `/api/health` and in the runner's
/// `hello` frame. All parts are built from one workspace, so one version covers them.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
