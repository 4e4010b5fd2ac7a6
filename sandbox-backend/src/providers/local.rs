//! The local provider: sandboxes are directories on this host, each run by one
//! long-lived bubblewrap instance with an agent inside ([`sandbox_agent`]) that starts
//! commands on request, so a command costs a fork inside existing namespaces.
//!
//! Layout of a sandbox's directory (`<data>/sandboxes/<id>/`, owner-only):
//!
//! ```text
//! workspace/    bound read-write at /workspace
//! home/         bound read-write at /home/sandbox
//! agent.sock    the agent's socket (not visible inside the sandbox)
//! agent.log     bubblewrap's and the agent's own stderr
//! ```
//!
//! The sandbox (bubblewrap and the agent) runs in a session of its own and is not a
//! child that dies with the backend: a restarted backend finds it through its socket
//! ([`Provider::reconcile`]). An agent whose backend has been gone for
//! `SANDBOX_ORPHAN_GRACE_SECS` (default 600) ends its sandbox, so sandboxes of a
//! backend that never comes back do not live forever.
//!
//! Sandboxes never run as host root: under a root backend, `__launch` drops to an
//! unprivileged host user before it becomes bubblewrap ([`host_user`]), and so does
//! the sandbox's runner. Every sandbox runs under a seccomp filter ([`seccomp`]) and
//! within a budget ([`budget`]): processes, memory and CPU through cgroups v1 or v2
//! ([`cgroups`]), the size of `/tmp`, and the disk its workspace and home use
//! ([`disk`], watched by [`disk_watch`]). A limit the host gives no way to enforce is
//! logged and reported in `GET /v1/providers`, and the provider refuses to start
//! without it unless `SANDBOX_ALLOW_UNLIMITED=true`.
//!
//! At start-up [`start`] proves that bubblewrap can create namespaces here and
//! refuses to start otherwise, because silently running commands unisolated would be
//! worse than not running them. `SANDBOX_ALLOW_UNISOLATED=true` is the explicit,
//! loudly logged escape hatch for machines without user namespaces: the
//! [`unisolated::UnisolatedProvider`] then stands in under the same name (plain host
//! processes, one per command, no agent, no background processes).
//!
//! Where the rest is: [`startup`] (probing the host), [`launcher`] (starting one
//! bubblewrap instance), [`warm_pool`] (sandboxes started ahead of demand),
//! [`handle`] (what is persisted about a running sandbox, and ending it),
//! [`lifecycle`] (booting, holding and halting), [`environment`] (what commands
//! start with), [`sandbox_dir`] (the sandbox's directory and files), [`templates`],
//! [`opencode_sandbox`] (OpenCode's sandbox beside a session's), [`gateway`] (the
//! session's gateway inside the sandbox, supervised, and the relay's way to it).

pub mod bubblewrap;
pub mod budget;
pub mod cgroups;
pub mod disk;
mod disk_watch;
mod environment;
mod gateway;
mod handle;
pub mod host_user;
pub mod launch;
mod launcher;
mod lifecycle;
pub mod limits;
mod opencode_sandbox;
pub mod sandbox_agent;
mod sandbox_dir;
pub mod sandbox_paths;
pub mod seccomp;
mod startup;
mod templates;
pub mod unisolated;
mod warm_pool;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nightshift_protocol::sandbox::NetworkMode;
use tokio_util::sync::CancellationToken;

use self::bubblewrap::SANDBOX_WORKSPACE;
use self::budget::Limit;
use self::disk_watch::DiskWatches;
use self::host_user::HostUser;
use self::launcher::Launcher;
use self::lifecycle::Tasks;
use self::sandbox_agent::client::{self as agent, Spawn, Stdin};
use self::sandbox_agent::egress::EgressPolicy;
use self::sandbox_agent::wire::Request;
use self::sandbox_dir::{home, socket, workspace};
use self::startup::Host;
use self::templates::PACKAGE_MANAGERS;
use self::unisolated::UnisolatedProvider;
use self::warm_pool::WarmPool;
use super::{
    BuiltTemplate, Capabilities, GatewayPlace, GatewayStream, Provider, ProviderError,
    ProviderHandle, Reconciled, RunnerPlacement, SandboxSpec, StdinStream, TemplateBuild,
};
use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;

