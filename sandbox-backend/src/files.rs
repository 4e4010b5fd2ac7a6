//! Reading and writing files inside a host directory (a sandbox's workspace) without
//! ever touching anything outside it.
//!
//! Two layers of defence: [`WorkspacePath`] refuses `..`, absolute paths and NUL bytes
//! before any file-system call, and every access then goes through a `cap-std`
//! directory handle, which resolves each component relative to the workspace and
//! refuses symlinks that lead out of it. The second layer matters because commands in
//! the sandbox can create symlinks (or swap a directory for one) at any moment, so a
//! check-then-open on ordinary paths would race with them. `cap-std` resolves a whole
//! path in one `openat2` call with `RESOLVE_BENEATH` where the kernel has it, and
//! otherwise walks it one component at a time from directory handles, never following
//! a symlink out; either way nothing is checked first and opened later.
//!
//! Files are opened without blocking and refused unless regular, so a named pipe cannot
//! hang a request. A write goes to a temporary file in the target's directory (reached
//! through the handle) and is renamed over the target, so readers never see a partial
//! file and a symlink swapped in meanwhile is replaced rather than written through.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};

use crate::providers::error::ProviderError;

/// The largest file the files API reads or writes in one request.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// A path relative to a workspace, checked lexically: no `..`, not absolute, not
/// empty. Symlinks are checked when the path is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspacePath(PathBuf);

impl WorkspacePath {
    pub fn parse(text: &str) -> Result<WorkspacePath, ProviderError> {
        if text.contains('\0') {
            return Err(ProviderError::InvalidPath(
                "the path contains a NUL byte".into(),
            ));
        }
        if text.starts_with('/') {
            return Err(ProviderError::InvalidPath(format!(
                "{text:?} is absolute; give a path relative to the workspace"
            )));
        }
        let mut clean = PathBuf::new();
        for component in Path::new(text).components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(ProviderError::InvalidPath(format!(
                        "{text:?} contains `..`"
                    )));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(ProviderError::InvalidPath(format!("{text:?} is absolute")));
                }
            }
        }
        if clean.as_os_str().is_empty() {
            return Err(ProviderError::InvalidPath("the path names no file".into()));
        }
        Ok(WorkspacePath(clean))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl std::fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.display().fmt(f)
    }
}

/// Reads a regular file of the workspace at `root`. Blocking: call it off the runtime.
pub fn read_file(root: &Path, path: &WorkspacePath) -> Result<Vec<u8>, ProviderError> {
    let dir = open_root(root)?;
    let mut options = OpenOptions::new();
    // O_NONBLOCK so a FIFO planted by a command cannot hang the open (regular files
    // ignore the flag); O_NOCTTY so a terminal device never becomes the backend's.
    options
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY);
    let file = dir
        .open_with(path.as_path(), &options)
        .map_err(|error| file_error(path, error))?;
    let metadata = file.metadata().map_err(|error| file_error(path, error))?;
    if !metadata.is_file() {
        return Err(ProviderError::NotAFile(path.to_string()));
    }
    if metadata.len() > MAX_FILE_BYTES as u64 {
        return Err(ProviderError::InvalidPath(format!(
            "{path} is {} bytes; the files API reads at most {MAX_FILE_BYTES}",
            metadata.len()
        )));
    }
    let mut contents = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // A command may keep the file growing while it is read; never take more than the
    // limit.
    file.take(MAX_FILE_BYTES as u64)
        .read_to_end(&mut contents)
        .map_err(|error| file_error(path, error))?;
    Ok(contents)
}

