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
//! ([`disk`]). A limit the host gives no way to enforce is logged and reported in
//! `GET /v1/providers`, and the provider refuses to start without it unless
//! `SANDBOX_ALLOW_UNLIMITED=true`.
//!
//! At start-up the provider proves that bubblewrap can create namespaces here and
//! refuses to start otherwise, because silently running commands unisolated would be
//! worse than not running them. `SANDBOX_ALLOW_UNISOLATED=true` is the explicit,
//! loudly logged escape hatch for machines without user namespaces (plain host
//! processes, one per command, no agent, no background processes).

pub mod bubblewrap;
pub mod budget;
pub mod cgroups;
pub mod disk;
pub mod host_user;
pub mod launch;
pub mod limits;
mod opencode_sandbox;
pub mod sandbox_agent;
pub mod seccomp;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use nightshift_protocol::sandbox::NetworkMode;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use self::bubblewrap::{
    Bubblewrap, GROUP, Layout, PASSWD, SANDBOX_AGENT, SANDBOX_HOME, SANDBOX_PATH,
    SANDBOX_WORKSPACE, sandbox_cwd,
};
use self::budget::{Budget, Limit};
use self::cgroups::Cgroups;
use self::disk::DiskState;
use self::host_user::HostUser;
use self::limits::{ResourceLimits, find_prlimit};
use self::sandbox_agent::client::{self as agent, Spawn, Stdin};
use self::sandbox_agent::egress::EgressPolicy;
use self::sandbox_agent::wire::Request;
use super::{
    BuiltTemplate, Capabilities, Provider, ProviderError, ProviderHandle, Reconciled,
    RunnerPlacement, SandboxSpec, StdinStream, TemplateBuild,
};
use crate::exec::{ExecPlan, ExecRun, run};
use crate::files::{self, WorkspacePath};
use crate::providers::shell::shell_quote;

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
    /// Host directories bound read-only into every sandbox (`SANDBOX_RO_BINDS`).
    pub ro_binds: Vec<PathBuf>,
    /// How long an agent outlives its backend (`SANDBOX_ORPHAN_GRACE_SECS`).
    pub orphan_grace: Duration,
    /// Where `isolated` sandboxes may connect through their egress proxy.
    pub egress: Arc<EgressPolicy>,
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
            ro_binds: Vec::new(),
            orphan_grace: Duration::from_secs(600),
            egress: Arc::new(EgressPolicy::default()),
            warm_pool: 2,
            allow_private_network: false,
            allow_unlimited: std::env::var("SANDBOX_ALLOW_UNLIMITED")
                .is_ok_and(|value| value.trim().eq_ignore_ascii_case("true")),
        }
    }
}

/// How long a new sandbox's agent gets to answer.
const BOOT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped sandbox's processes get to go away.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Package managers a template may name, and how each installs into the sandbox's
/// home (so the packages are part of the template's image).
const PACKAGE_MANAGERS: [&str; 2] = ["pip", "npm"];

pub struct LocalProvider {
    isolation: Isolation,
    /// `prlimit ... --`, or empty when `prlimit` is missing.
    limits_prefix: Vec<String>,
    settings: LocalSettings,
    /// Starts sandboxes (absent without bubblewrap).
    launcher: Option<Arc<Launcher>>,
    /// Sandboxes started ahead of demand.
    warm: Arc<WarmPool>,
    /// Per sandbox: the connection that tells its agent the backend is alive.
    holds: Mutex<HashMap<String, tokio::net::UnixStream>>,
    /// Per `isolated` sandbox: the task offering its egress proxy ways out.
    egress_pools: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// Per sandbox with a runner: the tool relay of OpenCode's sandbox.
    relays: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// The unprivileged host user sandboxes and runners run as (root backends only).
    host_user: Option<HostUser>,
    budget: Budget,
    /// The limits enforced here, and those missing.
    enforced: Vec<Limit>,
    missing: Vec<Limit>,
    /// Per running sandbox: its disk state and the task watching it.
    disks: Mutex<HashMap<String, DiskWatch>>,
}

/// The name of the sockets directory inside a sandbox's directory.
const SOCKETS_DIR_NAME: &str = "sockets";
/// A running sandbox's disk state and the task measuring it.
type DiskWatch = (Arc<DiskState>, tokio::task::JoinHandle<()>);

/// The loopback port of an `isolated` sandbox's egress proxy.
pub const PROXY_PORT: u16 = 3128;

/// What the local provider persists about a running sandbox.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LocalHandle {
    /// Bubblewrap's pid on the host, with its start time (a recycled pid differs).
    pid: u32,
    start_ticks: Option<u64>,
    /// The name of its cgroups, when not the sandbox's id (a warm sandbox's).
    #[serde(default)]
    cgroup: Option<String>,
}

