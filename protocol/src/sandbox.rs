//! Bodies of the sandbox backend's HTTP API (`/v1/...`, bearer-token authenticated).
//! The Worker's `SessionAgent` is one client; the API is usable on its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a sandbox may reach on the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// Outbound internet only: no host or private-network access.
    Isolated,
    /// May also reach the host's and the deployment's private services.
    #[default]
    Private,
    /// No network at all.
    None,
}

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxStatus {
    Pending,
    Initializing,
    Ready,
    Stopping,
    Stopped,
    Destroying,
    Destroyed,
    Error,
}

/// The runner a sandbox should start: it dials `worker_url` +
/// `/api/sessions/{session_id}/runner` with `token`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerLaunch {
    pub worker_url: String,
    pub session_id: String,
    pub token: String,
}

impl std::fmt::Debug for RunnerLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerLaunch")
            .field("worker_url", &self.worker_url)
            .field("session_id", &self.session_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `POST /v1/sandboxes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSandboxRequest {
    /// Defaults to the backend's configured default provider (`local`).
    #[serde(default)]
    pub provider: Option<String>,
    /// Environment baked into every command run in the sandbox.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub network: Option<NetworkMode>,
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    #[serde(default)]
    pub default_timeout_ms: Option<u64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Start a Nightshift runner in the sandbox, linked to a session.
    #[serde(default)]
    pub runner: Option<RunnerLaunch>,
}

/// A sandbox as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub id: String,
    pub provider: String,
    pub status: SandboxStatus,
    pub error: Option<String>,
    pub network: NetworkMode,
    pub labels: BTreeMap<String, String>,
    pub created_at: i64,
}

/// `GET /v1/sandboxes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxList {
    pub sandboxes: Vec<Sandbox>,
}

/// `GET /v1/health` (no token needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendHealth {
    pub ok: bool,
    pub version: String,
    pub providers: Vec<String>,
}

/// What a sandbox provider hands the runner it starts, as a JSON file passed with
/// `runner --config <path>`. The file lives outside the sandbox's workspace, where
/// commands the agent runs cannot read it; the runner rewrites `token` in it when the
/// `SessionAgent` renews the token, so a restarted runner can still connect.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerBootConfig {
    /// Base URL of the Worker, e.g. `http://127.0.0.1:8787`.
    pub worker_url: String,
    pub session_id: String,
    pub token: String,
    /// The workspace as the runner sees it (file tools work here).
    pub workspace_dir: String,
    /// Argv prefix that runs a command inside the sandbox, with the workspace as its
    /// working directory: the runner appends `["bash", "-lc", <command>]`. Empty when
    /// the runner itself runs inside the sandbox (container providers).
    #[serde(default)]
    pub command_wrapper: Vec<String>,
    /// The workspace path as commands inside the sandbox see it (e.g. `/workspace`).
    pub sandbox_workspace_dir: String,
}

impl std::fmt::Debug for RunnerBootConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerBootConfig")
            .field("worker_url", &self.worker_url)
            .field("session_id", &self.session_id)
            .field("token", &"<redacted>")
            .field("workspace_dir", &self.workspace_dir)
            .field("command_wrapper", &self.command_wrapper)
            .field("sandbox_workspace_dir", &self.sandbox_workspace_dir)
            .finish()
    }
}
