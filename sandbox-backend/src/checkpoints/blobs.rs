//! The content-addressed blobs of one sandbox's checkpoints: a regular file's bytes
//! stored once under their SHA-256, shared by every checkpoint that holds them.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::CheckpointError;

pub struct Blobs {
    root: PathBuf,
}

/// A blob [`Blobs::put`] stored.
pub struct Stored {
    pub hash: String,
    pub size: u64,
    /// Whether its bytes were new to the store (so they cost disk).
    pub added: bool,
}

impl Blobs {
    pub fn new(root: PathBuf) -> Blobs {
        Blobs { root }
    }

    pub fn ensure(&self) -> Result<(), CheckpointError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.root.join("tmp"))
            .map_err(CheckpointError::io(format!(
                "cannot create {}",
                self.root.display()
            )))
    }

    /// Where the blob of `hash` (64 hex digits, checked by the caller) lives.
    pub fn path(&self, hash: &str) -> PathBuf {
        let (head, rest) = hash.split_at(2.min(hash.len()));
        self.root.join(head).join(rest)
    }

    pub fn has(&self, hash: &str) -> bool {
        valid_hash(hash) && self.path(hash).is_file()
    }

    /// Stores what `reader` gives, at most `max` bytes: `Ok(None)` when it gives more.
    /// The bytes go to a temporary file while they are hashed, which then becomes the
    /// blob unless the store had it already.
    pub fn put(&self, reader: &mut impl Read, max: u64) -> Result<Option<Stored>, CheckpointError> {
        let temporary = self
            .root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let outcome = self.put_through(&temporary, reader, max);
        if !matches!(outcome, Ok(Some(Stored { added: true, .. }))) {
            let _ = std::fs::remove_file(&temporary);
        }
        outcome
    }

    fn put_through(
        &self,
        temporary: &Path,
        reader: &mut impl Read,
        max: u64,
    ) -> Result<Option<Stored>, CheckpointError> {
        let io = |what: &str| CheckpointError::io(format!("{what} {}", temporary.display()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(temporary)
            .map_err(io("cannot create"))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(CheckpointError::io("cannot read a workspace file")(error));
                }
            };
            size += read as u64;
            if size > max {
                return Ok(None);
            }
            hasher.update(&buffer[..read]);
            file.write_all(&buffer[..read])
                .map_err(io("cannot write"))?;
        }
        let hash = hex::encode(hasher.finalize());
        let target = self.path(&hash);
        if target.is_file() {
            return Ok(Some(Stored {
                hash,
                size,
                added: false,
            }));
        }
        if let Some(parent) = target.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io("cannot create the directory of"))?;
        }
        std::fs::rename(temporary, &target).map_err(io("cannot keep"))?;
        Ok(Some(Stored {
            hash,
            size,
            added: true,
        }))
    }

    /// Removes blobs a failed checkpoint added (no manifest names them).
    pub fn remove_added(&self, hashes: &[String]) {
        for hash in hashes {
            let _ = std::fs::remove_file(self.path(hash));
        }
    }
}

pub fn valid_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}
