//! Checkpoints of a sandbox's workspace: what the files were after a turn, kept so
//! the session can go back to them (restore) or start a new sandbox from them (fork).
//!
//! The store is content-addressed and lives beside the sandbox, never inside it
//! (`<data>/sandboxes/<id>/checkpoints/`, owner-only, not bound into the sandbox):
//!
//! ```text
//! blobs/<2 hex>/<62 hex>   a regular file's bytes, named by their SHA-256
//! <cp id>.json             a manifest: every entry's path, kind and mode, with the
//!                          blob of a file or the target of a symlink
//! newest                   the id of the newest checkpoint
//! ```
//!
//! Blobs are shared by every checkpoint of the sandbox, so a checkpoint costs a walk
//! of the tree (one `lstat` per entry), the bytes of the files that changed (read,
//! hashed and stored once) and a manifest. A file whose size, mtime, ctime and inode
//! match the newest manifest's is not read again: a sandbox can set an mtime but not a
//! ctime, so a changed file is never mistaken for an unchanged one. This host has no
//! reflinks, and a git commit in a side ref would store a nested repository as a
//! gitlink without its contents; the walk here keeps nested `.git` directories as the
//! plain files they are.
//!
//! The workspace is hostile, and a checkpoint is taken while its processes run: the
//! walk ([`capture`]) goes through directory handles one name at a time, never
//! follows a symlink (it records the link), checks that what it opened is what it
//! stat'ed, skips sockets, fifos and devices, and stops at [`Limits`] with nothing
//! kept. A restore ([`restore`]) runs only while the sandbox's processes are stopped,
//! writes only beneath the workspace, and creates every entry anew (nothing existing
//! is written through). Destroying the sandbox removes its directory, checkpoints
//! included. Only the workspace is kept: home, `/tmp` and processes are not.

mod blobs;
mod capture;
mod manifest;
mod path_text;
mod restore;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use nightshift_protocol::ErrorCode;
use nightshift_protocol::checkpoints::{
    CheckpointInfo, CheckpointRestored, CheckpointTaken, valid_checkpoint_id,
};

use self::blobs::Blobs;
use self::manifest::Manifest;
use crate::error::ApiError;
use crate::providers::local::host_user::HostUser;

/// The most entries (files, directories, symlinks) one checkpoint records, unless
/// `SANDBOX_CHECKPOINT_MAX_FILES` says otherwise.
pub const DEFAULT_MAX_FILES: u64 = 200_000;
/// The most bytes of regular files one checkpoint records, unless
/// `SANDBOX_CHECKPOINT_MAX_BYTES` says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Deeper directories are refused: a bound on the walk's recursion.
pub const MAX_DEPTH: usize = 256;

/// What one checkpoint may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_files: u64,
    pub max_bytes: u64,
}

impl Limits {
    /// From `SANDBOX_CHECKPOINT_MAX_FILES` and `SANDBOX_CHECKPOINT_MAX_BYTES`
    /// (positive integers; anything else keeps the default, with a warning).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Limits {
        let read = |name: &str, default: u64| match lookup(name) {
            None => default,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(value) if value > 0 => value,
                _ => {
                    tracing::warn!(%name, value = %text, "not a positive integer; the default applies");
                    default
                }
            },
        };
        Limits {
            max_files: read("SANDBOX_CHECKPOINT_MAX_FILES", DEFAULT_MAX_FILES),
            max_bytes: read("SANDBOX_CHECKPOINT_MAX_BYTES", DEFAULT_MAX_BYTES),
        }
    }

    /// The process's limits, read from the environment once.
    pub fn from_env() -> Limits {
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        *LIMITS.get_or_init(|| Limits::from_lookup(|name| std::env::var(name).ok()))
    }
}

/// Where a provider keeps a sandbox's workspace on this host, and as whom its files
/// are written.
#[derive(Debug, Clone)]
pub struct CheckpointPlace {
    pub workspace: PathBuf,
    pub user: Option<HostUser>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the workspace holds more than {limit} entries; a checkpoint keeps at most {limit}")]
    TooManyFiles { limit: u64 },
    #[error(
        "the workspace's files hold more than {limit} bytes; a checkpoint keeps at most {limit}"
    )]
    TooLarge { limit: u64 },
    #[error("the workspace nests directories deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("no checkpoint {0:?} in this sandbox")]
    NotFound(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl CheckpointError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CheckpointError {
        let context = context.into();
        move |source| CheckpointError::Io { context, source }
    }
}

impl From<CheckpointError> for ApiError {
    fn from(error: CheckpointError) -> ApiError {
        let code = match &error {
            CheckpointError::TooManyFiles { .. }
            | CheckpointError::TooLarge { .. }
            | CheckpointError::TooDeep => ErrorCode::PayloadTooLarge,
            CheckpointError::NotFound(_) => ErrorCode::NotFound,
            CheckpointError::Io { .. } => ErrorCode::Internal,
        };
        ApiError::new(code, error.to_string())
    }
}

