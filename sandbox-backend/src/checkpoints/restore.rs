//! Restoring a checkpoint into a workspace whose sandbox runs nothing: everything
//! there is removed (without following a symlink), then every entry of the manifest
//! is created anew beneath a handle on the workspace, so nothing is written through
//! a link. Files are created as the sandbox's host user when there is one, so they
//! belong to it as the sandbox's own files do.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};

use super::CheckpointError;
use super::blobs::{Blobs, valid_hash};
use super::manifest::{EntryKind, Manifest};
use super::path_text;
use crate::providers::local::host_user::HostUser;

pub fn restore(
    manifest: &Manifest,
    blobs: &Blobs,
    workspace: &Path,
    user: Option<HostUser>,
) -> Result<(), CheckpointError> {
    let plan = plan(manifest, blobs)?;
    let root = Dir::open_ambient_dir(workspace, ambient_authority()).map_err(
        CheckpointError::io(format!("cannot open the workspace {}", workspace.display())),
    )?;
    clear(&root).map_err(CheckpointError::io("cannot empty the workspace"))?;
    let as_user = |work: &mut dyn FnMut() -> std::io::Result<()>| match user {
        Some(user) => user.act_as(work),
        None => work(),
    };
    for (path, kind) in &plan {
        let failed = CheckpointError::io(format!("cannot restore {}", path.display()));
        match kind {
            EntryKind::Dir { .. } => as_user(&mut || root.create_dir(path)).map_err(failed)?,
            EntryKind::Symlink { target } => {
                let target = path_text::decode(target).unwrap_or_default();
                as_user(&mut || root.symlink_contents(&target, path)).map_err(failed)?;
            }
            EntryKind::File { mode, blob, .. } => {
                // The blob is opened as the backend (the store is its own); the file
                // is created as the sandbox's user.
                let mut source = std::fs::File::open(blobs.path(blob))
                    .map_err(CheckpointError::io(format!("cannot open the blob {blob}")))?;
                as_user(&mut || {
                    let mut options = OpenOptions::new();
                    options
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .custom_flags(nix::libc::O_NOFOLLOW);
                    let mut target = root.open_with(path, &options)?.into_std();
                    std::io::copy(&mut source, &mut target)?;
                    target
                        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode & 0o777))
                })
                .map_err(failed)?;
            }
        }
    }
    // Directory modes last, deepest first, so a read-only directory is filled first.
    for (path, kind) in plan.iter().rev() {
        if let EntryKind::Dir { mode } = kind {
            as_user(&mut || root.set_permissions(path, Permissions::from_mode(mode & 0o777)))
                .map_err(CheckpointError::io(format!(
                    "cannot set the mode of {}",
                    path.display()
                )))?;
        }
    }
    Ok(())
}

/// Every entry as a checked relative path, and every blob present, before anything
/// in the workspace is touched.
fn plan<'a>(
    manifest: &'a Manifest,
    blobs: &Blobs,
) -> Result<Vec<(PathBuf, &'a EntryKind)>, CheckpointError> {
    let corrupt = |what: String| CheckpointError::Io {
        context: format!("checkpoint {} is damaged", manifest.id),
        source: std::io::Error::other(what),
    };
    let mut plan = Vec::with_capacity(manifest.entries.len());
    for entry in &manifest.entries {
        let path = path_text::decode(&entry.path)
            .map(PathBuf::from)
            .filter(|path| is_plain_relative(path))
            .ok_or_else(|| corrupt(format!("bad path {:?}", entry.path)))?;
        match &entry.kind {
            EntryKind::File { blob, .. } if !valid_hash(blob) || !blobs.has(blob) => {
                return Err(corrupt(format!("the blob of {:?} is missing", entry.path)));
            }
            EntryKind::Symlink { target } if path_text::decode(target).is_none() => {
                return Err(corrupt(format!("bad link target of {:?}", entry.path)));
            }
            _ => {}
        }
        plan.push((path, &entry.kind));
    }
    Ok(plan)
}

/// Only `Normal` components: no root, no `.` or `..`, not empty.
fn is_plain_relative(path: &Path) -> bool {
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}

/// Removes everything inside `dir` without following a symlink; directories the
/// sandbox made read-only are opened up first.
fn clear(dir: &Dir) -> std::io::Result<()> {
    let names: Vec<std::ffi::OsString> = dir
        .entries()?
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
        .collect();
    for name in names {
        remove(dir, &name)?;
    }
    Ok(())
}

fn remove(dir: &Dir, name: &OsStr) -> std::io::Result<()> {
    let metadata = match dir.symlink_metadata(name) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !metadata.file_type().is_dir() {
        return dir.remove_file(name);
    }
    dir.set_permissions(name, Permissions::from_mode(0o700))?;
    let child = dir.open_dir(name)?;
    let opened = child.dir_metadata()?;
    if opened.ino() != metadata.ino() || opened.dev() != metadata.dev() {
        return Err(std::io::Error::other(format!(
            "{} changed while the workspace was emptied",
            Path::new(OsStr::from_bytes(name.as_bytes())).display()
        )));
    }
    clear(&child)?;
    dir.remove_dir(name)
}