impl LocalProvider {
    /// Probes bubblewrap (in a scratch directory under `data_dir`) and picks the
    /// isolation to use.
    pub async fn start(settings: LocalSettings) -> Result<LocalProvider, LocalProviderError> {
        let data_dir = settings.data_dir.as_path();
        let allow_unisolated = settings.allow_unisolated;
        let host_user =
            HostUser::from_env().map_err(|error| LocalProviderError::Config(error.to_string()))?;
        let budget =
            Budget::from_env().map_err(|error| LocalProviderError::Config(error.to_string()))?;
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
                let created = std::fs::create_dir_all(&scratch).and_then(|()| match host_user {
                    Some(user) => {
                        user.make_reachable(&scratch)?;
                        user.give(&scratch)
                    }
                    None => Ok(()),
                });
                // The probe runs as sandboxes will: as the unprivileged host user.
                let mut prefix = Vec::new();
                if let Some(user) = host_user {
                    prefix.extend([
                        settings.agent_bin.display().to_string(),
                        "__launch".into(),
                        "--user".into(),
                        user.spec(),
                        "--".into(),
                    ]);
                }
                prefix.extend(limits_prefix.iter().cloned());
                let result = match created {
                    Err(error) => Err(format!("cannot create {}: {error}", scratch.display())),
                    Ok(()) => bubblewrap.probe(&scratch, &prefix).await,
                };
                let _ = std::fs::remove_dir_all(&scratch);
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
        let etc_dir = data_dir.join("sandbox-etc");
        let written = std::fs::create_dir_all(&etc_dir)
            .and_then(|()| std::fs::write(etc_dir.join("passwd"), PASSWD))
            .and_then(|()| std::fs::write(etc_dir.join("group"), GROUP));
        if let Err(error) = written {
            return Err(LocalProviderError::CannotIsolate {
                reason: format!("cannot write {}: {error}", etc_dir.display()),
            });
        }
        let cgroup_name = format!(
            "nightshift-{:016x}",
            fnv1a(data_dir.as_os_str().as_encoded_bytes())
        );
        let cgroups = match isolation {
            Isolation::Bubblewrap(_) => Cgroups::detect(&cgroup_name, budget),
            Isolation::Unisolated => None,
        };
        let seccomp = seccomp::filter().is_some();
        let enforced: Vec<Limit> = match isolation {
            Isolation::Bubblewrap(_) => Limit::ALL
                .into_iter()
                .filter(|limit| match limit {
                    Limit::Tmp | Limit::Disk => true,
                    _ => cgroups
                        .as_ref()
                        .is_some_and(|cgroups| cgroups.enforced().contains(limit)),
                })
                .collect(),
            Isolation::Unisolated => Vec::new(),
        };
        let missing: Vec<Limit> = Limit::ALL
            .into_iter()
            .filter(|limit| !enforced.contains(limit))
            .collect();
        if !missing.is_empty() {
            let names = missing
                .iter()
                .map(|limit| limit.name())
                .collect::<Vec<_>>()
                .join(", ");
            if settings.allow_unlimited || allow_unisolated {
                tracing::warn!(
                    missing = %names,
                    "SANDBOX_ALLOW_UNLIMITED=true: sandboxes run WITHOUT these per-sandbox limits"
                );
            } else {
                return Err(LocalProviderError::Unlimited { missing: names });
            }
        }
        if !seccomp && matches!(isolation, Isolation::Bubblewrap(_)) {
            tracing::warn!(
                "no seccomp filter exists for this architecture: sandboxes run without one"
            );
        }
        match host_user {
            Some(user) => tracing::info!(
                uid = user.uid,
                gid = user.gid,
                "the backend runs as root: sandboxes and runners run as this unprivileged host user"
            ),
            None => tracing::info!("sandboxes and runners run as the backend's own user"),
        }
        let launcher = match &isolation {
            Isolation::Bubblewrap(bubblewrap) => Some(Arc::new(Launcher {
                bubblewrap: bubblewrap.clone(),
                settings: settings.clone(),
                etc_dir: etc_dir.clone(),
                cgroups: cgroups.clone(),
                host_user,
                budget,
                seccomp,
            })),
            Isolation::Unisolated => None,
        };
        let warm = Arc::new(WarmPool::new(data_dir.join("warm"), settings.warm_pool));
        warm.clear_leftovers().await;
        if let Some(launcher) = &launcher {
            warm.refill(launcher);
        }
        match &cgroups {
            Some(cgroups) => {
                tracing::info!(groups = %cgroups.describe(), "each sandbox gets its own process, memory and CPU limits")
            }
            None => tracing::info!(
                "no writable cgroups: sandboxes are limited by per-process rlimits only"
            ),
        }
        Ok(LocalProvider {
            isolation,
            limits_prefix,
            settings,
            launcher,
            warm,
            holds: Mutex::new(HashMap::new()),
            egress_pools: Mutex::new(HashMap::new()),
            relays: Mutex::new(HashMap::new()),
            host_user,
            budget,
            enforced,
            missing,
            disks: Mutex::new(HashMap::new()),
        })
    }

