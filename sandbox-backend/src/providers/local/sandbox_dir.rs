//! A local sandbox's directory on the host (`<data>/sandboxes/<id>/`): where its
//! workspace, home and agent socket are, and the file work both local providers do
//! there (the files API, copying trees, removing them), as the sandbox's host user
//! when the backend runs as root.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::bubblewrap::SANDBOX_PATH;
use super::host_user::HostUser;
use crate::files::{self, WorkspacePath};
use crate::providers::{ProviderError, SandboxSpec};

/// Bound read-write at `/workspace`.
pub(super) fn workspace(sandbox: &SandboxSpec) -> PathBuf {
    sandbox.dir.join("workspace")
}

/// Bound read-write at `/home/sandbox`.
pub(super) fn home(sandbox: &SandboxSpec) -> PathBuf {
    sandbox.dir.join("home")
}

/// The sandbox agent's socket (not visible inside the sandbox).
pub(super) fn socket(sandbox: &SandboxSpec) -> PathBuf {
    sandbox.dir.join("agent.sock")
}

/// Runs blocking file work as the sandbox's host user when there is one.
pub(super) fn as_sandbox_user<T>(user: Option<HostUser>, work: impl FnOnce() -> T) -> T {
    match user {
        Some(user) => user.act_as(work),
        None => work(),
    }
}

pub(super) async fn read_file(
    user: Option<HostUser>,
    sandbox: &SandboxSpec,
    path: &WorkspacePath,
) -> Result<Vec<u8>, ProviderError> {
    let workspace = workspace(sandbox);
    let path = path.clone();
    tokio::task::spawn_blocking(move || {
        as_sandbox_user(user, || files::read_file(&workspace, &path))
    })
    .await
    .map_err(|error| ProviderError::io("file read task failed", std::io::Error::other(error)))?
}

pub(super) async fn write_file(
    user: Option<HostUser>,
    sandbox: &SandboxSpec,
    path: &WorkspacePath,
    contents: Vec<u8>,
) -> Result<(), ProviderError> {
    let workspace = workspace(sandbox);
    let path = path.clone();
    tokio::task::spawn_blocking(move || {
        as_sandbox_user(user, || files::write_file(&workspace, &path, &contents))
    })
    .await
    .map_err(|error| ProviderError::io("file write task failed", std::io::Error::other(error)))?
}

/// Copies `from` (a directory) into `to` (created), reflinking where the file
/// system can.
pub(super) async fn copy_tree(from: &Path, to: &Path) -> Result<(), ProviderError> {
    std::fs::create_dir_all(to)
        .map_err(|error| ProviderError::io(format!("cannot create {}", to.display()), error))?;
    if !from.is_dir() {
        return Ok(());
    }
    let output = Command::new("cp")
        .arg("--reflink=auto")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .env_clear()
        .env("PATH", SANDBOX_PATH)
        .output()
        .await
        .map_err(|error| ProviderError::io("cannot run cp", error))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ProviderError::io(
            format!("cannot copy {}", from.display()),
            std::io::Error::other(String::from_utf8_lossy(&output.stderr).trim().to_string()),
        ))
    }
}

/// Copies a template's `workspace/` and `home/` images into a new sandbox.
pub(super) async fn copy_template(
    template: &Path,
    sandbox: &SandboxSpec,
) -> Result<(), ProviderError> {
    copy_tree(&template.join("workspace"), &workspace(sandbox)).await?;
    copy_tree(&template.join("home"), &home(sandbox)).await
}

/// Removes the sandbox's workspace and home for good.
pub(super) async fn remove_workspace_and_home(sandbox: &SandboxSpec) -> Result<(), ProviderError> {
    for dir in [workspace(sandbox), home(sandbox)] {
        tokio::task::spawn_blocking(move || files::remove_tree(&dir))
            .await
            .map_err(|error| {
                ProviderError::io(
                    "workspace removal task failed",
                    std::io::Error::other(error),
                )
            })??;
    }
    Ok(())
}
