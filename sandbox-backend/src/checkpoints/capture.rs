//! Taking a checkpoint: a walk of the hostile workspace while its processes run.
//!
//! Each directory is read through a handle, one name at a time: an entry is
//! `lstat`ed, then opened without following a symlink in its last component, and
//! what was opened must be what was stat'ed (same inode), or it is skipped as
//! changed under the walk. A symlink is recorded as its target text, never
//! followed; sockets, fifos and devices are skipped; files are opened non-blocking.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};

use super::blobs::Blobs;
use super::manifest::{Entry, EntryKind, FileStat, Manifest};
use super::path_text;
use super::{CheckpointError, Limits, MAX_DEPTH};

/// What a walk found.
pub struct Captured {
    pub entries: Vec<Entry>,
    /// The total size of the regular files.
    pub bytes: u64,
    /// Bytes of blobs this walk added to the store.
    pub bytes_added: u64,
    /// The hashes of those blobs, removed again if the checkpoint is not kept.
    pub added: Vec<String>,
}

/// A file of the previous checkpoint, reused when its stat has not changed.
struct Known {
    size: u64,
    blob: String,
    stat: FileStat,
}

struct Walk<'a> {
    blobs: &'a Blobs,
    known: HashMap<String, Known>,
    limits: Limits,
    captured: Captured,
}

pub fn capture(
    workspace: &Path,
    blobs: &Blobs,
    previous: Option<&Manifest>,
    limits: Limits,
) -> Result<Captured, CheckpointError> {
    let known = previous
        .map(|manifest| {
            manifest
                .entries
                .iter()
                .filter_map(|entry| match &entry.kind {
                    EntryKind::File {
                        size, blob, stat, ..
                    } => Some((
                        entry.path.clone(),
                        Known {
                            size: *size,
                            blob: blob.clone(),
                            stat: *stat,
                        },
                    )),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let root = Dir::open_ambient_dir(workspace, ambient_authority()).map_err(
        CheckpointError::io(format!("cannot open the workspace {}", workspace.display())),
    )?;
    let mut walk = Walk {
        blobs,
        known,
        limits,
        captured: Captured {
            entries: Vec::new(),
            bytes: 0,
            bytes_added: 0,
            added: Vec::new(),
        },
    };
    match walk.directory(&root, b"", 0) {
        Ok(()) => Ok(walk.captured),
        Err(error) => {
            blobs.remove_added(&walk.captured.added);
            Err(error)
        }
    }
}

impl Walk<'_> {
    fn directory(&mut self, dir: &Dir, prefix: &[u8], depth: usize) -> Result<(), CheckpointError> {
        if depth > MAX_DEPTH {
            return Err(CheckpointError::TooDeep);
        }
        let mut names: Vec<std::ffi::OsString> = dir
            .entries()
            .map_err(CheckpointError::io("cannot list a workspace directory"))?
            .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
            .collect();
        names.sort();
        for name in names {
            let mut path = prefix.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.as_bytes());
            self.entry(dir, &name, &path, depth)?;
        }
        Ok(())
    }

    fn count(&mut self) -> Result<(), CheckpointError> {
        if self.captured.entries.len() as u64 >= self.limits.max_files {
            return Err(CheckpointError::TooManyFiles {
                limit: self.limits.max_files,
            });
        }
        Ok(())
    }

    fn entry(
        &mut self,
        dir: &Dir,
        name: &OsStr,
        path: &[u8],
        depth: usize,
    ) -> Result<(), CheckpointError> {
        // Gone since the listing: the walk records the tree as it finds it.
        let Ok(metadata) = dir.symlink_metadata(name) else {
            return Ok(());
        };
        let file_type = metadata.file_type();
        let text = path_text::encode(OsStr::from_bytes(path));
        if file_type.is_symlink() {
            let Ok(target) = dir.read_link_contents(name) else {
                return Ok(());
            };
            self.count()?;
            self.captured.entries.push(Entry {
                path: text,
                kind: EntryKind::Symlink {
                    target: path_text::encode(target.as_os_str()),
                },
            });
        } else if file_type.is_dir() {
            let Ok(child) = dir.open_dir(name) else {
                return Ok(());
            };
            // A symlink swapped in after the lstat would have been followed: skip
            // whatever was opened unless it is the directory that was stat'ed.
            if !child.dir_metadata().is_ok_and(|opened| {
                opened.ino() == metadata.ino() && opened.dev() == metadata.dev()
            }) {
                return Ok(());
            }
            self.count()?;
            self.captured.entries.push(Entry {
                path: text,
                kind: EntryKind::Dir {
                    mode: metadata.mode() & 0o7777,
                },
            });
            self.directory(&child, path, depth + 1)?;
        } else if file_type.is_file() {
            self.count()?;
            // Unchanged since the previous checkpoint by its lstat: not opened at all.
            let stat = stat_of(&metadata);
            if let Some(known) = self.known.get(&text)
                && known.stat == stat
                && known.size == metadata.len()
                && self.blobs.has(&known.blob)
            {
                let (size, blob) = (known.size, known.blob.clone());
                return self.keep_file(text, metadata.mode() & 0o7777, size, blob, stat);
            }
            self.file(dir, name, text)?;
        }
        // Sockets, fifos and devices are not content: skipped.
        Ok(())
    }

    fn file(&mut self, dir: &Dir, name: &OsStr, text: String) -> Result<(), CheckpointError> {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY);
        let Ok(file) = dir.open_with(name, &options) else {
            return Ok(());
        };
        let Ok(metadata) = file.metadata() else {
            return Ok(());
        };
        if !metadata.is_file() {
            return Ok(());
        }
        let stat = stat_of(&metadata);
        let mode = metadata.mode() & 0o7777;
        let remaining = self.limits.max_bytes.saturating_sub(self.captured.bytes);
        let too_large = CheckpointError::TooLarge {
            limit: self.limits.max_bytes,
        };
        let mut reader = file.into_std();
        let Some(stored) = self.blobs.put(&mut reader, remaining)? else {
            return Err(too_large);
        };
        if stored.added {
            self.captured.bytes_added += stored.size;
            self.captured.added.push(stored.hash.clone());
        }
        let (size, blob) = (stored.size, stored.hash);
        self.keep_file(text, mode, size, blob, stat)
    }

    fn keep_file(
        &mut self,
        text: String,
        mode: u32,
        size: u64,
        blob: String,
        stat: FileStat,
    ) -> Result<(), CheckpointError> {
        if size > self.limits.max_bytes.saturating_sub(self.captured.bytes) {
            return Err(CheckpointError::TooLarge {
                limit: self.limits.max_bytes,
            });
        }
        self.captured.bytes += size;
        self.captured.entries.push(Entry {
            path: text,
            kind: EntryKind::File {
                mode,
                size,
                blob,
                stat,
            },
        });
        Ok(())
    }
}

/// What identifies a file's version: a sandbox can set an mtime, never a ctime.
fn stat_of(metadata: &cap_std::fs::Metadata) -> FileStat {
    FileStat {
        ino: metadata.ino(),
        mtime_ns: nanoseconds(metadata.mtime(), metadata.mtime_nsec()),
        ctime_ns: nanoseconds(metadata.ctime(), metadata.ctime_nsec()),
    }
}

/// A stat time in nanoseconds (saturating: only equality matters).
fn nanoseconds(seconds: i64, nanoseconds: i64) -> i64 {
    seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(nanoseconds)
}
