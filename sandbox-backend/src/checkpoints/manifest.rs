//! A checkpoint's manifest: every entry of the workspace in walk order (a directory
//! before what it holds), stored as JSON beside the blobs.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CheckpointError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub created_at: i64,
    /// The total size of its regular files.
    pub bytes: u64,
    pub entries: Vec<Entry>,
}

/// One entry; `path` is relative to the workspace, in [`super::path_text`] form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    #[serde(flatten)]
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
        /// The SHA-256 of its bytes, in hex.
        blob: String,
        /// What the file's `lstat` said when it was read, so the next checkpoint
        /// can skip it when nothing changed.
        stat: FileStat,
    },
    Symlink {
        /// In [`super::path_text`] form; never followed.
        target: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub ino: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, CheckpointError> {
        let bytes = std::fs::read(path).map_err(CheckpointError::io(format!(
            "cannot read {}",
            path.display()
        )))?;
        serde_json::from_slice(&bytes).map_err(|error| CheckpointError::Io {
            context: format!("cannot parse {}", path.display()),
            source: std::io::Error::other(error),
        })
    }

    /// Written to a temporary file and renamed, so a manifest is whole or absent.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let json = serde_json::to_vec(self).map_err(|error| CheckpointError::Io {
            context: "cannot serialize a manifest".into(),
            source: std::io::Error::other(error),
        })?;
        let temporary = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        };
        write().map_err(|error| {
            let _ = std::fs::remove_file(&temporary);
            CheckpointError::io(format!("cannot write {}", path.display()))(error)
        })
    }
}