pub use self::environment::PROXY_PORT;

pub const NAME: &str = "local";

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
    #[error(
        "the local provider cannot enforce these per-sandbox limits on this machine: {missing}. \
         Run the backend as root on a host whose cgroup v1 or v2 hierarchy has the pids, memory \
         and cpu controllers, or set SANDBOX_ALLOW_UNLIMITED=true to run sandboxes without them \
         (unsafe with untrusted code)"
    )]
    Unlimited { missing: String },
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
}

/// How the local provider is set up (from the backend's configuration).
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub data_dir: PathBuf,
    pub allow_unisolated: bool,
    /// The `sandbox-backend` binary: the agent inside sandboxes and the runner's
    /// `command_wrapper`.
    pub agent_bin: PathBuf,
    /// The `nightshift-gateway` binary bound into sessions' sandboxes (`GATEWAY_BIN`).
    pub gateway_bin: Option<PathBuf>,
    /// Host directories bound read-only into every sandbox (`SANDBOX_RO_BINDS`).
    pub ro_binds: Vec<PathBuf>,
    /// How long an agent outlives its backend (`SANDBOX_ORPHAN_GRACE_SECS`).
    pub orphan_grace: Duration,
    /// Where `isolated` sandboxes may connect through their egress proxy.
    pub egress: Arc<EgressPolicy>,
    /// The egress that adds git's credential for `isolated` sandboxes' `https`
    /// repositories (see [`crate::git_egress`]); `None` leaves it to the runner's
    /// credential helper.
    pub git_egress: Option<Arc<crate::git_egress::GitEgress>>,
    /// Sandboxes kept started ahead of demand (`SANDBOX_WARM_POOL`, default 2).
    pub warm_pool: usize,
    /// Whether a sandbox may share the host's network (`SANDBOX_ALLOW_PRIVATE_NETWORK`,
    /// off by default): it then reaches every loopback service of the host.
    pub allow_private_network: bool,
    /// Start even when a per-sandbox limit cannot be enforced here
    /// (`SANDBOX_ALLOW_UNLIMITED=true`).
    pub allow_unlimited: bool,
}

impl LocalSettings {
    pub fn new(data_dir: &Path) -> LocalSettings {
        LocalSettings {
            data_dir: data_dir.to_path_buf(),
            allow_unisolated: false,
            agent_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("sandbox-backend")),
            gateway_bin: None,
            ro_binds: Vec::new(),
            orphan_grace: Duration::from_secs(600),
            egress: Arc::new(EgressPolicy::default()),
            git_egress: None,
            warm_pool: 2,
            allow_private_network: false,
            allow_unlimited: std::env::var("SANDBOX_ALLOW_UNLIMITED")
                .is_ok_and(|value| value.trim().eq_ignore_ascii_case("true")),
        }
    }
}

/// Probes bubblewrap (in a scratch directory under the data directory) and sets up
/// the provider it allows: [`LocalProvider`], or only with
/// `SANDBOX_ALLOW_UNISOLATED=true`, [`UnisolatedProvider`].
pub async fn start(settings: LocalSettings) -> Result<Arc<dyn Provider>, LocalProviderError> {
    let host = Host::detect()?;
    match host.probe_bubblewrap(&settings).await {
        Ok(bubblewrap) => Ok(Arc::new(
            LocalProvider::set_up(settings, host, bubblewrap).await?,
        )),
        Err(reason) if settings.allow_unisolated => Ok(Arc::new(
            UnisolatedProvider::set_up(&settings, host, &reason).await?,
        )),
        Err(reason) => Err(LocalProviderError::CannotIsolate { reason }),
    }
}

