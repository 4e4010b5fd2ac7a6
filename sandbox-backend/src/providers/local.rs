//! The local provider: sandboxes are directories on this host, and every command runs
//! under bubblewrap with the sandbox's workspace as its only writable host directory.
//!
//! At start-up the provider proves that bubblewrap can create namespaces here and
//! refuses to start otherwise, because silently running commands unisolated would be
//! worse than not running them. `SANDBOX_ALLOW_UNISOLATED=true` is the explicit,
//! loudly logged escape hatch for machines without user namespaces.

pub mod bubblewrap;
pub mod limits;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use nightshift_protocol::sandbox::NetworkMode;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use self::bubblewrap::{Bubblewrap, CommandScope, SANDBOX_PATH, SANDBOX_WORKSPACE, sandbox_cwd};
use self::limits::{ResourceLimits, find_prlimit};
use super::{Capabilities, Provider, ProviderError, ProviderHandle, RunnerPlacement, SandboxSpec};
use crate::exec::{ExecPlan, ExecRun, run};
use crate::files::{self, WorkspacePath};

pub const NAME: &str = "local";

/// How commands are contained.
#[derive(Debug, Clone)]
enum Isolation {
    Bubblewrap(Bubblewrap),
    /// Plain processes in the workspace directory: no isolation at all.
    Unisolated,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalProviderError {
    #[error(
        "the local provider cannot isolate commands on this machine: {reason}. To fix it, \
         install bubblewrap (`apt-get install bubblewrap`) and allow unprivileged user \
         namespaces (`sysctl -w kernel.unprivileged_userns_clone=1` on Debian, \
         `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 23.10 and \
         later; inside a container, allow the `unshare`/`clone` namespace flags in its \
         seccomp profile). To run commands without any isolation instead (unsafe), set \
         SANDBOX_ALLOW_UNISOLATED=true"
    )]
    CannotIsolate { reason: String },
}

pub struct LocalProvider {
    isolation: Isolation,
    /// `prlimit ... --`, or empty when `prlimit` is missing.
    limits_prefix: Vec<String>,
}

impl LocalProvider {
    /// Probes bubblewrap (in a scratch directory under `data_dir`) and picks the
    /// isolation to use.
    pub async fn start(
        data_dir: &Path,
        allow_unisolated: bool,
    ) -> Result<LocalProvider, LocalProviderError> {
        let limits_prefix = match find_prlimit() {
            Some(prlimit) => ResourceLimits::default()
                .clamped_to_own_limits()
                .prlimit_prefix(&prlimit),
            None => {
                tracing::warn!(
                    "util-linux `prlimit` not found: commands run without resource limits"
                );
                Vec::new()
            }
        };
        let probe = match Bubblewrap::find() {
            None => Err("bubblewrap (`bwrap`) is not installed".to_string()),
            Some(bubblewrap) => {
                let scratch = data_dir.join("probe");
                let created = std::fs::create_dir_all(&scratch);
                let result = match created {
                    Err(error) => Err(format!("cannot create {}: {error}", scratch.display())),
                    Ok(()) => bubblewrap.probe(&scratch, &limits_prefix).await,
                };
                let _ = std::fs::remove_dir(&scratch);
                result.map(|()| bubblewrap)
            }
        };
        let isolation = match probe {
            Ok(bubblewrap) => Isolation::Bubblewrap(bubblewrap),
            Err(reason) if allow_unisolated => {
                tracing::warn!(
                    %reason,
                    "!!! SANDBOX_ALLOW_UNISOLATED=true and bubblewrap is unusable: commands run as \
                     PLAIN HOST PROCESSES with full access to everything this user can reach. \
                     Never do this with untrusted code or on a shared machine. !!!"
                );
                Isolation::Unisolated
            }
            Err(reason) => return Err(LocalProviderError::CannotIsolate { reason }),
        };
        Ok(LocalProvider {
            isolation,
            limits_prefix,
        })
    }

    fn workspace(sandbox: &SandboxSpec) -> PathBuf {
        sandbox.dir.join("workspace")
    }

    /// The environment of a command in unisolated mode, mirroring what bubblewrap sets.
    fn unisolated_env<'a>(
        workspace: &'a Path,
        sandbox: &'a SandboxSpec,
        command_env: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = (String, String)> + 'a {
        [
            ("PATH".to_string(), SANDBOX_PATH.to_string()),
            ("HOME".to_string(), workspace.display().to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
        ]
        .into_iter()
        .chain(
            sandbox
                .env
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        )
        .chain(
            command_env
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        )
    }

    /// A command's working directory on the host in unisolated mode: it must be the
    /// workspace or inside it (by path; unisolated mode confines nothing else).
    fn unisolated_cwd(workspace: &Path, cwd: Option<&str>) -> Result<PathBuf, ProviderError> {
        let Some(cwd) = cwd else {
            return Ok(workspace.to_path_buf());
        };
        let relative = match cwd.strip_prefix(SANDBOX_WORKSPACE) {
            Some("") => return Ok(workspace.to_path_buf()),
            Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
            _ => cwd,
        };
        Ok(workspace.join(WorkspacePath::parse(relative)?.as_path()))
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        match self.isolation {
            // `isolated` and `private` both share the host's network namespace for
            // now; only `none` is enforced (by an empty network namespace).
            Isolation::Bubblewrap(_) => Capabilities {
                network_modes: vec![NetworkMode::Private, NetworkMode::None],
                isolated: true,
                stdin: true,
                ..Capabilities::default()
            },
            Isolation::Unisolated => Capabilities {
                network_modes: vec![NetworkMode::Private],
                isolated: false,
                stdin: true,
                ..Capabilities::default()
            },
        }
    }