/// Creates or replaces a file of the workspace at `root`, creating missing parent
/// directories. The contents go to a temporary file beside the target, renamed over it
/// once complete; a file that is replaced keeps its permissions (and, where the backend
/// may, its owner). A symlink in the target's place is followed only to a file inside
/// the workspace. Blocking: call it off the runtime.
pub fn write_file(root: &Path, path: &WorkspacePath, contents: &[u8]) -> Result<(), ProviderError> {
    let dir = open_root(root)?;
    if let Some(parent) = path
        .as_path()
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        dir.create_dir_all(parent)
            .map_err(|error| match error.kind() {
                // Something that is not a directory of the workspace is in the way: a file,
                // or a symlink (which cap-std will not follow out of the workspace).
                std::io::ErrorKind::AlreadyExists => ProviderError::InvalidPath(format!(
                    "{} is not a directory inside the workspace",
                    parent.display()
                )),
                _ => file_error(path, error),
            })?;
    }
    let mut target = path.as_path().to_path_buf();
    let mut links = 0;
    let (parent, name, existing) = loop {
        let (parent, name) =
            split(&target).ok_or_else(|| ProviderError::NotAFile(path.to_string()))?;
        let parent = dir
            .open_dir(parent)
            .map_err(|error| file_error(path, error))?;
        match parent.symlink_metadata(name) {
            Ok(metadata) if metadata.is_file() => break (parent, name.to_owned(), Some(metadata)),
            Ok(metadata) if metadata.is_symlink() => {
                // Write where the link leads, as long as that is inside the workspace;
                // cap-std resolves it beneath the workspace handle. The rename below
                // replaces whatever entry it finds and never follows one.
                // A command swapping the entry back and forth could keep this going; give
                // up after as many rounds as Linux allows symlinks in one path.
                links += 1;
                if links > 40 {
                    return Err(ProviderError::InvalidPath(format!(
                        "{path} kept changing while it was being written"
                    )));
                }
                target = dir
                    .canonicalize(&target)
                    .map_err(|error| file_error(path, error))?;
            }
            Ok(_) => return Err(ProviderError::NotAFile(path.to_string())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                break (parent, name.to_owned(), None);
            }
            Err(error) => return Err(file_error(path, error)),
        }
    };

    let temporary = format!(".nightshift-write-{}.tmp", uuid::Uuid::new_v4().simple());
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode(0o666)
        .custom_flags(nix::libc::O_NOFOLLOW);
    let mut file = parent
        .open_with(&temporary, &options)
        .map_err(|error| file_error(path, error))?
        .into_std();
    let written = (|| {
        if let Some(existing) = &existing {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(existing.mode() & 0o7777))?;
            // Only a privileged backend may give the file back to its owner; otherwise it
            // stays the backend's, as a newly written file would be.
            let _ = std::os::unix::fs::fchown(&file, Some(existing.uid()), Some(existing.gid()));
        }
        file.write_all(contents)?;
        drop(file);
        parent.rename(&temporary, &parent, &name)
    })();
    written.map_err(|error| {
        let _ = parent.remove_file(&temporary);
        file_error(path, error)
    })
}

/// A path's directory (empty for the workspace itself) and its last name.
fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    let name = path.file_name()?;
    let parent = path.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    Some((parent, name))
}

/// Removes a directory tree that sandboxed commands may have made read-only. A tree
/// that is already gone counts as removed. Blocking: call it off the runtime.
pub fn remove_tree(root: &Path) -> Result<(), ProviderError> {
    let first = match std::fs::remove_dir_all(root) {
        Ok(()) => return Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => error,
    };
    // A directory without write permission cannot lose its entries; give every
    // directory back its owner's rights (never following symlinks) and try again.
    make_directories_writable(root);
    std::fs::remove_dir_all(root)
        .map_err(|_| ProviderError::io(format!("cannot remove {}", root.display()), first))
}

fn make_directories_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_directories_writable(&entry.path());
        }
    }
}

fn open_root(root: &Path) -> Result<Dir, ProviderError> {
    Dir::open_ambient_dir(root, ambient_authority()).map_err(|error| {
        ProviderError::io(
            format!("cannot open the workspace {}", root.display()),
            error,
        )
    })
}

