//! The local provider without isolation: the explicit, loudly logged escape hatch
//! (`SANDBOX_ALLOW_UNISOLATED=true`) for machines where bubblewrap cannot create
//! namespaces. Commands are plain host processes, one per command, in the sandbox's
//! workspace directory, under `prlimit` when it exists; there is no agent, no
//! background process, no template, no fork and nothing survives a backend restart.
//! It answers to the same name as [`super::LocalProvider`], which it stands in for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use nightshift_protocol::sandbox::NetworkMode;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::bubblewrap::{SANDBOX_PATH, SANDBOX_WORKSPACE};
use super::budget::Limit;
use super::handle::{end_sandbox, parse_handle};
use super::host_user::HostUser;
use super::sandbox_dir::{self, socket, workspace};
use super::startup::{Host, check_missing};
use super::warm_pool::clear_leftovers;
use super::{LocalProviderError, LocalSettings, NAME};
use crate::exec::{ExecPlan, ExecRun, run};
use crate::files::WorkspacePath;
use crate::providers::{
    BuiltTemplate, Capabilities, Provider, ProviderError, ProviderHandle, Reconciled,
    RunnerPlacement, SandboxSpec, StdinStream, TemplateBuild,
};

pub struct UnisolatedProvider {
    /// `prlimit ... --`, or empty when `prlimit` is missing.
    limits_prefix: Vec<String>,
    /// Who the files API acts as (root backends only).
    host_user: Option<HostUser>,
}

impl UnisolatedProvider {
    /// Sets the provider up on a host where bubblewrap is unusable for `reason`.
    pub(super) async fn set_up(
        settings: &LocalSettings,
        host: Host,
        reason: &str,
    ) -> Result<UnisolatedProvider, LocalProviderError> {
        tracing::warn!(
            %reason,
            "!!! SANDBOX_ALLOW_UNISOLATED=true and bubblewrap is unusable: commands run as \
             PLAIN HOST PROCESSES with full access to everything this user can reach. \
             Never do this with untrusted code or on a shared machine. !!!"
        );
        check_missing(&Limit::ALL, true)?;
        host.log_user();
        // Warm sandboxes an isolated backend left in this data directory.
        clear_leftovers(&settings.data_dir.join("warm")).await;
        Ok(UnisolatedProvider {
            limits_prefix: host.limits_prefix,
            host_user: host.user,
        })
    }

    /// The environment of a command, mirroring what bubblewrap sets.
    fn env<'a>(
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

    /// A command's working directory on the host: it must be the workspace or inside
    /// it (by path; nothing else is confined).
    fn cwd(workspace: &Path, cwd: Option<&str>) -> Result<PathBuf, ProviderError> {
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
impl Provider for UnisolatedProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            network_modes: vec![NetworkMode::Private],
            isolated: false,
            stdin: true,
            missing_limits: Limit::ALL.iter().map(|l| l.name().to_string()).collect(),
            ..Capabilities::default()
        }
    }

    async fn create(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        if let Some(template) = &sandbox.template {
            sandbox_dir::copy_template(&template.dir, sandbox).await?;
        }
        Ok(ProviderHandle::none())
    }

    async fn build_template(&self, _build: &TemplateBuild) -> Result<BuiltTemplate, ProviderError> {
        Err(ProviderError::unsupported(
            NAME,
            "templates without bubblewrap",
        ))
    }

    fn runner_placement(&self, sandbox: &SandboxSpec) -> RunnerPlacement {
        let workspace = workspace(sandbox);
        let no_env = BTreeMap::new();
        let mut command_wrapper = self.limits_prefix.clone();
        command_wrapper.extend(["/usr/bin/env".into(), "-i".into()]);
        command_wrapper.push(format!("--chdir={}", workspace.display()));
        command_wrapper.extend(
            UnisolatedProvider::env(&workspace, sandbox, &no_env)
                .map(|(name, value)| format!("{name}={value}")),
        );
        RunnerPlacement {
            workspace_dir: workspace.display().to_string(),
            sandbox_workspace_dir: workspace.display().to_string(),
            command_wrapper,
            // The runner shares this sandbox's (the host's) loopback.
            bridge: Vec::new(),
            opencode: None,
            sockets_dir: None,
            proxy: None,
            sandbox_sockets_dir: None,
            egress_credential_socket: None,
        }
    }

    async fn exec(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        let workspace = workspace(sandbox);
        let cwd = UnisolatedProvider::cwd(&workspace, plan.cwd.as_deref())?;
        let mut argv = self.limits_prefix.clone();
        argv.extend(plan.argv);
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(UnisolatedProvider::env(&workspace, sandbox, &plan.env))
            .current_dir(cwd);
        run::start(command, plan.stdin, plan.timeout, cancel)
            .map_err(|error| ProviderError::io(format!("cannot start {}", argv[0]), error))
    }

    async fn spawn(
        &self,
        _sandbox: &SandboxSpec,
        _plan: ExecPlan,
        _stdin: StdinStream,
        _cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        Err(ProviderError::unsupported(
            NAME,
            "background processes without bubblewrap",
        ))
    }

    async fn read_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, ProviderError> {
        sandbox_dir::read_file(self.host_user, sandbox, path).await
    }

    async fn write_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
        contents: Vec<u8>,
    ) -> Result<(), ProviderError> {
        sandbox_dir::write_file(self.host_user, sandbox, path, contents).await
    }

    async fn reconcile(&self, _sandbox: &SandboxSpec) -> Result<Reconciled, ProviderError> {
        Ok(Reconciled::Stopped(
            "unisolated commands do not survive a backend restart".into(),
        ))
    }

    async fn stop(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        // Its commands are the backend's children, already stopped. What an isolated
        // backend left running in this data directory for the sandbox ends here too.
        end_sandbox(&socket(sandbox), parse_handle(&sandbox.handle).as_ref()).await;
        let _ = std::fs::remove_file(socket(sandbox));
        Ok(())
    }

    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        self.stop(sandbox).await?;
        sandbox_dir::remove_workspace_and_home(sandbox).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unisolated_working_directories_stay_in_the_workspace() {
        let workspace = Path::new("/data/w");
        assert_eq!(UnisolatedProvider::cwd(workspace, None).unwrap(), workspace);
        assert_eq!(
            UnisolatedProvider::cwd(workspace, Some("/workspace")).unwrap(),
            workspace
        );
        assert_eq!(
            UnisolatedProvider::cwd(workspace, Some("/workspace/src")).unwrap(),
            workspace.join("src")
        );
        assert_eq!(
            UnisolatedProvider::cwd(workspace, Some("src")).unwrap(),
            workspace.join("src")
        );
        assert!(UnisolatedProvider::cwd(workspace, Some("/etc")).is_err());
        assert!(UnisolatedProvider::cwd(workspace, Some("../x")).is_err());
        assert!(UnisolatedProvider::cwd(workspace, Some("/workspaces")).is_err());
    }
}
