//! A local sandbox's processes: booting it (from the warm pool when one fits) and
//! configuring its agent, holding it (the connection that tells its agent the
//! backend is alive), serving its egress proxy ways out, and halting it with
//! everything the provider keeps for it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use nightshift_protocol::sandbox::NetworkMode;

use super::environment::configure_request;
use super::handle::{STOP_TIMEOUT, end_sandbox, handle_value, kill_sandbox, parse_handle};
use super::launcher::cgroup_name;
use super::sandbox_agent::{client as agent, egress};
use super::sandbox_dir::socket;
use super::{LocalProvider, opencode_sandbox};
use crate::git_egress::runner::RunnerSocket;
use crate::git_egress::{RUNNER_SOCKET_DIR, RUNNER_SOCKET_FILE, SandboxGit};
use crate::providers::{ProviderError, ProviderHandle, SandboxSpec};

/// Background tasks by key (a sandbox's id): one per key, aborted when replaced or
/// removed.
#[derive(Default)]
pub(super) struct Tasks(Mutex<HashMap<String, tokio::task::JoinHandle<()>>>);

impl Tasks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::JoinHandle<()>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn insert(&self, key: String, task: tokio::task::JoinHandle<()>) {
        if let Some(old) = self.lock().insert(key, task) {
            old.abort();
        }
    }

    pub(super) fn abort(&self, key: &str) {
        if let Some(task) = self.lock().remove(key) {
            task.abort();
        }
    }

    pub(super) fn abort_all(&self) {
        for (_, task) in self.lock().drain() {
            task.abort();
        }
    }
}

impl LocalProvider {
    /// Starts the sandbox (from the warm pool when one fits) and waits until its agent
    /// answers with the sandbox's environment set.
    pub(super) async fn boot(
        &self,
        sandbox: &SandboxSpec,
    ) -> Result<ProviderHandle, ProviderError> {
        let launcher = &self.launcher;
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
                    warm.end().await;
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
        let git = self.git_egress(sandbox);
        if let Some(git) = &git
            && let Err(error) = self.prepare_git_egress(sandbox, git)
        {
            kill_sandbox(&handle).await;
            return Err(ProviderError::io(
                "cannot prepare the sandbox's git egress",
                error,
            ));
        }
        let configure = configure_request(sandbox, git.is_some());
        if let Err(error) = agent::simple(&socket(sandbox), &configure).await {
            kill_sandbox(&handle).await;
            return Err(ProviderError::Unavailable(format!(
                "the sandbox did not start: {error}"
            )));
        }
        tracing::debug!(sandbox = %sandbox.id, elapsed = ?boot_started.elapsed(), "sandbox ready");
        self.disks.watch(sandbox, &handle);
        self.hold(sandbox).await;
        self.start_egress(sandbox);
        Ok(handle_value(&handle))
    }

    /// Holds the sandbox's agent: it ends its sandbox once no backend has held it
    /// for the orphan grace.
    pub(super) async fn hold(&self, sandbox: &SandboxSpec) {
        match agent::hold(&socket(sandbox)).await {
            Ok(stream) => {
                self.lock_holds().insert(sandbox.id.clone(), stream);
            }
            Err(error) => {
                tracing::warn!(sandbox = %sandbox.id, %error, "cannot hold the sandbox agent")
            }
        }
    }

    pub(super) fn lock_holds(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, tokio::net::UnixStream>> {
        self.holds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The interception of an `isolated` sandbox's tunnels to its repository's host,
    /// when the backend has the egress CA.
    pub(super) fn git_egress(&self, sandbox: &SandboxSpec) -> Option<SandboxGit> {
        if sandbox.network != NetworkMode::Isolated {
            return None;
        }
        Some(SandboxGit {
            egress: self.settings.git_egress.clone()?,
            runner: RunnerSocket {
                path: sandbox.dir.join(RUNNER_SOCKET_DIR).join(RUNNER_SOCKET_FILE),
            },
        })
    }

    /// Gives the sandbox its CA bundle (in its sockets directory) and the runner the
    /// directory of its egress socket (the runner's, and in no sandbox).
    fn prepare_git_egress(&self, sandbox: &SandboxSpec, git: &SandboxGit) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        git.egress
            .write_bundle(&sandbox.dir.join(super::launcher::SOCKETS_DIR_NAME))?;
        let dir = sandbox.dir.join(RUNNER_SOCKET_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        if let Some(user) = self.host_user {
            user.give(&dir)?;
        }
        Ok(())
    }

    /// Offers an `isolated` sandbox's egress proxy ways out.
    pub(super) fn start_egress(&self, sandbox: &SandboxSpec) {
        if sandbox.network != NetworkMode::Isolated {
            return;
        }
        let task = tokio::spawn(egress::pool(
            socket(sandbox),
            self.settings.egress.clone(),
            self.git_egress(sandbox),
        ));
        self.egress_pools.insert(sandbox.id.clone(), task);
    }

    /// Ends the sandbox's processes (agent first, bubblewrap by force if needed).
    pub(super) async fn halt(&self, sandbox: &SandboxSpec) {
        opencode_sandbox::halt(self, sandbox).await;
        self.gateways.stop(&sandbox.id);
        super::gateway::remove_key(&super::sandbox_dir::home(sandbox));
        self.lock_holds().remove(&sandbox.id);
        self.disks.unwatch(&sandbox.id);
        self.egress_pools.abort(&sandbox.id);
        let handle = parse_handle(&sandbox.handle);
        end_sandbox(&socket(sandbox), handle.as_ref()).await;
        if let Some(cgroups) = self.launcher.cgroups.clone() {
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
        let _ = std::fs::remove_file(socket(sandbox));
    }
}