/// One sandbox's checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    root: PathBuf,
}

impl CheckpointStore {
    /// The store of the sandbox whose directory is `sandbox_dir`.
    pub fn of_sandbox(sandbox_dir: &Path) -> CheckpointStore {
        CheckpointStore {
            root: sandbox_dir.join("checkpoints"),
        }
    }

    fn lock(&self) -> Arc<Mutex<()>> {
        static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
        let mut locks = LOCKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Locks of sandboxes no checkpoint is using are dropped on the way.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(self.root.clone()).or_default().clone()
    }

    fn blobs(&self) -> Blobs {
        Blobs::new(self.root.join("blobs"))
    }

    fn manifest_path(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}.json"))
    }

    /// Records the workspace as it is now. Blocking: call it off the runtime.
    /// Nothing is kept when it fails (the blobs it added are removed again).
    pub fn take(
        &self,
        workspace: &Path,
        limits: Limits,
        now_millis: i64,
    ) -> Result<CheckpointTaken, CheckpointError> {
        let started = std::time::Instant::now();
        // One checkpoint at a time per sandbox: a failed one removes the blobs it
        // added, which another taken meanwhile may have counted on.
        let lock = self.lock();
        let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let blobs = self.blobs();
        blobs.ensure()?;
        let previous = self.newest()?;
        let captured = capture::capture(workspace, &blobs, previous.as_ref(), limits)?;
        let id = format!("cp_{}", uuid::Uuid::new_v4().simple());
        let manifest = Manifest {
            id: id.clone(),
            created_at: now_millis,
            bytes: captured.bytes,
            entries: captured.entries,
        };
        if let Err(error) = manifest.save(&self.manifest_path(&id)) {
            blobs.remove_added(&captured.added);
            return Err(error);
        }
        // The next checkpoint compares against this one without reading the others.
        if let Err(error) = std::fs::write(self.root.join("newest"), &id) {
            tracing::warn!(%error, "cannot record the newest checkpoint");
        }
        Ok(CheckpointTaken {
            id,
            bytes_added: captured.bytes_added,
            files: manifest.entries.len() as u64,
            ms: elapsed_ms(started),
        })
    }

    /// Every checkpoint, oldest first.
    pub fn list(&self) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        let mut infos: Vec<CheckpointInfo> = self
            .manifests()?
            .into_iter()
            .map(|manifest| CheckpointInfo {
                files: manifest.entries.len() as u64,
                bytes: manifest.bytes,
                id: manifest.id,
                created_at: manifest.created_at,
            })
            .collect();
        infos.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(infos)
    }

    /// Whether the checkpoint exists (an id of the wrong shape never does).
    pub fn has(&self, id: &str) -> bool {
        valid_checkpoint_id(id) && self.manifest_path(id).is_file()
    }

    /// Makes `workspace` hold exactly what checkpoint `id` recorded, its files
    /// written as `user`. Blocking. The caller guarantees that nothing runs in the
    /// sandbox meanwhile.
    pub fn restore(
        &self,
        id: &str,
        workspace: &Path,
        user: Option<HostUser>,
    ) -> Result<CheckpointRestored, CheckpointError> {
        let started = std::time::Instant::now();
        let manifest = self.load(id)?;
        restore::restore(&manifest, &self.blobs(), workspace, user)?;
        Ok(CheckpointRestored {
            id: manifest.id,
            files: manifest.entries.len() as u64,
            ms: elapsed_ms(started),
        })
    }

    fn load(&self, id: &str) -> Result<Manifest, CheckpointError> {
        if !valid_checkpoint_id(id) {
            return Err(CheckpointError::NotFound(id.into()));
        }
        let path = self.manifest_path(id);
        if !path.is_file() {
            return Err(CheckpointError::NotFound(id.into()));
        }
        Manifest::load(&path)
    }

    fn manifests(&self) -> Result<Vec<Manifest>, CheckpointError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(CheckpointError::io(format!(
                    "cannot list {}",
                    self.root.display()
                ))(error));
            }
        };
        let mut manifests = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|name| name.strip_suffix(".json")) else {
                continue;
            };
            if valid_checkpoint_id(id) {
                manifests.push(Manifest::load(&entry.path())?);
            }
        }
        Ok(manifests)
    }

    /// The newest checkpoint, whose file stats let the next one skip unchanged files
    /// (named by `newest`; else found among them all).
    fn newest(&self) -> Result<Option<Manifest>, CheckpointError> {
        if let Ok(id) = std::fs::read_to_string(self.root.join("newest"))
            && valid_checkpoint_id(id.trim())
            && let Ok(manifest) = self.load(id.trim())
        {
            return Ok(Some(manifest));
        }
        Ok(self
            .manifests()?
            .into_iter()
            .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id))))
    }
}

fn elapsed_ms(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
