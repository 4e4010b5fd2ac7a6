//! Starting one sandbox: its directories on the host, the agent's socket and log,
//! and the `__launch` command line (resource-control groups, rlimits, the host user,
//! seccomp) that becomes bubblewrap with the agent inside. Used for sessions'
//! sandboxes, warm ones ([`super::warm_pool`]) and OpenCode's
//! ([`super::opencode_sandbox`]).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nightshift_protocol::sandbox::NetworkMode;
use tokio::process::Command;

use super::LocalSettings;
use super::bubblewrap::{Bubblewrap, Layout, SANDBOX_AGENT};
use super::budget::Budget;
use super::cgroups::Cgroups;
use super::handle::{LocalHandle, alive, kill_sandbox};
use super::host_user::HostUser;
use super::limits::ResourceLimits;
use super::sandbox_agent::client as agent;
use super::sandbox_agent::wire::Request;
use crate::providers::ProviderError;

/// How long a new sandbox's agent gets to answer.
const BOOT_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of the sockets directory inside a sandbox's directory.
pub(super) const SOCKETS_DIR_NAME: &str = "sockets";

/// What it takes to start a sandbox's bubblewrap and agent.
pub(super) struct Launcher {
    pub(super) bubblewrap: Bubblewrap,
    pub(super) settings: LocalSettings,
    /// The generated `passwd` and `group` every sandbox sees.
    pub(super) etc_dir: PathBuf,
    pub(super) cgroups: Option<Cgroups>,
    /// Who the sandbox runs as on the host (root backends only).
    pub(super) host_user: Option<HostUser>,
    pub(super) budget: Budget,
    /// Whether a seccomp filter exists for this architecture.
    pub(super) seccomp: bool,
}

/// Where one bubblewrap instance's pieces are on the host.
#[derive(Debug, Clone, Copy)]
pub(super) struct LaunchDirs<'a> {
    /// Holds `agent.sock` and `agent.log`.
    pub(super) dir: &'a Path,
    pub(super) workspace: &'a Path,
    pub(super) home: &'a Path,
    /// Bound read-only at `SANDBOX_SOCKETS_DIR`.
    pub(super) sockets: &'a Path,
    /// Whether the agent binary is also bound as OpenCode's tool shell.
    pub(super) tool_shell: bool,
}

impl Launcher {
    /// Starts bubblewrap and the agent for the sandbox directory `dir` (its
    /// `workspace/` and `home/` are created), with cgroups named `cgroup`, and waits
    /// until the agent answers.
    pub(super) async fn launch(
        &self,
        dir: &Path,
        cgroup: &str,
        network: NetworkMode,
    ) -> Result<LocalHandle, ProviderError> {
        let workspace = dir.join("workspace");
        let home = dir.join("home");
        let sockets = dir.join(SOCKETS_DIR_NAME);
        let dirs = LaunchDirs {
            dir,
            workspace: &workspace,
            home: &home,
            sockets: &sockets,
            tool_shell: false,
        };
        self.launch_in(&dirs, cgroup, network).await
    }

