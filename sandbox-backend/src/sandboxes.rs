//! The sandboxes this backend manages, and the lifecycle rules that hold for every
//! provider: one lifecycle operation at a time per sandbox, the transitions of
//! [`lifecycle`], destroyed is final, the runner supervised, every exec'd process
//! killed when its sandbox stops. Providers below only do what they are told.
//!
//! Concurrency: each sandbox has a lifecycle lock (a `tokio` read-write lock). Create,
//! stop and destroy hold it exclusively; exec and the files API hold it shared while
//! they check the status and start their work, so a stop either waits for them to
//! start (and then kills them) or makes them see `stopped`. The record itself sits
//! behind a short, never-awaited mutex because the runner supervisor updates it too.

mod entry;
pub mod lifecycle;
pub mod record;
mod startup;
pub mod store;
mod validation;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use nightshift_protocol::ErrorCode;
use nightshift_protocol::sandbox::{
    CreateSandboxRequest, ExecOutput, ExecRequest, RunnerBootConfig, RunnerLaunch, Sandbox,
    SandboxStatus,
};
use tokio::sync::mpsc;

use self::entry::{Live, SandboxEntry, stop_processes};
use self::lifecycle::{Admission, Operation, admit};
use self::record::{RunnerRecord, RunnerState, SandboxRecord};
use self::store::{Store, StoreError, write_private};
use crate::error::ApiError;
use crate::exec::ExecPlan;
use crate::files::WorkspacePath;
use crate::providers::{Provider, Registry, SandboxSpec};
use crate::runner::{RunnerCommand, RunnerObserver, RunnerSupervisor};

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::internal(error.to_string())
    }
}

/// Every sandbox of this backend.
pub struct Sandboxes {
    store: Store,
    providers: Registry,
    runner_bin: PathBuf,
    entries: RwLock<HashMap<String, Arc<SandboxEntry>>>,
    closing: AtomicBool,
}

impl Sandboxes {
    pub fn provider_names(&self) -> Vec<String> {
        self.providers.names()
    }

    pub fn providers(&self) -> &Registry {
        &self.providers
    }

