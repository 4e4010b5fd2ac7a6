//! Sleep and wake: a session that idles has its sandbox stopped with its files kept,
//! and started again when it is needed.
//!
//! Sleeping is a stop that answers what was kept ([`SandboxSnapshot`]); waking is a
//! start that first hands the runner the token it is to dial back with (the one it
//! slept with was retired by the `SessionAgent`). What is kept, per provider:
//! - `local`: the stopped sandbox's own directory (workspace, home, the cloned
//!   repository, OpenCode's home): kind `directory`. The runner runs on the host, so
//!   waking always starts this backend's current runner binary.
//! - `docker`: the stopped container (its writable layer), kind `stopped_container`;
//!   no image is committed. Waking a session's container installs the runner a new
//!   sandbox would get (the current image's) into it before it starts, and starts
//!   that one, not the one the container was made with; the woken sandbox's
//!   `runner_digest` names it (`providers/docker/runner_install.rs`).
//! - `modal`: a stop ends a Modal sandbox with its filesystem, so the files are kept
//!   first (`Provider::keep_for_sleep`: `SandboxSnapshotFs`, whole filesystem,
//!   workspace and home), kind `filesystem_image`; the image id lives in the
//!   backend's record (the provider's handle), never in what a caller sends. Then the
//!   Modal sandbox is terminated (no compute while asleep). Waking creates a new
//!   Modal sandbox from that image for the same backend id. Modal sandboxes host no
//!   session runner (docs/PROVIDERS.md), so there is no runner to bring back.
//! - `railway`: the same shape: a destroyed Railway sandbox keeps nothing, so the
//!   disk is kept first as a checkpoint (`sandboxCheckpointCreate`), kind
//!   `checkpoint`; then the sandbox is destroyed, and a wake boots a new one from the
//!   checkpoint. Railway sandboxes host no session runner either.
//! - A provider claims sleep with `Capabilities::sleep`; one that does not is refused
//!   with `invalid_request` and the session stays awake.
//!
//! A sleep is recorded (`asleep`, and the provider's handle naming what was kept)
//! before the sandbox is stopped. A keep that fails changes nothing (the sandbox
//! stays ready); a stop that fails after it leaves the sandbox in `error`, asleep, and
//! a second sleep finishes the stop; a wake that fails leaves it stopped and asleep,
//! to be woken again or destroyed (which removes what was kept).

use nightshift_protocol::sandbox::{Sandbox, SandboxSnapshot, WakeSandboxRequest};

use super::store::write_private;
use super::{Sandboxes, now_millis};
use crate::error::ApiError;

/// How a provider's sleeping sandbox keeps its files; `None` when it cannot sleep.
pub fn snapshot_kind(provider: &str) -> Option<&'static str> {
    match provider {
        "local" => Some("directory"),
        "docker" => Some("stopped_container"),
        "modal" => Some("filesystem_image"),
        "railway" => Some("checkpoint"),
        _ => None,
    }
}

impl Sandboxes {
    /// `POST /v1/sandboxes/{id}/sleep`: stops the sandbox, keeping its files, and
    /// answers what was kept.
    pub async fn sleep(&self, id: &str) -> Result<SandboxSnapshot, ApiError> {
        let record = self.entry(id)?.snapshot();
        let provider = self.provider_of(&record)?;
        let kind = snapshot_kind(provider.name())
            .filter(|_| provider.capabilities().sleep)
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "the {} provider cannot put a sandbox to sleep (it keeps nothing of a \
                     stopped sandbox)",
                    provider.name()
                ))
            })?;
        self.stop_or_sleep(id, None, true).await?;
        let bytes = match provider.name() {
            "local" => directory_bytes(&self.store.sandbox_dir(id)),
            _ => None,
        };
        Ok(SandboxSnapshot {
            sandbox_id: id.to_owned(),
            kind: kind.to_owned(),
            runner_version: nightshift_protocol::VERSION.to_owned(),
            image: record.template.clone(),
            made_at: now_millis(),
            bytes,
        })
    }

    /// `POST /v1/sandboxes/{id}/wake`: writes the new runner token into the runner's
    /// config, then starts the sandbox and its runner again.
    pub async fn wake(&self, id: &str, request: WakeSandboxRequest) -> Result<Sandbox, ApiError> {
        if let Some(launch) = request.runner {
            let entry = self.entry(id)?;
            let _live = entry.live.write().await;
            if entry.snapshot().runner.is_none() {
                return Err(ApiError::invalid_request(format!(
                    "sandbox {id} was created without a runner"
                )));
            }
            let path = self.store.runner_config_path(id);
            let mut config = self.stored_runner_config(id)?;
            if config.session_id != launch.session_id {
                return Err(ApiError::invalid_request(
                    "the runner launch names another session than the sandbox's runner",
                ));
            }
            config.token = launch.token;
            config.worker_url = launch.worker_url;
            let json = serde_json::to_vec_pretty(&config).map_err(|error| {
                ApiError::internal(format!("cannot serialize the runner config: {error}"))
            })?;
            write_private(&path, &json)?;
        }
        self.start(id).await
    }
}

/// The size of a directory tree, not following links; `None` if it cannot be read.
/// Bounded: a tree of more than a million entries is not counted.
fn directory_bytes(root: &std::path::Path) -> Option<u64> {
    let mut total = 0u64;
    let mut pending = vec![root.to_path_buf()];
    let mut entries = 0usize;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()? {
            let entry = entry.ok()?;
            entries += 1;
            if entries > 1_000_000 {
                return None;
            }
            let meta = entry.path().symlink_metadata().ok()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total = total.saturating_add(meta.len());
            }
        }
    }
    Some(total)
}