/// Maps an I/O error on `path` to what the client should hear.
fn file_error(path: &WorkspacePath, error: std::io::Error) -> ProviderError {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => ProviderError::FileNotFound(path.to_string()),
        // cap-std answers PermissionDenied when resolution would leave the directory;
        // the backend runs with enough rights that it means nothing else in practice.
        ErrorKind::PermissionDenied => {
            ProviderError::InvalidPath(format!("{path} leads outside the workspace"))
        }
        ErrorKind::IsADirectory | ErrorKind::NotADirectory => {
            ProviderError::NotAFile(path.to_string())
        }
        _ if error.raw_os_error() == Some(nix::libc::ELOOP) => {
            ProviderError::InvalidPath(format!("{path} is a symlink loop"))
        }
        _ if error.raw_os_error() == Some(nix::libc::ENXIO) => {
            ProviderError::NotAFile(path.to_string())
        }
        _ => ProviderError::io(format!("cannot access {path}"), error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_checks_refuse_escapes() {
        for bad in ["", ".", "/etc/passwd", "../x", "a/../../x", "a/..", "a\0b"] {
            assert!(WorkspacePath::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            WorkspacePath::parse("./a//b/./c.txt").unwrap().as_path(),
            Path::new("a/b/c.txt")
        );
    }

    #[test]
    fn writes_create_parents_and_reads_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let path = WorkspacePath::parse("deep/er/file.txt").unwrap();
        write_file(root.path(), &path, b"hello").unwrap();
        assert_eq!(read_file(root.path(), &path).unwrap(), b"hello");
        write_file(root.path(), &path, b"bye").unwrap();
        assert_eq!(
            std::fs::read(root.path().join("deep/er/file.txt")).unwrap(),
            b"bye"
        );
    }

    #[test]
    fn missing_files_and_directories_are_told_apart() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        let missing = read_file(root.path(), &WorkspacePath::parse("nope").unwrap());
        assert!(matches!(missing, Err(ProviderError::FileNotFound(_))));
        let directory = read_file(root.path(), &WorkspacePath::parse("sub").unwrap());
        assert!(matches!(directory, Err(ProviderError::NotAFile(_))));
    }

    #[test]
    fn symlinks_leading_out_are_refused_and_inside_ones_work() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        std::os::unix::fs::symlink("../../", root.path().join("up")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("direct"))
            .unwrap();
        std::fs::write(root.path().join("real"), b"inside").unwrap();
        std::os::unix::fs::symlink("real", root.path().join("alias")).unwrap();

        for escape in ["out/secret", "direct", "up/etc/passwd"] {
            let path = WorkspacePath::parse(escape).unwrap();
            let read = read_file(root.path(), &path);
            assert!(
                matches!(read, Err(ProviderError::InvalidPath(_))),
                "{escape}: {read:?}"
            );
            let write = write_file(root.path(), &path, b"x");
            assert!(
                matches!(write, Err(ProviderError::InvalidPath(_))),
                "{escape}: {write:?}"
            );
        }
        let planted = write_file(
            root.path(),
            &WorkspacePath::parse("out/new/file").unwrap(),
            b"x",
        );
        assert!(
            matches!(planted, Err(ProviderError::InvalidPath(_))),
            "{planted:?}"
        );
        assert_eq!(
            std::fs::read(outside.path().join("secret")).unwrap(),
            b"secret"
        );
        assert!(!outside.path().join("new").exists());
        assert_eq!(
            read_file(root.path(), &WorkspacePath::parse("alias").unwrap()).unwrap(),
            b"inside"
        );
    }

    #[test]
    fn remove_tree_removes_read_only_trees_and_tolerates_missing_ones() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("tree");
        std::fs::create_dir_all(root.join("locked/inner")).unwrap();
        std::fs::write(root.join("locked/inner/file"), b"x").unwrap();
        std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o500))
            .unwrap();
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        remove_tree(&root).unwrap();
    }

    #[test]
    fn a_fifo_does_not_hang_a_read() {
        let root = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &root.path().join("pipe"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let read = read_file(root.path(), &WorkspacePath::parse("pipe").unwrap());
        assert!(matches!(read, Err(ProviderError::NotAFile(_))), "{read:?}");
    }
}

#[cfg(test)]
mod race_tests;
