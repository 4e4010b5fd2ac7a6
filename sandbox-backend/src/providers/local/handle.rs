//! What the local provider persists about a running sandbox (its bubblewrap's pid),
//! and how to tell that it still runs and to end it.
//!
//! The pid is kept with its start time, because a sandbox outlives the backend that
//! started it and a pid read back after a restart may have been recycled.

use std::path::Path;
use std::time::Duration;

use super::sandbox_agent::client as agent;
use crate::providers::ProviderHandle;

/// How long a stopped sandbox's processes get to go away.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the local provider persists about a running sandbox.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct LocalHandle {
    /// Bubblewrap's pid on the host, with its start time (a recycled pid differs).
    pub(super) pid: u32,
    pub(super) start_ticks: Option<u64>,
    /// The name of its cgroups, when not the sandbox's id (a warm sandbox's).
    #[serde(default)]
    pub(super) cgroup: Option<String>,
}

pub(super) fn handle_value(handle: &LocalHandle) -> ProviderHandle {
    ProviderHandle(serde_json::to_value(handle).unwrap_or_default())
}

pub(super) fn parse_handle(handle: &ProviderHandle) -> Option<LocalHandle> {
    serde_json::from_value(handle.0.clone()).ok()
}

/// Whether the recorded bubblewrap still runs.
pub(super) fn alive(handle: &LocalHandle) -> bool {
    handle.pid > 1
        && match handle.start_ticks {
            Some(ticks) => crate::process::start_ticks(handle.pid) == Some(ticks),
            None => crate::process::start_ticks(handle.pid).is_some(),
        }
}

/// Ends a sandbox: asks its agent (on `socket`) to end it, and kills what is left of
/// the recorded bubblewrap once `STOP_TIMEOUT` has passed.
pub(super) async fn end_sandbox(socket: &Path, handle: Option<&LocalHandle>) {
    let _ = agent::shutdown(socket).await;
    if let Some(handle) = handle {
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while alive(handle) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        kill_sandbox(handle).await;
    }
}

/// Kills a sandbox by force: bubblewrap's child (the sandbox's init, whose death
/// ends every process of its PID namespace) and bubblewrap itself.
pub(super) async fn kill_sandbox(handle: &LocalHandle) {
    if !alive(handle) {
        return;
    }
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", handle.pid))
        .unwrap_or_default();
    for child in children
        .split_whitespace()
        .filter_map(|pid| pid.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if let Ok(pid) = i32::try_from(handle.pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let deadline = std::time::Instant::now() + STOP_TIMEOUT;
    while alive(handle) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