/// Sandboxes isolated by bubblewrap, each with its agent.
pub struct LocalProvider {
    settings: LocalSettings,
    /// Starts sandboxes.
    launcher: Arc<Launcher>,
    /// Sandboxes started ahead of demand.
    warm: Arc<WarmPool>,
    /// Per sandbox: the connection that tells its agent the backend is alive.
    holds: Mutex<HashMap<String, tokio::net::UnixStream>>,
    /// Per `isolated` sandbox: the task offering its egress proxy ways out.
    egress_pools: Tasks,
    /// Per sandbox with a runner: the tool relay of OpenCode's sandbox.
    relays: Tasks,
    /// Per sandbox created with a gateway: its supervisor.
    gateways: gateway::Gateways,
    /// The unprivileged host user sandboxes and runners run as (root backends only).
    host_user: Option<HostUser>,
    /// The limits enforced here, and those missing.
    enforced: Vec<Limit>,
    missing: Vec<Limit>,
    /// Per running sandbox: its disk state and the task watching it.
    disks: DiskWatches,
}

impl LocalProvider {
    /// The argv prefix (ending in `--`) that runs a command inside the sandbox whose
    /// agent listens on `socket`.
    pub(super) fn enter_prefix(&self, socket: &std::path::Path) -> Vec<String> {
        vec![
            self.settings.agent_bin.display().to_string(),
            "enter".into(),
            "--socket".into(),
            socket.display().to_string(),
            "--".into(),
        ]
    }