    /// The provider of an existing record.
    fn provider_of(&self, record: &SandboxRecord) -> Result<Arc<dyn Provider>, ApiError> {
        self.providers
            .get(&record.provider)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::SandboxUnavailable,
                    format!(
                        "sandbox {} belongs to the {} provider, which is not configured",
                        record.id, record.provider
                    ),
                )
            })
    }

    pub async fn create(&self, request: CreateSandboxRequest) -> Result<Sandbox, ApiError> {
        self.refuse_when_closing()?;
        let provider = validation::pick_provider(&request, &self.providers)?;
        let network = validation::check_create(&request, provider.as_ref(), &self.runner_bin)?;

        let id = format!("sbx_{}", uuid::Uuid::new_v4().simple());
        let record = SandboxRecord {
            id: id.clone(),
            provider: provider.name().into(),
            status: SandboxStatus::Initializing,
            error: None,
            network,
            labels: request.labels,
            env: request.env,
            default_timeout_ms: request.default_timeout_ms,
            idle_timeout_minutes: request.idle_timeout_minutes,
            created_at: now_millis(),
            runner: request.runner.as_ref().map(|launch| RunnerRecord {
                session_id: launch.session_id.clone(),
                state: RunnerState::Stopped,
                pid: None,
                start_ticks: None,
                starts: 0,
            }),
            ..SandboxRecord::blank()
        };
        let entry = Arc::new(SandboxEntry::new(record));
        // Held until the sandbox is ready, so a stop or destroy of the new id waits.
        let mut live = entry.live.write().await;
        self.entries_mut().insert(id.clone(), entry.clone());
        match self
            .create_resources(&id, &entry, &mut live, request.runner)
            .await
        {
            Ok(sandbox) => {
                tracing::info!(sandbox = %id, "sandbox created");
                Ok(sandbox)
            }
            Err(error) => {
                stop_processes(&mut live).await;
                self.remove_resources(&entry.snapshot()).await;
                self.entries_mut().remove(&id);
                Err(error)
            }
        }
    }

    async fn create_resources(
        &self,
        id: &str,
        entry: &Arc<SandboxEntry>,
        live: &mut Live,
        launch: Option<RunnerLaunch>,
    ) -> Result<Sandbox, ApiError> {
        self.store.create_dirs(id)?;
        let record = entry.update(&self.store, |_| {})?;
        let provider = self.provider_of(&record)?;
        let spec = self.spec(&record);
        let handle = provider.create(&spec).await?;
        let record = entry.update(&self.store, |record| record.handle = handle.clone())?;
        let spec = self.spec(&record);
        if let Some(launch) = launch {
            let placement = provider.runner_placement(&spec);
            let config = RunnerBootConfig {
                worker_url: launch.worker_url,
                session_id: launch.session_id,
                token: launch.token,
                workspace_dir: placement.workspace_dir,
                command_wrapper: placement.command_wrapper,
                sandbox_workspace_dir: placement.sandbox_workspace_dir,
            };
            let json = serde_json::to_vec_pretty(&config).map_err(|error| {
                ApiError::internal(format!("cannot serialize the runner config: {error}"))
            })?;
            write_private(&self.store.runner_config_path(id), &json)?;
            live.runner = Some(self.start_runner(id, entry));
        }
        let record = entry.update(&self.store, |record| record.status = SandboxStatus::Ready)?;
        Ok(record.to_wire())
    }

    pub fn get(&self, id: &str) -> Result<Sandbox, ApiError> {
        let record = self.entry(id)?.snapshot();
        if record.status == SandboxStatus::Destroyed {
            return Err(ApiError::sandbox_not_found(id));
        }
        Ok(record.to_wire())
    }

    /// Every sandbox that is not destroyed, oldest first.
    pub fn list(&self) -> Vec<Sandbox> {
        let mut records: Vec<SandboxRecord> = self
            .entries_ref()
            .values()
            .map(|entry| entry.snapshot())
            .filter(|record| record.status != SandboxStatus::Destroyed)
            .collect();
        records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        records.iter().map(SandboxRecord::to_wire).collect()
    }

    /// Kills the runner and every exec'd command; the workspace stays.
    pub async fn stop(&self, id: &str) -> Result<Sandbox, ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let mut live = entry.live.write().await;
        if admit(id, entry.snapshot().status, Operation::Stop)? == Admission::AlreadyDone {
            return Ok(entry.snapshot().to_wire());
        }
        entry.update(&self.store, |record| {
            record.status = SandboxStatus::Stopping
        })?;
        stop_processes(&mut live).await;
        let record = entry.snapshot();
        let spec = self.spec(&record);
        if let Err(error) = self.provider_of(&record)?.stop(&spec).await {
            let message = format!("stopping failed: {error}");
            entry.update(&self.store, |record| {
                record.status = SandboxStatus::Error;
                record.error = Some(message.clone());
            })?;
            return Err(ApiError::internal(message));
        }
        let record = entry.update(&self.store, |record| record.status = SandboxStatus::Stopped)?;
        tracing::info!(sandbox = %id, "sandbox stopped");
        Ok(record.to_wire())
    }

    /// Stops the sandbox and removes everything of it. Final: the id is never usable
    /// again (a repeated destroy answers the destroyed sandbox).
    pub async fn destroy(&self, id: &str) -> Result<Sandbox, ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let mut live = entry.live.write().await;
        if admit(id, entry.snapshot().status, Operation::Destroy)? == Admission::AlreadyDone {
            return Ok(entry.snapshot().to_wire());
        }
        entry.update(&self.store, |record| {
            record.status = SandboxStatus::Destroying
        })?;
        stop_processes(&mut live).await;
        let record = entry.snapshot();
        let removed = match self
            .provider_of(&record)?
            .destroy(&self.spec(&record))
            .await
        {
            Ok(()) => self.store.remove(id).map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = removed {
            let message = format!("destroying failed: {error}");
            entry.update(&self.store, |record| {
                record.status = SandboxStatus::Error;
                record.error = Some(message.clone());
            })?;
            return Err(ApiError::internal(message));
        }
        // Kept in memory as a tombstone, so the id stays known as destroyed.
        let record = entry.update(&self.store, |record| {
            record.status = SandboxStatus::Destroyed
        })?;
        tracing::info!(sandbox = %id, "sandbox destroyed");
        Ok(record.to_wire())
    }

    /// Starts a command; its output (ending with the exit line) arrives on the
    /// returned channel. Dropping the receiver kills the command.
    pub async fn exec(
        &self,
        id: &str,
        request: ExecRequest,
    ) -> Result<mpsc::Receiver<ExecOutput>, ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let live = entry.live.read().await;
        let record = entry.snapshot();
        admit(id, record.status, Operation::Exec)?;
        let plan = ExecPlan::from_request(request, record.default_timeout_ms)?;
        let run = self
            .provider_of(&record)?
            .exec(&self.spec(&record), plan, live.exec_cancel.child_token())
            .await?;
        live.exec_tasks.spawn(run.driver);
        Ok(run.output)
    }

    pub async fn read_file(&self, id: &str, path: &str) -> Result<Vec<u8>, ApiError> {
        let entry = self.entry(id)?;
        let _live = entry.live.read().await;
        let record = entry.snapshot();
        admit(id, record.status, Operation::ReadFiles)?;
        let path = WorkspacePath::parse(path)?;
        Ok(self
            .provider_of(&record)?
            .read_file(&self.spec(&record), &path)
            .await?)
    }

    pub async fn write_file(
        &self,
        id: &str,
        path: &str,
        contents: Vec<u8>,
    ) -> Result<(), ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let _live = entry.live.read().await;
        let record = entry.snapshot();
        admit(id, record.status, Operation::WriteFiles)?;
        let path = WorkspacePath::parse(path)?;
        Ok(self
            .provider_of(&record)?
            .write_file(&self.spec(&record), &path, contents)
            .await?)
    }

    /// Stops every runner and command, for a backend that is going away. Records keep
    /// their status, so the next start brings the runners back.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let entries: Vec<Arc<SandboxEntry>> = self.entries_ref().values().cloned().collect();
        let stops = entries.into_iter().map(|entry| async move {
            let mut live = entry.live.write().await;
            stop_processes(&mut live).await;
        });
        futures::future::join_all(stops).await;
    }

    fn start_runner(&self, id: &str, entry: &Arc<SandboxEntry>) -> RunnerSupervisor {
        let command = RunnerCommand {
            program: self.runner_bin.clone(),
            config_path: self.store.runner_config_path(id),
            log_path: self.store.runner_log_path(id),
            working_dir: self.store.runner_dir(id),
        };
        let weak: Weak<SandboxEntry> = Arc::downgrade(entry);
        let store = self.store.clone();
        let observer: RunnerObserver = Arc::new(move |event| {
            if let Some(entry) = weak.upgrade() {
                entry.observe_runner(&store, event);
            }
        });
        RunnerSupervisor::start(command, observer)
    }

    /// Best-effort removal of whatever exists of a sandbox.
    async fn remove_resources(&self, record: &SandboxRecord) {
        let destroyed = match self.provider_of(record) {
            Ok(provider) => provider
                .destroy(&self.spec(record))
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.message),
        };
        if let Err(error) = destroyed {
            tracing::warn!(sandbox = %record.id, %error, "cannot remove the sandbox's provider resources");
        }
        if let Err(error) = self.store.remove(&record.id) {
            tracing::warn!(sandbox = %record.id, %error, "cannot remove the sandbox's directory");
        }
    }

    fn spec(&self, record: &SandboxRecord) -> SandboxSpec {
        SandboxSpec {
            id: record.id.clone(),
            dir: self.store.sandbox_dir(&record.id),
            env: record.env.clone(),
            network: record.network,
            handle: record.handle.clone(),
            template: None,
            labels: record.labels.clone(),
        }
    }

    fn entry(&self, id: &str) -> Result<Arc<SandboxEntry>, ApiError> {
        self.entries_ref()
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::sandbox_not_found(id))
    }

    fn entries_ref(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<SandboxEntry>>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn entries_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<SandboxEntry>>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse_when_closing(&self) -> Result<(), ApiError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                ErrorCode::SandboxUnavailable,
                "the sandbox backend is shutting down",
            ));
        }
        Ok(())
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
