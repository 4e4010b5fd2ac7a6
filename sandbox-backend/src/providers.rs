//! Where sandboxes actually live. A [`Provider`] creates a sandbox's resources, runs
//! commands in it, reads and writes its files and tears it down; it knows nothing of
//! HTTP, of other sandboxes, or of lifecycle rules.
//!
//! Lifecycle rules (which operation is allowed in which status, one operation at a
//! time per sandbox, destroyed is final, idle timeouts, background-process buffers)
//! live once, above the providers, in [`crate::sandboxes`]. So does the runner's
//! supervision: a provider only says how a runner reaches the sandbox
//! ([`RunnerPlacement`]).
//!
//! # How to write a provider
//!
//! 1. Add `pub mod <name>;` below and a file `providers/<name>.rs` with a type that
//!    implements [`Provider`]. Register it in [`from_env`] (one line: it reads its
//!    settings through the `lookup` it is given and returns `Ok(None)` when it is not
//!    configured, so an unconfigured provider costs nothing).
//! 2. Required: [`Provider::name`], [`Provider::capabilities`], [`Provider::create`],
//!    [`Provider::runner_placement`], [`Provider::exec`], files, [`Provider::stop`],
//!    [`Provider::destroy`]. Everything else has a default that answers
//!    [`ProviderError::Unsupported`]; claim a feature in [`Capabilities`] only once
//!    the operation behind it works (the API refuses unclaimed features with a 400
//!    before calling the provider). `sleep`: a provider whose stopped sandbox keeps
//!    its files claims it with `restart`; one whose stop keeps nothing claims it
//!    only with [`Provider::keep_for_sleep`] and a [`Provider::start`] that wakes a
//!    new sandbox from what that kept (see `crate::sandboxes::sleep`).
//! 3. Remote state: whatever identifies the sandbox remotely (a Modal sandbox id, a
//!    Railway service id, a container id) goes in the [`ProviderHandle`] that
//!    `create`/`fork`/`start` return. The backend persists it in the sandbox record
//!    and hands it back in [`SandboxSpec::handle`] on every later call, including
//!    [`Provider::reconcile`] after a restart of the backend. Templates work the same
//!    way ([`TemplateBuild`] in, a handle out, [`SandboxSpec::template`] later).
//! 4. Exec: turn the [`ExecPlan`] into a remote call and return an [`ExecRun`]: a
//!    channel of [`ExecOutput`] lines in the order output happened, ending with exactly
//!    one `Exit`, and a driver future the backend spawns. The driver must honour
//!    `plan.timeout` (kill the command and its children, report `timed_out: true`)
//!    and `cancel` (kill, report `killed: true`), and stop when the receiver is
//!    dropped. [`crate::exec::run::start`] does all of that for a host process.
//! 5. Background processes are generic: the backend keeps their buffers, offsets and
//!    ids; a provider only implements [`Provider::spawn`] (an exec whose stdin is a
//!    stream and that has no timeout). Kill is the `cancel` token.
//! 6. Errors: [`ProviderError::Unavailable`] when the remote service cannot be
//!    reached (503), [`ProviderError::InvalidRequest`] for a request the provider
//!    cannot honour (400), [`ProviderError::Unsupported`] for a missing feature (400).
//!
//! # The conformance suite
//!
//! `sandbox-backend/tests/conformance/mod.rs` holds the provider contract as HTTP
//! test cases (`conformance::run_all(&harness)`). A provider's test file
//! (`tests/providers/<name>.rs`, see `tests/providers/local.rs`; all in the one test
//! binary `tests/conformance_suite.rs`) starts a real
//! backend on a TCP port configured with its provider (and, for remote providers, the
//! fake server it talks to), implements `conformance::Harness`, and
//! calls `run_all`. Cases whose capability the provider does not claim in
//! `GET /v1/providers` are skipped and listed; a harness may skip more cases with a
//! reason (`Harness::skipped`).

