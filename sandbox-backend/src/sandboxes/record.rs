//! What the backend remembers about a sandbox across restarts (`sandbox.json`), and
//! how that record is shown to clients.

use std::collections::BTreeMap;

use nightshift_protocol::sandbox::{GatewayLaunch, NetworkMode, Sandbox, SandboxStatus};
use serde::{Deserialize, Serialize};

use crate::providers::ProviderHandle;

/// One sandbox, as persisted. Not a wire type: clients see [`SandboxRecord::to_wire`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub provider: String,
    pub status: SandboxStatus,
    pub error: Option<String>,
    pub network: NetworkMode,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Environment for every command (may hold secrets: the file is 0600).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub default_timeout_ms: Option<u64>,
    /// Kept for the idle reaper of a later version; not enforced yet.
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    pub created_at: i64,
    /// Present when the sandbox was created with a runner.
    #[serde(default)]
    pub runner: Option<RunnerRecord>,
    /// What the provider returned from create/fork/start.
    #[serde(default)]
    pub handle: ProviderHandle,
    /// The template it was created from.
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub forked_from: Option<String>,
    /// Why the status is what it is, when not by request (idle timeout, reconcile).
    #[serde(default)]
    pub status_reason: Option<String>,
    /// The gateway it runs, with the session's gateway key (the file is 0600; never
    /// shown to clients).
    #[serde(default)]
    pub gateway: Option<GatewayLaunch>,
    /// Put to sleep (`POST .../sleep`) and not started since: its files are kept
    /// where a start brings them back from, even when its provider's plain stop
    /// keeps nothing (see `sandboxes::sleep`).
    #[serde(default)]
    pub asleep: bool,
}

/// The runner of a sandbox: enough to restart it after a backend restart, and to
/// recognise (and replace) one that outlived a backend crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerRecord {
    pub session_id: String,
    pub state: RunnerState,
    /// The current process, while one runs.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Its start time in clock ticks since boot: tells it apart from a later process
    /// that got the same pid.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    /// How many times a runner process was started for this sandbox.
    #[serde(default)]
    pub starts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerState {
    Running,
    /// It exited and is restarted after a back-off.
    Restarting,
    /// It exited with code 3; it stays down.
    TokenRejected,
    /// Stopped with the sandbox (or with the backend, which restarts it on start-up).
    Stopped,
}

/// Shown in the sandbox's `error` once its runner's token was rejected.
pub const TOKEN_REJECTED_MESSAGE: &str = "the runner's token was rejected (runner exit code 3), so the \
     runner stays down; create a new sandbox with a fresh token";

impl SandboxRecord {
    /// A record with every optional part empty (for tests and struct updates).
    pub fn blank() -> SandboxRecord {
        SandboxRecord {
            id: String::new(),
            provider: String::new(),
            status: SandboxStatus::Pending,
            error: None,
            network: NetworkMode::Private,
            labels: BTreeMap::new(),
            env: BTreeMap::new(),
            default_timeout_ms: None,
            idle_timeout_minutes: None,
            created_at: 0,
            runner: None,
            handle: ProviderHandle::none(),
            template: None,
            forked_from: None,
            status_reason: None,
            gateway: None,
            asleep: false,
        }
    }

    pub fn to_wire(&self) -> Sandbox {
        Sandbox {
            id: self.id.clone(),
            provider: self.provider.clone(),
            status: self.status,
            error: self.error.clone(),
            network: self.network,
            labels: self.labels.clone(),
            created_at: self.created_at,
            status_reason: self.status_reason.clone(),
            template: self.template.clone(),
            forked_from: self.forked_from.clone(),
            runner_digest: self.handle.runner_digest().map(String::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_view_leaves_out_env_and_runner_details() {
        let record = SandboxRecord {
            id: "sbx_1".into(),
            provider: "local".into(),
            status: SandboxStatus::Ready,
            error: None,
            network: NetworkMode::Private,
            labels: [("team".to_string(), "a".to_string())].into(),
            env: [("SECRET".to_string(), "x".to_string())].into(),
            default_timeout_ms: None,
            idle_timeout_minutes: None,
            created_at: 5,
            runner: None,
            gateway: Some(GatewayLaunch {
                session: "s1".into(),
                key: "ab".repeat(32).into(),
            }),
            ..SandboxRecord::blank()
        };
        let wire = serde_json::to_string(&record.to_wire()).unwrap();
        assert!(wire.contains("\"team\"") && !wire.contains("SECRET"));
        assert!(
            !wire.contains(&"ab".repeat(32)),
            "the gateway key stays private"
        );
        assert!(!format!("{record:?}").contains(&"ab".repeat(32)));
        let back: SandboxRecord =
            serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(back, record);
    }
}
