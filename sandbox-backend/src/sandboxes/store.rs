//! The on-disk layout of sandboxes under the data directory, and writing files there
//! atomically with owner-only permissions:
//!
//! ```text
//! <data>/sandboxes/<id>/sandbox.json        the record (0600)
//! <data>/sandboxes/<id>/workspace/          the provider's workspace (local provider)
//! <data>/sandboxes/<id>/runner/config.json  the runner's boot config, token inside (0600)
//! <data>/sandboxes/<id>/runner/runner.log   the runner's stdout and stderr
//! ```
//!
//! Everything but `workspace/` stays outside what sandboxed commands can see.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::record::SandboxRecord;

#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct StoreError {
    context: String,
    source: std::io::Error,
}

fn store_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError { context, source }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Uses (and creates) `<data_dir>/sandboxes`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let root = data_dir.join("sandboxes");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(store_error(format!("cannot create {}", root.display())))?;
        Ok(Store { root })
    }

    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn runner_dir(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("runner")
    }

    pub fn runner_config_path(&self, id: &str) -> PathBuf {
        self.runner_dir(id).join("config.json")
    }

    pub fn runner_log_path(&self, id: &str) -> PathBuf {
        self.runner_dir(id).join("runner.log")
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.sandbox_dir(id).join("sandbox.json")
    }

    /// Creates the sandbox's directory and its runner directory, owner-only.
    pub fn create_dirs(&self, id: &str) -> Result<(), StoreError> {
        for dir in [self.sandbox_dir(id), self.runner_dir(id)] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(store_error(format!("cannot create {}", dir.display())))?;
        }
        Ok(())
    }

    pub fn save(&self, record: &SandboxRecord) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(record).map_err(|error| {
            store_error("cannot serialize a sandbox record")(std::io::Error::other(error))
        })?;
        write_private(&self.record_path(&record.id), &json)
    }

    /// Every record on disk. A directory whose record cannot be read is skipped with a
    /// warning rather than stopping the backend from starting.
    pub fn load_all(&self) -> Result<Vec<SandboxRecord>, StoreError> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(store_error(format!("cannot list {}", self.root.display())))?;
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join("sandbox.json");
            let parsed = std::fs::read(&path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<SandboxRecord>(&bytes)
                        .map_err(|error| error.to_string())
                });
            match parsed {
                Ok(record) if entry.file_name().to_str() == Some(record.id.as_str()) => {
                    records.push(record)
                }
                Ok(record) => {
                    tracing::warn!(path = %path.display(), id = %record.id, "record id does not match its directory; skipped")
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "unreadable sandbox record; skipped")
                }
            }
        }
        records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(records)
    }

    /// Removes the sandbox's whole directory (record, runner files, and whatever the
    /// provider left).
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.sandbox_dir(id);
        crate::files::remove_tree(&dir).map_err(|error| StoreError {
            context: format!("cannot remove {}", dir.display()),
            source: std::io::Error::other(error.to_string()),
        })
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so a crash
/// never leaves half a file, with permissions 0600 from the first byte.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(store_error(format!("cannot write {}", temporary.display())))?;
    file.write_all(contents)
        .map_err(store_error(format!("cannot write {}", temporary.display())))?;
    drop(file);
    std::fs::rename(&temporary, path)
        .map_err(store_error(format!("cannot replace {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightshift_protocol::sandbox::{NetworkMode, SandboxStatus};
    use std::os::unix::fs::PermissionsExt;

    fn record(id: &str, created_at: i64) -> SandboxRecord {
        SandboxRecord {
            id: id.into(),
            provider: "local".into(),
            status: SandboxStatus::Ready,
            error: None,
            network: NetworkMode::Private,
            labels: Default::default(),
            env: Default::default(),
            default_timeout_ms: None,
            idle_timeout_minutes: None,
            created_at,
            runner: None,
            ..SandboxRecord::blank()
        }
    }

    #[test]
    fn records_round_trip_privately_and_in_creation_order() {
        let data = tempfile::tempdir().unwrap();
        let store = Store::open(data.path()).unwrap();
        for (id, at) in [("b", 2), ("a", 1)] {
            store.create_dirs(id).unwrap();
            store.save(&record(id, at)).unwrap();
        }
        // A stray directory without a record does not stop loading.
        std::fs::create_dir(data.path().join("sandboxes/stray")).unwrap();
        let loaded = store.load_all().unwrap();
        assert_eq!(
            loaded.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let mode = std::fs::metadata(data.path().join("sandboxes/a/sandbox.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        store.remove("a").unwrap();
        assert_eq!(store.load_all().unwrap().len(), 1);
    }
}
