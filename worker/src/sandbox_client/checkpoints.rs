//! The backend's checkpoint routes, as the `SessionAgent` uses them after each turn
//! and for a rewind.

use std::time::Duration;

use nightshift_protocol::checkpoints::{CheckpointRestored, CheckpointTaken};
use worker::{Env, Method};

use super::{call, urlencoding_path};
use crate::config;

/// A checkpoint (a walk of the workspace, new bytes stored) answers within this.
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(60);
/// A restore stops the sandbox, rewrites its workspace and starts it again.
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a checkpoint call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointFailure {
    /// The sandbox's provider keeps no checkpoints (`unsupported`).
    Unsupported,
    /// Anything else, as a sentence.
    Failed(String),
}

fn failure(error: String) -> CheckpointFailure {
    if error.contains("(unsupported)") {
        CheckpointFailure::Unsupported
    } else {
        CheckpointFailure::Failed(error)
    }
}

pub async fn take_checkpoint(
    env: &Env,
    sandbox_id: &str,
) -> Result<CheckpointTaken, CheckpointFailure> {
    let base = config::sandbox_backend_url(env);
    let token = config::sandbox_backend_token(env)
        .ok_or_else(|| CheckpointFailure::Failed("SANDBOX_BACKEND_TOKEN is not set".into()))?;
    let url = format!(
        "{base}/v1/sandboxes/{}/checkpoints",
        urlencoding_path(sandbox_id)
    );
    call(Method::Post, &url, Some(&token), None, CHECKPOINT_TIMEOUT)
        .await
        .map_err(failure)
}

pub async fn restore_checkpoint(
    env: &Env,
    sandbox_id: &str,
    checkpoint_id: &str,
) -> Result<CheckpointRestored, CheckpointFailure> {
    let base = config::sandbox_backend_url(env);
    let token = config::sandbox_backend_token(env)
        .ok_or_else(|| CheckpointFailure::Failed("SANDBOX_BACKEND_TOKEN is not set".into()))?;
    let url = format!(
        "{base}/v1/sandboxes/{}/checkpoints/{}/restore",
        urlencoding_path(sandbox_id),
        urlencoding_path(checkpoint_id)
    );
    call(Method::Post, &url, Some(&token), None, RESTORE_TIMEOUT)
        .await
        .map_err(failure)
}