pub mod docker;
pub mod error;
pub mod local;
pub mod modal;
pub mod railway;
pub mod remote;
pub mod shell;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use nightshift_protocol::sandbox::{
    GatewayLaunch, GatewayStatus, NetworkMode, OpencodePlacement, TemplateSpec,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;

pub use self::error::ProviderError;

/// What a provider can do, so callers can refuse unsupported requests up front. The
/// wire type of `GET /v1/providers`.
pub use nightshift_protocol::sandbox::ProviderCapabilities as Capabilities;

/// Provider-specific state the backend persists for a provider and hands back later
/// (e.g. `{"sandbox_id": "sb-123"}`). `Null` when a provider keeps nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ProviderHandle(pub serde_json::Value);

impl ProviderHandle {
    pub fn none() -> ProviderHandle {
        ProviderHandle(serde_json::Value::Null)
    }

    pub fn is_none(&self) -> bool {
        self.0.is_null()
    }

    /// The digest (`sha256:<hex>`) of the runner executable the provider installed
    /// in the sandbox the last time it started it, kept under
    /// [`RUNNER_DIGEST_KEY`](ProviderHandle::RUNNER_DIGEST_KEY) by a provider that
    /// installs it itself (docker, on a wake); shown as the sandbox's `runner_digest`.
    pub fn runner_digest(&self) -> Option<&str> {
        self.0[Self::RUNNER_DIGEST_KEY].as_str()
    }

    pub const RUNNER_DIGEST_KEY: &'static str = "runner_digest";
}

/// A built template a sandbox starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    /// `tpl_<hash>`.
    pub id: String,
    /// The template's private directory on the host (`<data>/templates/<id>`).
    pub dir: PathBuf,
    /// What the provider returned from [`Provider::build_template`].
    pub handle: ProviderHandle,
    pub spec: TemplateSpec,
}

/// The parts of a sandbox a provider needs.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub id: String,
    /// The sandbox's own directory on the host (`<data>/sandboxes/<id>`). The provider
    /// may keep anything it needs under it; the lifecycle layer removes it last.
    pub dir: PathBuf,
    /// Environment baked into every command.
    pub env: BTreeMap<String, String>,
    pub network: NetworkMode,
    /// What `create`/`fork`/`start` last returned (persisted across restarts).
    pub handle: ProviderHandle,
    /// The template the sandbox was created from, if any.
    pub template: Option<TemplateRef>,
    /// Labels given at creation (a remote provider may tag its resources with them).
    pub labels: BTreeMap<String, String>,
    /// The gateway to run in the sandbox, when it was created with one.
    pub gateway: Option<GatewayLaunch>,
    /// For a provider that [shares its sandboxes](Provider::shares_sandboxes): what
    /// another backend needs to serve this sandbox, kept with the provider's resources
    /// at creation (a sandbox tag, a label) and handed back by
    /// [`Provider::find_sandbox`] and [`Provider::list_sandboxes`]. Opaque to providers.
    pub shared_record: Option<String>,
    /// Whether the sandbox was created for a session's runner.
    pub has_runner: bool,
}

/// A sandbox a sharing provider holds, as another backend finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSandbox {
    /// [`SandboxSpec::shared_record`] as it was stored.
    pub shared_record: String,
    /// The handle to reach it with, as `create` returned it.
    pub handle: ProviderHandle,
}

/// A template to build ([`Provider::build_template`]).
#[derive(Debug, Clone)]
pub struct TemplateBuild {
    /// `tpl_<hash>`: stable for the same provider and spec.
    pub id: String,
    /// A private directory on the host for the provider's use (`<data>/templates/<id>`),
    /// removed by the backend when the build fails.
    pub dir: PathBuf,
    pub spec: TemplateSpec,
}

/// What [`Provider::build_template`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltTemplate {
    pub handle: ProviderHandle,
    /// The build's output, for the template's `build_log` (capped by the backend).
    pub log: String,
}

/// What [`Provider::reconcile`] found about a sandbox recorded as ready when the
/// backend starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// Still running; the backend keeps using it (possibly with a new handle).
    Running(ProviderHandle),
    /// Its processes are gone, its filesystem is not: the sandbox becomes `stopped`
    /// with this reason.
    Stopped(String),
    /// Nothing is left of it: the sandbox becomes `error` with this reason.
    Gone(String),
}

