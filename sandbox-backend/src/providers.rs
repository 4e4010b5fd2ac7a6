//! Where sandboxes actually live. A [`Provider`] creates a sandbox's resources, runs
//! commands in it, reads and writes its files and tears it down; it knows nothing of
//! HTTP, of other sandboxes, or of lifecycle rules.
//!
//! Lifecycle rules (which operation is allowed in which status, one operation at a
//! time per sandbox, destroyed is final) live once, above the providers, in
//! [`crate::sandboxes`]. So does the runner's supervision: a provider only says how
//! a runner reaches the sandbox ([`RunnerPlacement`]).

pub mod local;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use nightshift_protocol::sandbox::NetworkMode;
use tokio_util::sync::CancellationToken;

use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;

/// What a provider can do, so callers can refuse unsupported requests up front.
/// Later providers add fork, templates, snapshots and background processes here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Network modes the provider can actually enforce.
    pub network_modes: Vec<NetworkMode>,
    /// Whether commands run isolated from the host (false only for the local
    /// provider's explicitly allowed unisolated mode).
    pub isolated: bool,
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
}

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
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("no such file in the workspace: {0}")]
    FileNotFound(String),
    #[error("not a regular file: {0}")]
    NotAFile(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl ProviderError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ProviderError {
        ProviderError::Io {
            context: context.into(),
            source,
        }
    }
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The name clients pass as `provider` (`"local"`).
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Creates the sandbox's resources (for the local provider: its workspace).
    async fn create(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError>;

    /// How a runner started on this host works with the sandbox.
    fn runner_placement(&self, sandbox: &SandboxSpec) -> RunnerPlacement;

    /// Starts a command. The returned run's driver must be polled; `cancel` kills it.
    async fn exec(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError>;

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

    /// Releases what a stopped sandbox no longer needs. Processes are already gone:
    /// the lifecycle layer kills the runner and every exec before calling this.
    async fn stop(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError>;

    /// Removes the sandbox's resources for good.
    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError>;
}