    /// Starts bubblewrap and the agent as [`launch`] does, over directories that
    /// need not lie in `dirs.dir` (OpenCode's sandbox shares its session's workspace).
    ///
    /// [`launch`]: Launcher::launch
    pub(super) async fn launch_in(
        &self,
        dirs: &LaunchDirs<'_>,
        cgroup: &str,
        network: NetworkMode,
    ) -> Result<LocalHandle, ProviderError> {
        let LaunchDirs {
            dir,
            workspace,
            home,
            sockets,
            tool_shell,
        } = *dirs;
        for dir in [dir, workspace, home, sockets] {
            std::fs::create_dir_all(dir).map_err(|error| {
                ProviderError::io(format!("cannot create {}", dir.display()), error)
            })?;
        }
        if let Some(user) = self.host_user {
            // Bubblewrap (as the user) binds the workspace and home by path, and the
            // runner (as the user too) reaches them and the socket: the directories
            // above become searchable, never listable, and these two become the user's.
            let prepared = user.make_reachable(dir).and_then(|changed| {
                for path in changed {
                    tracing::debug!(path = %path.display(), "made searchable for the sandbox user");
                }
                user.give(workspace)?;
                user.give(home)?;
                // The runner serves its sockets for the sandbox here.
                user.give(sockets)
            });
            prepared.map_err(|error| {
                ProviderError::io(
                    format!("cannot prepare {} for the sandbox user", dir.display()),
                    error,
                )
            })?;
        }
        let socket = dir.join("agent.sock");
        let listener = agent::bind(&socket).map_err(|error| {
            ProviderError::io(format!("cannot listen on {}", socket.display()), error)
        })?;
        if let Some(user) = self.host_user {
            // The runner connects to it for its command wrapper.
            user.give(&socket)
                .map_err(|error| ProviderError::io("cannot give the agent socket away", error))?;
        }
        let log_path = dir.join("agent.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(|error| ProviderError::io("cannot open the agent log", error))?;
        let mut argv = vec![
            self.settings.agent_bin.display().to_string(),
            "__launch".to_string(),
        ];
        if let Some(cgroups) = &self.cgroups {
            for procs in cgroups.create(cgroup) {
                argv.extend(["--cgroup".to_string(), procs.display().to_string()]);
            }
        }
        argv.extend(
            ResourceLimits::default()
                .clamped_to_own_limits()
                .launch_options(),
        );
        argv.extend([
            "--rlimit".to_string(),
            format!("fsize={}", self.budget.file_bytes),
        ]);
        if let Some(user) = self.host_user {
            argv.extend(["--user".to_string(), user.spec()]);
        }
        if self.seccomp {
            argv.push("--seccomp".into());
        }
        // The session's sandbox keeps OpenCode's project mask attached.
        let pin_opencode_dir = !tool_shell;
        if pin_opencode_dir {
            let project = workspace.join(".opencode");
            argv.extend(["--pin".to_string(), project.display().to_string()]);
        }
        argv.push("--".into());
        argv.extend(
            self.bubblewrap.sandbox_args(&Layout {
                workspace,
                home,
                network,
                etc_dir: &self.etc_dir,
                agent: Some(&self.settings.agent_bin),
                // Only a session's sandbox runs a gateway; a missing binary is the
                // gateway's `unavailable`, not a failed sandbox.
                gateway: self
                    .settings
                    .gateway_bin
                    .as_deref()
                    .filter(|bin| !tool_shell && bin.is_file()),
                ro_binds: &self.settings.ro_binds,
                sockets: Some(sockets),
                tmp_bytes: Some(self.budget.tmp_bytes),
                tool_shell,
                pin_opencode_dir,
            }),
        );
        argv.extend([
            SANDBOX_AGENT.to_string(),
            "__agent".to_string(),
            "--orphan-grace-secs".to_string(),
            self.settings.orphan_grace.as_secs().to_string(),
        ]);
        let stderr = log
            .try_clone()
            .map_err(|error| ProviderError::io("cannot open the agent log", error))?;
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                listener,
            )))
            .stdout(std::process::Stdio::from(log))
            .stderr(std::process::Stdio::from(stderr))
            .spawn()
            .map_err(|error| ProviderError::io(format!("cannot start {}", argv[0]), error))?;
        let pid = child.id().unwrap_or(0);
        let handle = LocalHandle {
            pid,
            start_ticks: crate::process::start_ticks(pid),
            cgroup: Some(cgroup.to_string()),
        };
        // Reaps bubblewrap when the sandbox ends (while this backend runs).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let booted = tokio::time::timeout(BOOT_TIMEOUT, async {
            loop {
                match agent::simple(&socket, &Request::Ping).await {
                    Ok(()) => return Ok(()),
                    Err(error) if !alive(&handle) => return Err(error),
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err("the sandbox agent did not start in time".into()));
        if let Err(error) = booted {
            kill_sandbox(&handle).await;
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(ProviderError::Unavailable(format!(
                "the sandbox did not start: {error}: {}",
                log.trim()
            )));
        }
        Ok(handle)
    }
}

/// A fresh cgroup name for one start of a sandbox (a restarted sandbox must not
/// reuse the groups of its previous start, which are removed in the background).
pub(super) fn cgroup_name(id: &str) -> String {
    format!("{id}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}