    /// Starts a command through the sandbox's agent, unless the sandbox is over its
    /// disk budget.
    async fn run_command(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        stdin: Stdin,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        let disk = self.disks.check(sandbox, &plan.argv).await?;
        let spawn = Spawn {
            cwd: environment::cwd(sandbox, plan.cwd.as_deref()),
            argv: plan.argv,
            env: plan.env,
            stdin,
            timeout: plan.timeout,
        };
        agent::start(&socket(sandbox), spawn, cancel)
            .await
            .map(|run| self.disks.annotate(run, disk))
            .map_err(|error| {
                ProviderError::Unavailable(format!("the sandbox is not running: {error}"))
            })
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            network_modes: if self.settings.allow_private_network {
                vec![
                    NetworkMode::Isolated,
                    NetworkMode::None,
                    NetworkMode::Private,
                ]
            } else {
                vec![NetworkMode::Isolated, NetworkMode::None]
            },
            isolated: true,
            fork: true,
            templates: true,
            stdin: true,
            processes: true,
            snapshots: false,
            reattach: true,
            restart: true,
            // The stopped sandbox's directory keeps its files (`sandboxes::sleep`).
            sleep: true,
            tunnels: false,
            gateway: true,
            package_managers: PACKAGE_MANAGERS.map(String::from).to_vec(),
            enforced_limits: self.enforced.iter().map(|l| l.name().to_string()).collect(),
            missing_limits: self.missing.iter().map(|l| l.name().to_string()).collect(),
        }
    }

    async fn create(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let handle = self.boot(sandbox).await?;
        if let Some(template) = &sandbox.template {
            // Into the running sandbox's directories (bound, so it sees them at once).
            if let Err(error) = sandbox_dir::copy_template(&template.dir, sandbox).await {
                let booted = SandboxSpec {
                    handle: handle.clone(),
                    ..sandbox.clone()
                };
                self.halt(&booted).await;
                return Err(error);
            }
        }
        self.start_gateway(sandbox);
        Ok(handle)
    }

    async fn start(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let handle = self.boot(sandbox).await?;
        self.start_gateway(sandbox);
        Ok(handle)
    }

    async fn fork(
        &self,
        source: &SandboxSpec,
        target: &SandboxSpec,
    ) -> Result<ProviderHandle, ProviderError> {
        sandbox_dir::copy_tree(&workspace(source), &workspace(target)).await?;
        sandbox_dir::copy_tree(&home(source), &home(target)).await?;
        // A key file the source's gateway has not read yet is the source's.
        gateway::remove_key(&home(target));
        let handle = self.boot(target).await?;
        self.start_gateway(target);
        Ok(handle)
    }

    async fn build_template(&self, build: &TemplateBuild) -> Result<BuiltTemplate, ProviderError> {
        self.build_template_image(build).await
    }

    fn runner_user(&self) -> Option<HostUser> {
        self.host_user
    }

    fn checkpoint_place(
        &self,
        sandbox: &SandboxSpec,
    ) -> Option<crate::checkpoints::CheckpointPlace> {
        Some(crate::checkpoints::CheckpointPlace {
            workspace: workspace(sandbox),
            user: self.host_user,
        })
    }

    async fn prepare_runner(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        opencode_sandbox::ensure(self, sandbox).await
    }

    fn runner_placement(&self, sandbox: &SandboxSpec) -> RunnerPlacement {
        let command_wrapper = self.enter_prefix(&socket(sandbox));
        // The sandbox's own agent binary carries bytes to its loopback (the
        // browser tools reach Chromium's DevTools this way).
        let mut bridge = command_wrapper.clone();
        bridge.push(bubblewrap::SANDBOX_AGENT.into());
        RunnerPlacement {
            workspace_dir: workspace(sandbox).display().to_string(),
            sandbox_workspace_dir: SANDBOX_WORKSPACE.into(),
            bridge,
            command_wrapper,
            opencode: Some(opencode_sandbox::placement(self, sandbox)),
            sockets_dir: Some(
                sandbox
                    .dir
                    .join(launcher::SOCKETS_DIR_NAME)
                    .display()
                    .to_string(),
            ),
            proxy: None,
            sandbox_sockets_dir: None,
            egress_credential_socket: self
                .git_egress(sandbox)
                .map(|git| git.runner.path.display().to_string()),
        }
    }

    async fn exec(
        &self,
        sandbox: &SandboxSpec,
        mut plan: ExecPlan,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        let stdin = match plan.stdin.take() {
            Some(text) => Stdin::Once(text),
            None => Stdin::Null,
        };
        self.run_command(sandbox, plan, stdin, cancel).await
    }

    async fn spawn(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        stdin: StdinStream,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        self.run_command(sandbox, plan, Stdin::Stream(stdin), cancel)
            .await
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

    async fn reconcile(&self, sandbox: &SandboxSpec) -> Result<Reconciled, ProviderError> {
        let socket = socket(sandbox);
        if agent::simple(&socket, &Request::Ping).await.is_ok() {
            // The sandbox's environment may have been changed (by a fork's overrides)
            // since it booted: say it again.
            agent::simple(
                &socket,
                &environment::configure_request(sandbox, self.git_egress(sandbox).is_some()),
            )
            .await
            .map_err(ProviderError::Unavailable)?;
            self.hold(sandbox).await;
            self.start_egress(sandbox);
            // The gateway the previous backend supervised ended with its agent
            // connection.
            self.start_gateway(sandbox);
            return Ok(Reconciled::Running(sandbox.handle.clone()));
        }
        self.halt(sandbox).await;
        Ok(Reconciled::Stopped(
            "its processes were gone when the backend restarted".into(),
        ))
    }

    async fn gateway(&self, sandbox: &SandboxSpec) -> Result<GatewayPlace, ProviderError> {
        Ok(self.gateway_place(sandbox))
    }

    async fn connect_gateway(
        &self,
        sandbox: &SandboxSpec,
    ) -> Result<Box<dyn GatewayStream>, ProviderError> {
        self.open_gateway(sandbox).await
    }

    async fn stop(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        // The workspace and home stay; only the processes end.
        self.halt(sandbox).await;
        Ok(())
    }

    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        self.halt(sandbox).await;
        let opencode = sandbox.clone();
        let _ = tokio::task::spawn_blocking(move || opencode_sandbox::remove(&opencode)).await;
        sandbox_dir::remove_workspace_and_home(sandbox).await
    }

    async fn shutdown(&self) {
        // Sandboxes keep running for the next backend process; their agents end them
        // if none comes back within the orphan grace. Warm ones belong to nobody yet.
        self.warm.close().await;
        self.lock_holds().clear();
        self.relays.abort_all();
        self.gateways.stop_all();
        self.egress_pools.abort_all();
    }
}