    fn lock_disks(&self) -> std::sync::MutexGuard<'_, HashMap<String, DiskWatch>> {
        self.disks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches the running sandbox's disk use: going over budget, or growing while
    /// over it, kills its commands.
    fn watch_disk(&self, sandbox: &SandboxSpec, handle: &LocalHandle) {
        let state = Arc::new(DiskState::default());
        let dirs = disk::covered(&sandbox.dir);
        let (budget, user, pid, id) = (self.budget, self.host_user, handle.pid, sandbox.id.clone());
        let watched = state.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(budget.disk_check_interval).await;
                let dirs = dirs.clone();
                let measured = tokio::task::spawn_blocking(move || {
                    disk::measure_as(user, &dirs, budget.disk_bytes)
                })
                .await;
                let Ok(usage) = measured else { continue };
                let before = watched.used();
                let just_over = watched.record(usage, budget.disk_bytes);
                if just_over || (watched.over() && usage.bytes > before) {
                    watched.note_kill();
                    let killed = disk::kill_commands(pid);
                    tracing::warn!(sandbox = %id, used = usage.bytes, budget = budget.disk_bytes, killed, "disk budget exceeded: the sandbox's commands were killed");
                }
            }
        });
        if let Some((_, old)) = self.lock_disks().insert(sandbox.id.clone(), (state, task)) {
            old.abort();
        }
    }

    /// Refuses a command (other than `rm`) while the sandbox is over its disk budget
    /// (measured again first: files may have been deleted since); returns the state
    /// to annotate the command's result with.
    async fn check_disk(
        &self,
        sandbox: &SandboxSpec,
        argv: &[String],
    ) -> Result<Option<Arc<DiskState>>, ProviderError> {
        let state = self
            .lock_disks()
            .get(&sandbox.id)
            .map(|(state, _)| state.clone());
        let Some(state) = state else {
            return Ok(None);
        };
        if state.over() {
            let (user, dirs, budget) = (
                self.host_user,
                disk::covered(&sandbox.dir),
                self.budget.disk_bytes,
            );
            if let Ok(usage) =
                tokio::task::spawn_blocking(move || disk::measure_as(user, &dirs, budget)).await
            {
                state.record(usage, budget);
            }
            let is_rm = argv
                .first()
                .is_some_and(|program| program == "rm" || program.ends_with("/rm"));
            if state.over() && !is_rm {
                return Err(ProviderError::InvalidRequest(disk::exceeded_message(
                    state.used(),
                    budget,
                )));
            }
        }
        Ok(Some(state))
    }

    /// Runs blocking file work as the sandbox's host user when there is one.
    fn as_sandbox_user<T>(user: Option<HostUser>, work: impl FnOnce() -> T) -> T {
        match user {
            Some(user) => user.act_as(work),
            None => work(),
        }
    }

    fn home(sandbox: &SandboxSpec) -> PathBuf {
        sandbox.dir.join("home")
    }

    fn socket(sandbox: &SandboxSpec) -> PathBuf {
        sandbox.dir.join("agent.sock")
    }

    /// The sandbox user's login environment, before anything the sandbox adds.
    fn user_env() -> BTreeMap<String, String> {
        [
            ("PATH", format!("{SANDBOX_HOME}/.local/bin:{SANDBOX_PATH}")),
            ("HOME", SANDBOX_HOME.to_string()),
            ("USER", "sandbox".to_string()),
            ("LOGNAME", "sandbox".to_string()),
            ("LANG", "C.UTF-8".to_string()),
            ("TMPDIR", "/tmp".to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// The environment every command of the sandbox starts with.
    fn base_env(sandbox: &SandboxSpec) -> BTreeMap<String, String> {
        let mut env = LocalProvider::user_env();
        if sandbox.network == NetworkMode::Isolated {
            let proxy = format!("http://127.0.0.1:{PROXY_PORT}");
            for name in [
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "http_proxy",
                "https_proxy",
                "ALL_PROXY",
                "all_proxy",
            ] {
                env.insert(name.to_string(), proxy.clone());
            }
            for name in ["NO_PROXY", "no_proxy"] {
                env.insert(name.to_string(), "localhost,127.0.0.1,::1".to_string());
            }
        }
        env.extend(sandbox.env.clone());
        env
    }

    fn configure_request(sandbox: &SandboxSpec) -> Request {
        Request::Configure {
            env: LocalProvider::base_env(sandbox),
            proxy_port: (sandbox.network == NetworkMode::Isolated).then_some(PROXY_PORT),
        }
    }

    fn start_egress(&self, sandbox: &SandboxSpec) {
        if sandbox.network != NetworkMode::Isolated {
            return;
        }
        let task = tokio::spawn(self::sandbox_agent::egress::pool(
            LocalProvider::socket(sandbox),
            self.settings.egress.clone(),
        ));
        if let Some(old) = self
            .egress_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sandbox.id.clone(), task)
        {
            old.abort();
        }
    }

    /// The default working directory: the workspace, or the template's `workdir`.
    fn default_cwd(sandbox: &SandboxSpec) -> String {
        match sandbox
            .template
            .as_ref()
            .and_then(|template| template.spec.workdir.as_deref())
        {
            Some(workdir) => sandbox_cwd(Some(workdir)),
            None => SANDBOX_WORKSPACE.into(),
        }
    }

    fn cwd(sandbox: &SandboxSpec, cwd: Option<&str>) -> String {
        match cwd {
            None => LocalProvider::default_cwd(sandbox),
            Some(cwd) => sandbox_cwd(Some(cwd)),
        }
    }

    /// Starts the sandbox (from the warm pool when one fits) and waits until its agent
    /// answers with the sandbox's environment set.
    async fn boot(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let Some(launcher) = &self.launcher else {
            return Ok(ProviderHandle::none());
        };
        let boot_started = std::time::Instant::now();
        // Warm sandboxes have a network namespace of their own, which is what both
        // `isolated` and `none` are; only the egress proxy (configured below) differs.
        let warm = if sandbox.network != NetworkMode::Private {
            self.warm.take()
        } else {
            None
        };
        let handle = match warm {
            Some(warm) => match warm.adopt(&sandbox.dir) {
                Ok(()) => warm.handle,
                Err(error) => {
                    tracing::warn!(%error, "cannot adopt a warm sandbox; starting a new one");
                    halt_orphan(&warm.dir.join("agent.sock"), &warm.handle).await;
                    launcher
                        .launch(&sandbox.dir, &cgroup_name(&sandbox.id), sandbox.network)
                        .await?
                }
            },
            None => {
                launcher
                    .launch(&sandbox.dir, &cgroup_name(&sandbox.id), sandbox.network)
                    .await?
            }
        };
        self.warm.refill(launcher);
        if let Some(user) = self.host_user {
            // A warm sandbox moved into a directory its runner must reach.
            if let Err(error) = user.make_reachable(&sandbox.dir) {
                kill_sandbox(&handle).await;
                return Err(ProviderError::io(
                    "cannot prepare the sandbox directory",
                    error,
                ));
            }
        }
        let socket = LocalProvider::socket(sandbox);
        if let Err(error) = agent::simple(&socket, &LocalProvider::configure_request(sandbox)).await
        {
            kill_sandbox(&handle).await;
            return Err(ProviderError::Unavailable(format!(
                "the sandbox did not start: {error}"
            )));
        }
        tracing::debug!(sandbox = %sandbox.id, elapsed = ?boot_started.elapsed(), "sandbox ready");
        self.watch_disk(sandbox, &handle);
        self.hold(sandbox).await;
        self.start_egress(sandbox);
        Ok(handle_value(&handle))
    }

    async fn hold(&self, sandbox: &SandboxSpec) {
        match agent::hold(&LocalProvider::socket(sandbox)).await {
            Ok(stream) => {
                self.lock_holds().insert(sandbox.id.clone(), stream);
            }
            Err(error) => {
                tracing::warn!(sandbox = %sandbox.id, %error, "cannot hold the sandbox agent")
            }
        }
    }

    fn lock_holds(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::net::UnixStream>> {
        self.holds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_relays(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::JoinHandle<()>>> {
        self.relays.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the sandbox's processes (agent first, bubblewrap by force if needed).
    async fn halt(&self, sandbox: &SandboxSpec) {
        opencode_sandbox::halt(self, sandbox).await;
        self.lock_holds().remove(&sandbox.id);
        if let Some((_, watcher)) = self.lock_disks().remove(&sandbox.id) {
            watcher.abort();
        }
        if let Some(task) = self
            .egress_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&sandbox.id)
        {
            task.abort();
        }
        let handle = parse_handle(&sandbox.handle);
        let _ = agent::shutdown(&LocalProvider::socket(sandbox)).await;
        if let Some(handle) = &handle {
            let deadline = std::time::Instant::now() + STOP_TIMEOUT;
            while alive(handle) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if alive(handle) {
                kill_sandbox(handle).await;
            }
        }
        if let Some(cgroups) = self.launcher.as_ref().and_then(|l| l.cgroups.clone()) {
            // Removed in the background: the kernel frees a group only once its last
            // process is reaped, which need not hold up the caller.
            let id = handle
                .as_ref()
                .and_then(|handle| handle.cgroup.clone())
                .unwrap_or_else(|| sandbox.id.clone());
            tokio::spawn(async move {
                let deadline = std::time::Instant::now() + STOP_TIMEOUT;
                while cgroups.populated(&id) && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                cgroups.remove(&id);
            });
        }
        let _ = std::fs::remove_file(LocalProvider::socket(sandbox));
    }

    /// Copies `from` (a directory) into `to` (created), reflinking where the file
    /// system can.
    async fn copy_tree(from: &Path, to: &Path) -> Result<(), ProviderError> {
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

    /// Runs one build step of a template in its build sandbox; its output goes to
    /// `log`. `Err` carries the log when the step failed.
    async fn build_step(
        &self,
        sandbox: &SandboxSpec,
        script: String,
        env: &BTreeMap<String, String>,
        log: &mut String,
    ) -> Result<(), ProviderError> {
        log.push_str(&format!("$ {script}\n"));
        let plan = ExecPlan {
            argv: vec!["sh".into(), "-c".into(), script],
            env: env.clone(),
            cwd: None,
            timeout: Duration::from_secs(30 * 60),
            stdin: None,
        };
        let run = self.exec(sandbox, plan, CancellationToken::new()).await?;
        tokio::spawn(run.driver);
        let result = crate::exec::collect(run.output).await;
        log.push_str(&result.stdout);
        log.push_str(&result.stderr);
        if result.exit.code != 0 {
            log.push_str(&format!("(exit code {})\n", result.exit.code));
            return Err(ProviderError::InvalidRequest(format!(
                "the template's build failed:\n{}",
                tail(log, 4000)
            )));
        }
        Ok(())
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
            Isolation::Bubblewrap(_) => Capabilities {
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
                tunnels: false,
                package_managers: PACKAGE_MANAGERS.map(String::from).to_vec(),
                enforced_limits: self.enforced.iter().map(|l| l.name().to_string()).collect(),
                missing_limits: self.missing.iter().map(|l| l.name().to_string()).collect(),
            },
            Isolation::Unisolated => Capabilities {
                network_modes: vec![NetworkMode::Private],
                isolated: false,
                stdin: true,
                missing_limits: self.missing.iter().map(|l| l.name().to_string()).collect(),
                ..Capabilities::default()
            },
        }
    }

    async fn create(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let workspace = LocalProvider::workspace(sandbox);
        let handle = self.boot(sandbox).await?;
        if let Some(template) = &sandbox.template {
            // Into the running sandbox's directories (bound, so it sees them at once).
            let copied = async {
                LocalProvider::copy_tree(&template.dir.join("workspace"), &workspace).await?;
                LocalProvider::copy_tree(&template.dir.join("home"), &LocalProvider::home(sandbox))
                    .await
            }
            .await;
            if let Err(error) = copied {
                let booted = SandboxSpec {
                    handle: handle.clone(),
                    ..sandbox.clone()
                };
                self.halt(&booted).await;
                return Err(error);
            }
        }
        Ok(handle)
    }

    async fn start(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        self.boot(sandbox).await
    }

    async fn fork(
        &self,
        source: &SandboxSpec,
        target: &SandboxSpec,
    ) -> Result<ProviderHandle, ProviderError> {
        LocalProvider::copy_tree(
            &LocalProvider::workspace(source),
            &LocalProvider::workspace(target),
        )
        .await?;
        LocalProvider::copy_tree(&LocalProvider::home(source), &LocalProvider::home(target))
            .await?;
        self.boot(target).await
    }

    async fn build_template(&self, build: &TemplateBuild) -> Result<BuiltTemplate, ProviderError> {
        if !matches!(self.isolation, Isolation::Bubblewrap(_)) {
            return Err(ProviderError::unsupported(
                NAME,
                "templates without bubblewrap",
            ));
        }
        match build.spec.base.as_deref() {
            None | Some("host") => {}
            Some(other) => {
                return Err(ProviderError::InvalidRequest(format!(
                    "the local provider has no image {other:?}: its only base is \"host\" (the host's read-only system directories)"
                )));
            }
        }
        let mut installs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for package in &build.spec.packages {
            let Some((manager, name)) = package.split_once(':') else {
                return Err(ProviderError::InvalidRequest(format!(
                    "package {package:?} must be `manager:name`, with manager one of {PACKAGE_MANAGERS:?}"
                )));
            };
            if !PACKAGE_MANAGERS.contains(&manager) {
                return Err(ProviderError::InvalidRequest(format!(
                    "the local provider cannot install {manager} packages (it has no image to install system packages into); supported managers: {PACKAGE_MANAGERS:?}"
                )));
            }
            if name.is_empty()
                || name.starts_with('-')
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || "'\"`$;&|<>\\".contains(c))
            {
                return Err(ProviderError::InvalidRequest(format!(
                    "invalid package name {name:?}"
                )));
            }
            installs.entry(manager).or_default().push(name);
        }
        let sandbox = SandboxSpec {
            id: build.id.clone(),
            dir: build.dir.clone(),
            env: BTreeMap::new(),
            network: NetworkMode::Private,
            handle: ProviderHandle::none(),
            template: None,
            labels: BTreeMap::new(),
        };
        // Packages come from the public registries, through the egress proxy
        // (pip and npm honour HTTPS_PROXY) like every sandbox's traffic.
        let sandbox = SandboxSpec {
            network: NetworkMode::Isolated,
            ..sandbox
        };
        let handle = self.boot(&sandbox).await?;
        let sandbox = SandboxSpec { handle, ..sandbox };
        let mut log = String::new();
        let result = async {
            for (manager, names) in &installs {
                let names = names.join(" ");
                let script = match *manager {
                    "pip" => {
                        format!("python3 -m pip install --user --break-system-packages {names}")
                    }
                    _ => format!("npm install --global --prefix \"$HOME/.local\" {names}"),
                };
                self.build_step(&sandbox, script, &build.spec.env, &mut log)
                    .await?;
            }
            if let Some(workdir) = &build.spec.workdir {
                let workdir = WorkspacePath::parse(workdir)?;
                let dir = LocalProvider::workspace(&sandbox).join(workdir.as_path());
                LocalProvider::as_sandbox_user(self.host_user, || std::fs::create_dir_all(&dir))
                    .map_err(|error| ProviderError::io("cannot create the workdir", error))?;
            }
            for command in &build.spec.commands {
                let script = format!(
                    "cd {} && {command}",
                    shell_quote(&LocalProvider::cwd(&sandbox, build.spec.workdir.as_deref()))
                );
                self.build_step(&sandbox, script, &build.spec.env, &mut log)
                    .await?;
            }
            Ok::<(), ProviderError>(())
        }
        .await;
        self.halt(&sandbox).await;
        let _ = std::fs::remove_file(build.dir.join("agent.log"));
        result?;
        Ok(BuiltTemplate {
            handle: ProviderHandle::none(),
            log,
        })
    }

    fn runner_user(&self) -> Option<HostUser> {
        match self.isolation {
            Isolation::Bubblewrap(_) => self.host_user,
            Isolation::Unisolated => None,
        }
    }

    async fn prepare_runner(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        opencode_sandbox::ensure(self, sandbox).await
    }

    fn runner_placement(&self, sandbox: &SandboxSpec) -> RunnerPlacement {
        let workspace = LocalProvider::workspace(sandbox);
        match &self.isolation {
            Isolation::Bubblewrap(_) => {
                let command_wrapper = vec![
                    self.settings.agent_bin.display().to_string(),
                    "enter".into(),
                    "--socket".into(),
                    LocalProvider::socket(sandbox).display().to_string(),
                    "--".into(),
                ];
                RunnerPlacement {
                    workspace_dir: workspace.display().to_string(),
                    sandbox_workspace_dir: SANDBOX_WORKSPACE.into(),
                    command_wrapper,
                    opencode: Some(opencode_sandbox::placement(self, sandbox)),
                }
            }
            Isolation::Unisolated => {
                let no_env = BTreeMap::new();
                let mut command_wrapper = self.limits_prefix.clone();
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
                    opencode: None,
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
        match &self.isolation {
            Isolation::Bubblewrap(_) => {
                let disk = self.check_disk(sandbox, &plan.argv).await?;
                let spawn = Spawn {
                    cwd: LocalProvider::cwd(sandbox, plan.cwd.as_deref()),
                    argv: plan.argv,
                    env: plan.env,
                    stdin: match plan.stdin {
                        Some(text) => Stdin::Once(text),
                        None => Stdin::Null,
                    },
                    timeout: plan.timeout,
                };
                agent::start(&LocalProvider::socket(sandbox), spawn, cancel)
                    .await
                    .map(|run| annotate_disk(run, disk, self.budget.disk_bytes))
                    .map_err(|error| {
                        ProviderError::Unavailable(format!("the sandbox is not running: {error}"))
                    })
            }
            Isolation::Unisolated => {
                let workspace = LocalProvider::workspace(sandbox);
                let cwd = LocalProvider::unisolated_cwd(&workspace, plan.cwd.as_deref())?;
                let mut argv = self.limits_prefix.clone();
                argv.extend(plan.argv);
                let mut command = Command::new(&argv[0]);
                command
                    .args(&argv[1..])
                    .env_clear()
                    .envs(LocalProvider::unisolated_env(
                        &workspace, sandbox, &plan.env,
                    ))
                    .current_dir(cwd);
                run::start(command, plan.stdin, plan.timeout, cancel)
                    .map_err(|error| ProviderError::io(format!("cannot start {}", argv[0]), error))
            }
        }
    }

    async fn spawn(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        stdin: StdinStream,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        if !matches!(self.isolation, Isolation::Bubblewrap(_)) {
            return Err(ProviderError::unsupported(
                NAME,
                "background processes without bubblewrap",
            ));
        }
        let disk = self.check_disk(sandbox, &plan.argv).await?;
        let spawn = Spawn {
            cwd: LocalProvider::cwd(sandbox, plan.cwd.as_deref()),
            argv: plan.argv,
            env: plan.env,
            stdin: Stdin::Stream(stdin),
            timeout: plan.timeout,
        };
        agent::start(&LocalProvider::socket(sandbox), spawn, cancel)
            .await
            .map(|run| annotate_disk(run, disk, self.budget.disk_bytes))
            .map_err(|error| {
                ProviderError::Unavailable(format!("the sandbox is not running: {error}"))
            })
    }

    async fn read_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, ProviderError> {
        let workspace = LocalProvider::workspace(sandbox);
        let path = path.clone();
        let user = self.host_user;
        tokio::task::spawn_blocking(move || {
            LocalProvider::as_sandbox_user(user, || files::read_file(&workspace, &path))
        })
        .await
        .map_err(|error| ProviderError::io("file read task failed", std::io::Error::other(error)))?
    }

    async fn write_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
        contents: Vec<u8>,
    ) -> Result<(), ProviderError> {
        let workspace = LocalProvider::workspace(sandbox);
        let path = path.clone();
        let user = self.host_user;
        tokio::task::spawn_blocking(move || {
            LocalProvider::as_sandbox_user(user, || files::write_file(&workspace, &path, &contents))
        })
        .await
        .map_err(|error| {
            ProviderError::io("file write task failed", std::io::Error::other(error))
        })?
    }

    async fn reconcile(&self, sandbox: &SandboxSpec) -> Result<Reconciled, ProviderError> {
        if !matches!(self.isolation, Isolation::Bubblewrap(_)) {
            return Ok(Reconciled::Stopped(
                "unisolated commands do not survive a backend restart".into(),
            ));
        }
        let socket = LocalProvider::socket(sandbox);
        if agent::simple(&socket, &Request::Ping).await.is_ok() {
            // The sandbox's environment may have been changed (by a fork's overrides)
            // since it booted: say it again.
            agent::simple(&socket, &LocalProvider::configure_request(sandbox))
                .await
                .map_err(ProviderError::Unavailable)?;
            self.hold(sandbox).await;
            self.start_egress(sandbox);
            return Ok(Reconciled::Running(sandbox.handle.clone()));
        }
        self.halt(sandbox).await;
        Ok(Reconciled::Stopped(
            "its processes were gone when the backend restarted".into(),
        ))
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
        for dir in [
            LocalProvider::workspace(sandbox),
            LocalProvider::home(sandbox),
        ] {
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

    async fn shutdown(&self) {
        // Sandboxes keep running for the next backend process; their agents end them
        // if none comes back within the orphan grace. Warm ones belong to nobody yet.
        self.warm.close().await;
        self.lock_holds().clear();
        for (_, task) in self.lock_relays().drain() {
            task.abort();
        }
        for (_, task) in self
            .egress_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            task.abort();
        }
    }
}

/// Adds "disk budget exceeded" to the result of a command the disk watcher killed.
fn annotate_disk(run: ExecRun, disk: Option<Arc<DiskState>>, budget: u64) -> ExecRun {
    use futures::FutureExt;
    use nightshift_protocol::sandbox::ExecOutput;
    let Some(state) = disk else {
        return run;
    };
    let kills_before = state.kills();
    let (sender, output) = tokio::sync::mpsc::channel(64);
    let mut upstream = run.output;
    let forward = async move {
        loop {
            let line = tokio::select! {
                line = upstream.recv() => line,
                // Nobody listening any more: dropping `upstream` kills the command.
                () = sender.closed() => return,
            };
            let Some(line) = line else { return };
            if matches!(line, ExecOutput::Exit(_)) && state.kills() != kills_before {
                let message = format!("{}\n", disk::exceeded_message(state.used(), budget));
                let _ = sender.send(ExecOutput::Stderr(message)).await;
            }
            if sender.send(line).await.is_err() {
                return;
            }
        }
    };
    let driver = run.driver;
    ExecRun {
        output,
        driver: async move {
            futures::join!(driver, forward);
        }
        .boxed(),
    }
}

fn handle_value(handle: &LocalHandle) -> ProviderHandle {
    ProviderHandle(serde_json::to_value(handle).unwrap_or_default())
}

fn parse_handle(handle: &ProviderHandle) -> Option<LocalHandle> {
    serde_json::from_value(handle.0.clone()).ok()
}

/// Whether the recorded bubblewrap still runs.
fn alive(handle: &LocalHandle) -> bool {
    handle.pid > 1
        && match handle.start_ticks {
            Some(ticks) => crate::process::start_ticks(handle.pid) == Some(ticks),
            None => crate::process::start_ticks(handle.pid).is_some(),
        }
}

/// Kills a sandbox by force: bubblewrap's child (the sandbox's init, whose death
/// ends every process of its PID namespace) and bubblewrap itself.
async fn kill_sandbox(handle: &LocalHandle) {
    if !alive(handle) {
        return;
    }
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", handle.pid))
        .unwrap_or_default();
    for child in children
        .split_whitespace()
        .filter_map(|pid| pid.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if let Ok(pid) = i32::try_from(handle.pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let deadline = std::time::Instant::now() + STOP_TIMEOUT;
    while alive(handle) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The network mode warm sandboxes are started with (the default, which sessions use).
const WARM_NETWORK: NetworkMode = NetworkMode::Isolated;

/// What it takes to start a sandbox's bubblewrap and agent.
struct Launcher {
    bubblewrap: Bubblewrap,
    settings: LocalSettings,
    /// The generated `passwd` and `group` every sandbox sees.
    etc_dir: PathBuf,
    cgroups: Option<Cgroups>,
    /// Who the sandbox runs as on the host (root backends only).
    host_user: Option<HostUser>,
    budget: Budget,
    /// Whether a seccomp filter exists for this architecture.
    seccomp: bool,
}

impl Launcher {
    /// Starts bubblewrap and the agent for the sandbox directory `dir` (its
    /// `workspace/` and `home/` are created), with cgroups named `cgroup`, and waits
    /// until the agent answers.
    async fn launch(
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
    async fn launch_in(
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
        argv.extend(self.bubblewrap.sandbox_args(&Layout {
            workspace,
            home,
            network,
            etc_dir: &self.etc_dir,
            agent: Some(&self.settings.agent_bin),
            ro_binds: &self.settings.ro_binds,
            sockets: Some(sockets),
            tmp_bytes: Some(self.budget.tmp_bytes),
            tool_shell,
            pin_opencode_dir,
        }));
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

/// Where one bubblewrap instance's pieces are on the host.
#[derive(Debug, Clone, Copy)]
struct LaunchDirs<'a> {
    /// Holds `agent.sock` and `agent.log`.
    dir: &'a Path,
    workspace: &'a Path,
    home: &'a Path,
    /// Bound read-only at `SANDBOX_SOCKETS_DIR`.
    sockets: &'a Path,
    /// Whether the agent binary is also bound as OpenCode's tool shell.
    tool_shell: bool,
}

/// A sandbox started ahead of demand, in `<data>/warm/<name>/`.
struct WarmSandbox {
    dir: PathBuf,
    handle: LocalHandle,
}

impl WarmSandbox {
    /// Moves its directories and socket into the sandbox's directory. Its mounts
    /// follow (they hold the directories, not their paths), and so does its socket.
    fn adopt(&self, target: &Path) -> std::io::Result<()> {
        for name in [
            "workspace",
            "home",
            SOCKETS_DIR_NAME,
            "agent.sock",
            "agent.log",
        ] {
            let to = target.join(name);
            if name == "workspace" || name == "home" || name == SOCKETS_DIR_NAME {
                // An empty directory left by an earlier attempt is replaced.
                let _ = std::fs::remove_dir(&to);
            }
            std::fs::rename(self.dir.join(name), to)?;
        }
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }
}

/// Sandboxes kept started for the next creations: a creation then costs a rename
/// and a configuration message instead of a bubblewrap start.
struct WarmPool {
    root: PathBuf,
    size: usize,
    ready: Mutex<Vec<WarmSandbox>>,
    starting: std::sync::atomic::AtomicUsize,
    closed: std::sync::atomic::AtomicBool,
}

impl WarmPool {
    fn new(root: PathBuf, size: usize) -> WarmPool {
        WarmPool {
            root,
            size,
            ready: Mutex::new(Vec::new()),
            starting: std::sync::atomic::AtomicUsize::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WarmSandbox>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Option<WarmSandbox> {
        loop {
            let warm = self.lock().pop()?;
            if alive(&warm.handle) {
                return Some(warm);
            }
            let _ = files::remove_tree(&warm.dir);
        }
    }

    /// Starts warm sandboxes in the background until the pool is full.
    fn refill(self: &Arc<Self>, launcher: &Arc<Launcher>) {
        use std::sync::atomic::Ordering;
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let have = self.lock().len() + self.starting.load(Ordering::SeqCst);
            if have >= self.size {
                return;
            }
            self.starting.fetch_add(1, Ordering::SeqCst);
            let pool = self.clone();
            let launcher = launcher.clone();
            tokio::spawn(async move {
                let name = format!("warm_{}", uuid::Uuid::new_v4().simple());
                let dir = pool.root.join(&name);
                let launched = launcher.launch(&dir, &name, WARM_NETWORK).await;
                match launched {
                    Ok(handle) if !pool.closed.load(Ordering::SeqCst) => {
                        pool.lock().push(WarmSandbox { dir, handle });
                    }
                    Ok(handle) => {
                        halt_orphan(&dir.join("agent.sock"), &handle).await;
                        let _ = files::remove_tree(&dir);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot start a warm sandbox");
                        let _ = files::remove_tree(&dir);
                    }
                }
                pool.starting.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// Ends the warm sandboxes (a backend that goes away cannot hand them out).
    async fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let warm: Vec<WarmSandbox> = self.lock().drain(..).collect();
        for warm in warm {
            halt_orphan(&warm.dir.join("agent.sock"), &warm.handle).await;
            let _ = files::remove_tree(&warm.dir);
        }
    }

    /// Ends warm sandboxes a previous backend process left behind.
    async fn clear_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let _ = agent::shutdown(&entry.path().join("agent.sock")).await;
            let _ = files::remove_tree(&entry.path());
        }
    }
}

/// Ends a sandbox no record knows: through its agent, else by force.
async fn halt_orphan(socket: &Path, handle: &LocalHandle) {
    let _ = agent::shutdown(socket).await;
    let deadline = std::time::Instant::now() + STOP_TIMEOUT;
    while alive(handle) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_sandbox(handle).await;
}

/// A fresh cgroup name for one start of a sandbox (a restarted sandbox must not
/// reuse the groups of its previous start, which are removed in the background).
fn cgroup_name(id: &str) -> String {
    format!("{id}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// A stable 64-bit hash (FNV-1a) for naming things after a path.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The last `max` bytes of `text` (on a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
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