/// A public address of one of the sandbox's ports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tunnel {
    pub port: u16,
    pub url: String,
}

/// Where a provider says a sandbox's gateway is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayPlace {
    /// Reached through the backend's own relay
    /// (`/v1/sandboxes/{id}/gateway/...`, [`Provider::connect_gateway`]).
    Relay {
        status: GatewayStatus,
        reason: Option<String>,
    },
    /// Reached directly at `url` (a provider's tunnel), with `headers` on every request.
    Remote {
        url: String,
        headers: BTreeMap<String, String>,
        status: GatewayStatus,
    },
}

/// A byte stream to the gateway's port inside a sandbox.
pub trait GatewayStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> GatewayStream for T {}

/// The stdin of a background process: each message is written as it arrives; the
/// channel closing means end-of-file.
pub type StdinStream = mpsc::Receiver<Vec<u8>>;

/// How a runner started for this sandbox reaches it (the sandbox-specific half of the
/// protocol's `RunnerBootConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerPlacement {
    /// The workspace as the runner sees it.
    pub workspace_dir: String,
    /// The workspace as commands inside the sandbox see it.
    pub sandbox_workspace_dir: String,
    /// The argv prefix that runs a command in the sandbox.
    pub command_wrapper: Vec<String>,
    /// The argv prefix that runs a byte bridge in the sandbox (see
    /// `RunnerBootConfig::bridge`); empty when the runner shares its loopback.
    pub bridge: Vec<String>,
    /// Where OpenCode runs, when apart from the commands it runs (see
    /// `RunnerBootConfig::opencode`).
    pub opencode: Option<OpencodePlacement>,
    /// The host directory the sandbox sees at `SANDBOX_SOCKETS_DIR` (see
    /// `RunnerBootConfig::sockets_dir`).
    pub sockets_dir: Option<String>,
    /// The HTTP proxy the runner reaches the Worker and the LLM through (see
    /// `RunnerBootConfig::proxy`).
    pub proxy: Option<String>,
    /// Where the runner serves the repository's credential to the egress (see
    /// `RunnerBootConfig::egress_credential_socket`).
    pub egress_credential_socket: Option<String>,
    /// Where `sockets_dir` appears to the sandbox's commands, when not at the
    /// usual place (see `RunnerBootConfig::sandbox_sockets_dir`).
    pub sandbox_sockets_dir: Option<String>,
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The name clients pass as `provider` (`"local"`).
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Creates the sandbox's resources (from `sandbox.template` when set) and starts
    /// it. Returns the handle the backend persists.
    async fn create(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError>;

    /// How a runner started on this host works with the sandbox.
    fn runner_placement(&self, sandbox: &SandboxSpec) -> RunnerPlacement;

    /// Whether a session's runner runs inside the sandbox, started and supervised
    /// there by the provider ([`Provider::start_runner_inside`]), instead of on this
    /// host under the backend's supervision.
    fn runs_runner_inside(&self) -> bool {
        false
    }

    /// Starts the session's runner inside the running sandbox with `config`, handed
    /// in without landing where the sandbox's commands could read it. Called at
    /// creation and at every start of the sandbox, for providers that
    /// [run it inside](Provider::runs_runner_inside).
    async fn start_runner_inside(
        &self,
        _sandbox: &SandboxSpec,
        _config: &nightshift_protocol::sandbox::RunnerBootConfig,
    ) -> Result<(), ProviderError> {
        Err(ProviderError::InvalidRequest(format!(
            "the {} provider does not run runners inside its sandboxes",
            self.name()
        )))
    }

    /// Readies what a session's runner needs beside the sandbox before it starts
    /// (the local provider: OpenCode's own sandbox). Called at creation and at every
    /// start of the runner; must be idempotent.
    async fn prepare_runner(&self, _sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The unprivileged host user a sandbox's runner must run as (so that it and the
    /// sandbox can edit each other's files), when not the backend's own.
    fn runner_user(&self) -> Option<local::host_user::HostUser> {
        None
    }

    /// Starts a command. The returned run's driver must be polled; `cancel` kills it.
    async fn exec(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError>;

    /// Starts a background process: like [`Provider::exec`], but its stdin is a
    /// stream (`plan.stdin` is `None`) and `plan.timeout` is very long. `cancel` kills
    /// it with its children; the run then ends with an `Exit` line.
    async fn spawn(
        &self,
        _sandbox: &SandboxSpec,
        _plan: ExecPlan,
        _stdin: StdinStream,
        _cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        Err(ProviderError::unsupported(
            self.name(),
            "background processes",
        ))
    }

    async fn read_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, ProviderError>;

    /// Writes (creating or replacing) a file, creating missing parent directories.
    async fn write_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
        contents: Vec<u8>,
    ) -> Result<(), ProviderError>;

    /// Creates `target` as an independent copy of `source`'s filesystem and starts it
    /// (a fresh boot, no live processes). `source` is running.
    async fn fork(
        &self,
        _source: &SandboxSpec,
        _target: &SandboxSpec,
    ) -> Result<ProviderHandle, ProviderError> {
        Err(ProviderError::unsupported(self.name(), "fork"))
    }

    /// Builds a template's image (once: the backend caches it by `build.id`).
    async fn build_template(&self, _build: &TemplateBuild) -> Result<BuiltTemplate, ProviderError> {
        Err(ProviderError::unsupported(self.name(), "templates"))
    }

    /// Removes a template's provider resources.
    async fn delete_template(&self, _template: &TemplateRef) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Where the sandbox's workspace is on this host, for the backend's checkpoints
    /// (`crate::checkpoints`); `None` (the default) answers checkpoint requests 501.
    fn checkpoint_place(
        &self,
        _sandbox: &SandboxSpec,
    ) -> Option<crate::checkpoints::CheckpointPlace> {
        None
    }

    /// Takes a filesystem snapshot of a running sandbox; the handle can serve as a
    /// template's handle.
    async fn snapshot(&self, _sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        Err(ProviderError::unsupported(self.name(), "snapshots"))
    }

    /// Public URLs of the sandbox's ports.
    async fn tunnels(&self, _sandbox: &SandboxSpec) -> Result<Vec<Tunnel>, ProviderError> {
        Err(ProviderError::unsupported(self.name(), "tunnels"))
    }

    /// Where the sandbox's gateway is reached (`GET /v1/sandboxes/{id}/tunnels`).
    async fn gateway(&self, _sandbox: &SandboxSpec) -> Result<GatewayPlace, ProviderError> {
        Err(ProviderError::unsupported(self.name(), "gateway tunnels"))
    }

    /// Opens a byte stream to [`nightshift_protocol::sandbox::GATEWAY_PORT`] on the
    /// sandbox's own loopback, for the backend's relay. Never any other port, and
    /// never through a port of the host.
    async fn connect_gateway(
        &self,
        _sandbox: &SandboxSpec,
    ) -> Result<Box<dyn GatewayStream>, ProviderError> {
        Err(ProviderError::unsupported(self.name(), "the gateway relay"))
    }

    /// Starts a stopped sandbox again (its filesystem kept). For a provider whose stop
    /// keeps nothing but that sleeps ([`Capabilities::sleep`] without `restart`), it
    /// is only asked of a sandbox put to sleep: it creates a new sandbox from what
    /// [`Provider::keep_for_sleep`] kept, for the same backend id, and returns its
    /// handle (still naming what was kept, so `destroy` can remove it).
    async fn start(&self, _sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        Err(ProviderError::unsupported(
            self.name(),
            "restarting a stopped sandbox",
        ))
    }

    /// Before a sleep: keeps the running sandbox's files where [`Provider::start`]
    /// brings them back from (a filesystem image, a checkpoint), for a provider whose
    /// [`Provider::stop`] keeps nothing, and returns the handle that names what was
    /// kept. The backend persists that handle before it stops the sandbox, so what
    /// was kept is recorded before the sandbox it was made from ends; `destroy` must
    /// remove it. Failing changes nothing: the sandbox stays as it was. The default
    /// keeps nothing more, for providers whose stopped sandbox keeps its own files.
    async fn keep_for_sleep(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        Ok(sandbox.handle.clone())
    }

    /// After a restart of the backend: is a sandbox recorded as ready still running?
    /// The default (for providers that cannot tell) says it stopped.
    async fn reconcile(&self, _sandbox: &SandboxSpec) -> Result<Reconciled, ProviderError> {
        Ok(Reconciled::Stopped(format!(
            "the {} provider cannot reattach after a backend restart",
            self.name()
        )))
    }

    /// Stops the sandbox's processes and releases what a stopped sandbox no longer
    /// needs (the backend has already stopped the runner and every exec it tracks).
    async fn stop(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError>;

    /// Removes the sandbox's resources for good.
    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError>;

    /// Called once when the backend shuts down; sandboxes should keep running when the
    /// provider can reattach to them.
    async fn shutdown(&self) {}

    /// Whether every backend configured with the same provider account serves the same
    /// sandboxes: the provider keeps [`SandboxSpec::shared_record`] and answers
    /// [`Provider::find_sandbox`] and [`Provider::list_sandboxes`] from its own state,
    /// so two backends behind one address stand in for each other. The local
    /// provider's sandboxes are processes of one host: it does not share.
    fn shares_sandboxes(&self) -> bool {
        false
    }

    /// The running sandbox created (by any backend) with this backend id.
    async fn find_sandbox(&self, _id: &str) -> Result<Option<FoundSandbox>, ProviderError> {
        Ok(None)
    }

    /// Every running sandbox created by a backend, with its shared record.
    async fn list_sandboxes(&self) -> Result<Vec<FoundSandbox>, ProviderError> {
        Ok(Vec::new())
    }

    /// Records with the provider when this backend last saw activity in the sandbox
    /// (milliseconds since the epoch), so every backend's idle reaper sees every
    /// backend's traffic. Only asked of a provider that shares its sandboxes.
    async fn publish_activity(
        &self,
        _sandbox: &SandboxSpec,
        _at_millis: i64,
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The latest activity any backend published for the sandbox.
    async fn shared_activity(&self, _sandbox: &SandboxSpec) -> Result<Option<i64>, ProviderError> {
        Ok(None)
    }
}

/// Why a provider could not be set up from its settings.
pub type SetupError = anyhow::Error;

/// The remote providers configured in the environment (`lookup` reads a variable).
/// Each provider module contributes one line here; the local provider is set up by
/// [`crate::state`] because it needs the data directory and its probe.
pub async fn from_env(
    lookup: &(dyn Fn(&str) -> Option<String> + Send + Sync),
) -> Result<Vec<Arc<dyn Provider>>, SetupError> {
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    providers.extend(modal::from_lookup(lookup).map_err(anyhow::Error::msg)?);
    providers.extend(railway::from_lookup(lookup).map_err(anyhow::Error::msg)?);
    providers.extend(docker::from_lookup(lookup).map_err(anyhow::Error::msg)?);
    Ok(providers)
}

/// The configured providers and which one is the default.
#[derive(Clone)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    default: String,
}

impl Registry {
    /// `default` must name one of `providers`; names must be unique.
    pub fn new(providers: Vec<Arc<dyn Provider>>, default: &str) -> Result<Registry, String> {
        let mut names: Vec<&str> = providers.iter().map(|provider| provider.name()).collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(format!("providers configured twice: {names:?}"));
        }
        if !names.contains(&default) {
            return Err(format!(
                "the default provider {default:?} is not configured; configured: {names:?}"
            ));
        }
        Ok(Registry {
            providers,
            default: default.to_string(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers
            .iter()
            .find(|provider| provider.name() == name)
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }

    pub fn all(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    pub fn names(&self) -> Vec<String> {
        self.providers
            .iter()
            .map(|provider| provider.name().to_string())
            .collect()
    }
}