    async fn create(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let workspace = LocalProvider::workspace(sandbox);
        tokio::fs::create_dir_all(&workspace)
            .await
            .map_err(|error| {
                ProviderError::io(format!("cannot create {}", workspace.display()), error)
            })?;
        Ok(ProviderHandle::none())
    }

    fn runner_placement(&self, sandbox: &SandboxSpec) -> RunnerPlacement {
        let workspace = LocalProvider::workspace(sandbox);
        let no_env = BTreeMap::new();
        let mut command_wrapper = self.limits_prefix.clone();
        match &self.isolation {
            Isolation::Bubblewrap(bubblewrap) => {
                command_wrapper.extend(bubblewrap.prefix(CommandScope {
                    workspace: &workspace,
                    network: sandbox.network,
                    sandbox_env: &sandbox.env,
                    command_env: &no_env,
                    cwd: SANDBOX_WORKSPACE,
                }));
                RunnerPlacement {
                    workspace_dir: workspace.display().to_string(),
                    sandbox_workspace_dir: SANDBOX_WORKSPACE.into(),
                    command_wrapper,
                }
            }
            Isolation::Unisolated => {
                command_wrapper.extend(["/usr/bin/env".into(), "-i".into()]);
                command_wrapper.push(format!("--chdir={}", workspace.display()));
                command_wrapper.extend(
                    LocalProvider::unisolated_env(&workspace, sandbox, &no_env)
                        .map(|(name, value)| format!("{name}={value}")),
                );
                RunnerPlacement {
                    workspace_dir: workspace.display().to_string(),
                    sandbox_workspace_dir: workspace.display().to_string(),
                    command_wrapper,
                }
            }
        }
    }

    async fn exec(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        let workspace = LocalProvider::workspace(sandbox);
        let mut argv = self.limits_prefix.clone();
        let mut command = match &self.isolation {
            Isolation::Bubblewrap(bubblewrap) => {
                argv.extend(bubblewrap.prefix(CommandScope {
                    workspace: &workspace,
                    network: sandbox.network,
                    sandbox_env: &sandbox.env,
                    command_env: &plan.env,
                    cwd: &sandbox_cwd(plan.cwd.as_deref()),
                }));
                argv.extend(plan.argv);
                let mut command = Command::new(&argv[0]);
                // Bubblewrap clears the environment itself; clearing it here too keeps
                // the backend's own (its token included) away even from bwrap.
                command.args(&argv[1..]).env_clear();
                command
            }
            Isolation::Unisolated => {
                let cwd = LocalProvider::unisolated_cwd(&workspace, plan.cwd.as_deref())?;
                argv.extend(plan.argv);
                let mut command = Command::new(&argv[0]);
                command
                    .args(&argv[1..])
                    .env_clear()
                    .envs(LocalProvider::unisolated_env(
                        &workspace, sandbox, &plan.env,
                    ))
                    .current_dir(cwd);
                command
            }
        };
        command.env("PATH", SANDBOX_PATH);
        run::start(command, plan.stdin, plan.timeout, cancel)
            .map_err(|error| ProviderError::io(format!("cannot start {}", argv[0]), error))
    }

    async fn read_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, ProviderError> {
        let workspace = LocalProvider::workspace(sandbox);
        let path = path.clone();
        tokio::task::spawn_blocking(move || files::read_file(&workspace, &path))
            .await
            .map_err(|error| {
                ProviderError::io("file read task failed", std::io::Error::other(error))
            })?
    }

    async fn write_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
        contents: Vec<u8>,
    ) -> Result<(), ProviderError> {
        let workspace = LocalProvider::workspace(sandbox);
        let path = path.clone();
        tokio::task::spawn_blocking(move || files::write_file(&workspace, &path, &contents))
            .await
            .map_err(|error| {
                ProviderError::io("file write task failed", std::io::Error::other(error))
            })?
    }

    async fn stop(&self, _sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        // A stopped local sandbox keeps its workspace; there is nothing else to free.
        Ok(())
    }

    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        let workspace = LocalProvider::workspace(sandbox);
        tokio::task::spawn_blocking(move || files::remove_tree(&workspace))
            .await
            .map_err(|error| {
                ProviderError::io(
                    "workspace removal task failed",
                    std::io::Error::other(error),
                )
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unisolated_working_directories_stay_in_the_workspace() {
        let workspace = Path::new("/data/w");
        assert_eq!(
            LocalProvider::unisolated_cwd(workspace, None).unwrap(),
            workspace
        );
        assert_eq!(
            LocalProvider::unisolated_cwd(workspace, Some("/workspace")).unwrap(),
            workspace
        );
        assert_eq!(
            LocalProvider::unisolated_cwd(workspace, Some("/workspace/src")).unwrap(),
            workspace.join("src")
        );
        assert_eq!(
            LocalProvider::unisolated_cwd(workspace, Some("src")).unwrap(),
            workspace.join("src")
        );
        assert!(LocalProvider::unisolated_cwd(workspace, Some("/etc")).is_err());
        assert!(LocalProvider::unisolated_cwd(workspace, Some("../x")).is_err());
        assert!(LocalProvider::unisolated_cwd(workspace, Some("/workspaces")).is_err());
    }
}
