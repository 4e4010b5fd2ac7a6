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

mod checkpoints;
mod entry;
mod gateway;
pub mod lifecycle;
pub mod processes;
pub mod record;
mod shared;
pub mod sleep;
mod startup;
pub mod store;
pub mod templates;
mod validation;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};

use nightshift_protocol::ErrorCode;
use nightshift_protocol::sandbox::{
    CreateSandboxRequest, ExecOutput, ExecRequest, ForkRequest, ProcessInfo, ProcessOutput,
    ProviderInfo, RunnerBootConfig, RunnerLaunch, Sandbox, SandboxStatus, StartProcessRequest,
    Template, TemplateRef, TemplateSpec,
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
use crate::runner_supervision::{RunnerCommand, RunnerObserver, RunnerSupervisor};

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
    templates: templates::Templates,
    /// The length of one `idle_timeout_minutes` minute.
    idle_minute: std::time::Duration,
    /// The latest activity published to a sharing provider, by sandbox id
    /// (milliseconds since the epoch; see [`shared`]).
    published_activity: std::sync::Mutex<HashMap<String, i64>>,
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
        if let Some(source) = &request.from_checkpoint {
            self.check_checkpoint_source(source)?;
        }
        let template = match request.template.clone() {
            None => None,
            Some(TemplateRef::Id(id)) => {
                let template = self.templates.get(&id).ok_or_else(|| {
                    ApiError::new(ErrorCode::NotFound, format!("no template with id {id:?}"))
                })?;
                if template.provider != provider.name() {
                    return Err(ApiError::invalid_request(format!(
                        "template {id} was built for the {} provider, not {}",
                        template.provider,
                        provider.name()
                    )));
                }
                Some(id)
            }
            Some(TemplateRef::Spec(spec)) => Some(
                self.templates
                    .build(&provider, spec, now_millis())
                    .await?
                    .0
                    .id,
            ),
        };

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
            template,
            gateway: request.gateway,
            ..SandboxRecord::blank()
        };
        let entry = Arc::new(SandboxEntry::new(record));
        // Held until the sandbox is ready, so a stop or destroy of the new id waits.
        let mut live = entry.live.write().await;
        self.entries_mut().insert(id.clone(), entry.clone());
        match self
            .create_resources(
                &id,
                &entry,
                &mut live,
                request.runner,
                request.from_checkpoint,
            )
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
        from_checkpoint: Option<nightshift_protocol::checkpoints::CheckpointSource>,
    ) -> Result<Sandbox, ApiError> {
        let started = std::time::Instant::now();
        self.store.create_dirs(id)?;
        let record = entry.update(&self.store, |_| {})?;
        let provider = self.provider_of(&record)?;
        let spec = self.spec(&record);
        tracing::debug!(sandbox = %id, elapsed = ?started.elapsed(), "record stored");
        let handle = provider.create(&spec).await?;
        tracing::debug!(sandbox = %id, elapsed = ?started.elapsed(), "provider created the sandbox");
        let record = entry.update(&self.store, |record| record.handle = handle.clone())?;
        if let Some(source) = &from_checkpoint {
            self.restore_into_new(&record, source).await?;
        }
        let spec = self.spec(&record);
        if let Some(launch) = launch {
            provider.prepare_runner(&spec).await?;
            let placement = provider.runner_placement(&spec);
            let config = RunnerBootConfig {
                worker_url: launch.worker_url,
                session_id: launch.session_id,
                token: launch.token,
                workspace_dir: placement.workspace_dir,
                command_wrapper: placement.command_wrapper,
                bridge: placement.bridge,
                sandbox_workspace_dir: placement.sandbox_workspace_dir,
                opencode: placement.opencode,
                sockets_dir: placement.sockets_dir,
                proxy: placement.proxy,
                egress_credential_socket: placement.egress_credential_socket,
                sandbox_sockets_dir: placement.sandbox_sockets_dir,
            };
            let json = serde_json::to_vec_pretty(&config).map_err(|error| {
                ApiError::internal(format!("cannot serialize the runner config: {error}"))
            })?;
            // Kept on this host either way: a provider that runs the runner inside
            // is handed it again at every start of the sandbox.
            write_private(&self.store.runner_config_path(id), &json)?;
            if provider.runs_runner_inside() {
                provider.start_runner_inside(&spec, &config).await?;
                entry.update(&self.store, runner_inside_started)?;
            } else {
                live.runner = Some(self.start_runner(id, entry));
            }
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
        self.stop_because(id, None).await
    }

    /// Stops the sandbox, recording why when it was not asked for.
    pub async fn stop_because(
        &self,
        id: &str,
        reason: Option<String>,
    ) -> Result<Sandbox, ApiError> {
        self.stop_or_sleep(id, reason, false).await
    }

    /// Stops the sandbox; to put it to sleep (`sleep`), the provider first keeps its
    /// files where a start brings them back from ([`Provider::keep_for_sleep`]), and
    /// the record says so (`asleep`, with the provider's new handle) before anything
    /// is stopped.
    async fn stop_or_sleep(
        &self,
        id: &str,
        reason: Option<String>,
        sleep: bool,
    ) -> Result<Sandbox, ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let mut live = entry.live.write().await;
        let record = entry.snapshot();
        if admit(id, record.status, Operation::Stop)? == Admission::AlreadyDone {
            if sleep && !record.asleep {
                // Stopped without a sleep: only a provider whose stopped sandbox keeps
                // its files still has them.
                let provider = self.provider_of(&record)?;
                if !provider.capabilities().restart {
                    return Err(ApiError::conflict(format!(
                        "sandbox {id} was stopped without being put to sleep, and the {} \
                         provider keeps nothing of a stopped sandbox",
                        provider.name()
                    )));
                }
                entry.update(&self.store, |record| record.asleep = true)?;
            }
            return Ok(entry.snapshot().to_wire());
        }
        // A sandbox already recorded asleep is one whose stop failed after its files
        // were kept: the stop is finished without keeping them again.
        let kept = if sleep && !record.asleep {
            let provider = self.provider_of(&record)?;
            Some(provider.keep_for_sleep(&self.spec(&record)).await?)
        } else {
            None
        };
        entry.update(&self.store, |record| {
            record.status = SandboxStatus::Stopping;
            record.status_reason = reason.clone();
            if let Some(handle) = kept {
                record.handle = handle;
                record.asleep = true;
            }
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
        let record = entry.update(&self.store, |record| {
            record.status = SandboxStatus::Stopped;
            // A runner inside the sandbox stopped with it (one on this host was
            // recorded stopped by its supervisor already).
            if let Some(runner) = record.runner.as_mut()
                && runner.state == RunnerState::Running
            {
                runner.state = RunnerState::Stopped;
            }
        })?;
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
        entry.exec_started();
        let active = entry.clone();
        live.exec_tasks.spawn(async move {
            run.driver.await;
            active.exec_ended();
        });
        Ok(run.output)
    }

    pub async fn read_file(&self, id: &str, path: &str) -> Result<Vec<u8>, ApiError> {
        let entry = self.entry(id)?;
        let _live = entry.live.read().await;
        let record = entry.snapshot();
        admit(id, record.status, Operation::ReadFiles)?;
        let path = WorkspacePath::parse(path)?;
        let provider = self.provider_of(&record)?;
        files_reachable(&record, provider.as_ref())?;
        Ok(provider.read_file(&self.spec(&record), &path).await?)
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
        let provider = self.provider_of(&record)?;
        files_reachable(&record, provider.as_ref())?;
        Ok(provider
            .write_file(&self.spec(&record), &path, contents)
            .await?)
    }

    /// Starts a stopped sandbox again (its files kept, its runner restarted).
    pub async fn start(&self, id: &str) -> Result<Sandbox, ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let mut live = entry.live.write().await;
        let record = entry.snapshot();
        if admit(id, record.status, Operation::Start)? == Admission::AlreadyDone {
            return Ok(record.to_wire());
        }
        let provider = self.provider_of(&record)?;
        let capabilities = provider.capabilities();
        // A provider whose stop keeps nothing starts only a sandbox put to sleep:
        // a new one, from what the sleep kept.
        let from_kept = !capabilities.restart && capabilities.sleep && record.asleep;
        if !capabilities.restart && !from_kept {
            return Err(ApiError::invalid_request(format!(
                "the {} provider cannot start a stopped sandbox again{}",
                provider.name(),
                if capabilities.sleep {
                    " (only one put to sleep with POST /v1/sandboxes/{id}/sleep)"
                } else {
                    ""
                }
            )));
        }
        let handle = match provider.start(&self.spec(&record)).await {
            Ok(handle) => handle,
            Err(error) if from_kept => {
                // What the sleep kept is still recorded and untouched: the sandbox
                // stays asleep, to be woken again or destroyed.
                let message = format!("waking failed: {error}");
                entry.update(&self.store, |record| {
                    record.status_reason = Some(message.clone());
                })?;
                return Err(error.into());
            }
            Err(error) => {
                let message = format!("starting failed: {error}");
                entry.update(&self.store, |record| {
                    record.status = SandboxStatus::Error;
                    record.error = Some(message.clone());
                })?;
                return Err(error.into());
            }
        };
        live.restart();
        let record = entry.update(&self.store, |record| {
            record.handle = handle.clone();
            record.status = SandboxStatus::Ready;
            record.status_reason = None;
            record.asleep = false;
        })?;
        if record
            .runner
            .as_ref()
            .is_some_and(|runner| runner.state != RunnerState::TokenRejected)
            && self.store.runner_config_path(id).is_file()
        {
            provider.prepare_runner(&self.spec(&record)).await?;
            if provider.runs_runner_inside() {
                let config = self.stored_runner_config(id)?;
                provider
                    .start_runner_inside(&self.spec(&record), &config)
                    .await?;
                entry.update(&self.store, runner_inside_started)?;
            } else {
                live.runner = Some(self.start_runner(id, &entry));
            }
        }
        entry.touch();
        tracing::info!(sandbox = %id, "sandbox started again");
        Ok(record.to_wire())
    }

    /// A new, started sandbox with a copy of a running one's files.
    pub async fn fork(&self, id: &str, request: ForkRequest) -> Result<Sandbox, ApiError> {
        self.refuse_when_closing()?;
        let source_entry = self.entry(id)?;
        let _source_live = source_entry.live.read().await;
        let source = source_entry.snapshot();
        admit(id, source.status, Operation::Fork)?;
        let provider = self.provider_of(&source)?;
        let capabilities = provider.capabilities();
        if !capabilities.fork {
            return Err(ApiError::invalid_request(format!(
                "the {} provider does not support fork",
                provider.name()
            )));
        }
        let network = request.network.unwrap_or(source.network);
        if !capabilities.network_modes.contains(&network) {
            return Err(ApiError::invalid_request(format!(
                "the {} provider cannot enforce network mode {network:?}",
                provider.name()
            )));
        }
        let env = request.env.unwrap_or_else(|| source.env.clone());
        crate::exec::validate_env(&env)?;
        let new_id = format!("sbx_{}", uuid::Uuid::new_v4().simple());
        let record = SandboxRecord {
            id: new_id.clone(),
            provider: source.provider.clone(),
            status: SandboxStatus::Initializing,
            network,
            labels: request.labels.unwrap_or_else(|| source.labels.clone()),
            env,
            default_timeout_ms: source.default_timeout_ms,
            idle_timeout_minutes: request.idle_timeout_minutes.or(source.idle_timeout_minutes),
            created_at: now_millis(),
            template: source.template.clone(),
            forked_from: Some(source.id.clone()),
            ..SandboxRecord::blank()
        };
        let entry = Arc::new(SandboxEntry::new(record));
        let mut live = entry.live.write().await;
        self.entries_mut().insert(new_id.clone(), entry.clone());
        let forked = async {
            self.store.create_dirs(&new_id)?;
            let record = entry.update(&self.store, |_| {})?;
            let handle = provider
                .fork(&self.spec(&source), &self.spec(&record))
                .await?;
            let record = entry.update(&self.store, |record| {
                record.handle = handle.clone();
                record.status = SandboxStatus::Ready;
            })?;
            Ok::<Sandbox, ApiError>(record.to_wire())
        }
        .await;
        match forked {
            Ok(sandbox) => {
                tracing::info!(sandbox = %new_id, source = %id, "sandbox forked");
                Ok(sandbox)
            }
            Err(error) => {
                stop_processes(&mut live).await;
                self.remove_resources(&entry.snapshot()).await;
                self.entries_mut().remove(&new_id);
                Err(error)
            }
        }
    }

    /// Starts a background process.
    pub async fn start_process(
        &self,
        id: &str,
        request: StartProcessRequest,
    ) -> Result<ProcessInfo, ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let live = entry.live.read().await;
        let record = entry.snapshot();
        admit(id, record.status, Operation::Exec)?;
        let provider = self.provider_of(&record)?;
        if !provider.capabilities().processes {
            return Err(ApiError::invalid_request(format!(
                "the {} provider does not support background processes",
                provider.name()
            )));
        }
        if !entry.processes.make_room() {
            return Err(ApiError::conflict(format!(
                "sandbox {id} already runs {} processes",
                processes::MAX_PROCESSES
            )));
        }
        let exec_request = ExecRequest {
            command: request.command.clone(),
            args: request.args.clone(),
            env: request.env,
            cwd: request.cwd,
            timeout_ms: None,
            stdin: None,
        };
        let mut plan = ExecPlan::from_request(exec_request, None)?;
        plan.timeout = processes::PROCESS_TIMEOUT;
        let (stdin, stdin_rx) = mpsc::channel(16);
        let cancel = live.exec_cancel.child_token();
        let run = provider
            .spawn(&self.spec(&record), plan, stdin_rx, cancel.clone())
            .await?;
        let active = entry.clone();
        let (process, pump) = entry.processes.add(
            request.command,
            request.args,
            now_millis(),
            stdin,
            cancel,
            run.output,
            move || active.touch(),
        );
        live.exec_tasks.spawn(run.driver);
        live.exec_tasks.spawn(pump);
        entry.touch();
        Ok(process.info())
    }

    fn process(
        &self,
        id: &str,
        pid: &str,
    ) -> Result<(Arc<SandboxEntry>, Arc<processes::Process>), ApiError> {
        let entry = self.entry(id)?;
        if entry.snapshot().status == SandboxStatus::Destroyed {
            return Err(ApiError::sandbox_not_found(id));
        }
        let process = entry.processes.get(pid).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no process {pid:?} in sandbox {id}"),
            )
        })?;
        Ok((entry, process))
    }

    pub fn processes(&self, id: &str) -> Result<Vec<ProcessInfo>, ApiError> {
        let entry = self.entry(id)?;
        if entry.snapshot().status == SandboxStatus::Destroyed {
            return Err(ApiError::sandbox_not_found(id));
        }
        Ok(entry.processes.list())
    }

    pub fn process_info(&self, id: &str, pid: &str) -> Result<ProcessInfo, ApiError> {
        Ok(self.process(id, pid)?.1.info())
    }

    pub fn process_output(
        &self,
        id: &str,
        pid: &str,
        stdout_offset: u64,
        stderr_offset: u64,
        follow: bool,
    ) -> Result<mpsc::Receiver<ProcessOutput>, ApiError> {
        let (_, process) = self.process(id, pid)?;
        Ok(process.output_lines(stdout_offset, stderr_offset, follow))
    }

    pub async fn process_stdin(
        &self,
        id: &str,
        pid: &str,
        data: String,
        eof: bool,
    ) -> Result<(), ApiError> {
        let (entry, process) = self.process(id, pid)?;
        if !process.running() || !process.write_stdin(data.into_bytes(), eof).await {
            return Err(ApiError::conflict(format!(
                "the stdin of process {pid} is closed (it ended, or was closed with eof)"
            )));
        }
        entry.touch();
        Ok(())
    }

    pub async fn kill_process(&self, id: &str, pid: &str) -> Result<ProcessInfo, ApiError> {
        let (entry, process) = self.process(id, pid)?;
        entry.touch();
        Ok(process.kill().await)
    }

    /// Every configured provider with its capabilities.
    pub fn provider_infos(&self) -> Vec<ProviderInfo> {
        self.providers
            .all()
            .iter()
            .map(|provider| ProviderInfo {
                name: provider.name().to_string(),
                default: provider.name() == self.providers.default_name(),
                capabilities: provider.capabilities(),
            })
            .collect()
    }

    /// Builds a template (or finds it built); `true` when built now.
    pub async fn build_template(
        &self,
        provider: Option<String>,
        spec: TemplateSpec,
    ) -> Result<(Template, bool), ApiError> {
        self.refuse_when_closing()?;
        let name = provider.unwrap_or_else(|| self.providers.default_name().to_string());
        let provider = self.providers.get(&name).cloned().ok_or_else(|| {
            ApiError::invalid_request(format!(
                "unknown provider {name:?}; configured providers: {}",
                self.providers.names().join(", ")
            ))
        })?;
        self.templates.build(&provider, spec, now_millis()).await
    }

    pub fn templates(&self) -> Vec<Template> {
        self.templates.list()
    }

    pub fn template(&self, id: &str) -> Result<Template, ApiError> {
        self.templates.get(id).ok_or_else(|| {
            ApiError::new(ErrorCode::NotFound, format!("no template with id {id:?}"))
        })
    }

    pub async fn delete_template(&self, id: &str) -> Result<(), ApiError> {
        let template = self.template(id)?;
        let provider = self.providers.get(&template.provider).cloned();
        self.templates.delete(provider.as_ref(), id).await
    }

    /// Stops every ready sandbox that has been idle for longer than it allows.
    pub async fn reap_idle(&self) {
        let entries: Vec<Arc<SandboxEntry>> = self.entries_ref().values().cloned().collect();
        for entry in entries {
            let record = entry.snapshot();
            let Some(minutes) = record.idle_timeout_minutes.filter(|minutes| *minutes > 0) else {
                continue;
            };
            if record.status != SandboxStatus::Ready {
                continue;
            }
            let limit = self.idle_minute * minutes;
            if entry.idle_for() < limit {
                self.share_activity(&entry, &record, limit).await;
                continue;
            }
            if self.active_elsewhere(&record, limit).await {
                continue;
            }
            let reason =
                format!("stopped after {minutes} idle minute(s) without exec or process activity");
            tracing::info!(sandbox = %record.id, %reason, "stopping an idle sandbox");
            if let Err(error) = self.stop_because(&record.id, Some(reason)).await {
                tracing::warn!(sandbox = %record.id, %error, "cannot stop an idle sandbox");
            }
        }
    }

    /// How often [`Sandboxes::reap_idle`] should run.
    pub fn idle_check_interval(&self) -> std::time::Duration {
        (self.idle_minute / 4).clamp(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(15),
        )
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
        for provider in self.providers.all() {
            provider.shutdown().await;
        }
    }

    /// The runner config written at creation, for a provider that is handed it again
    /// at every start.
    fn stored_runner_config(&self, id: &str) -> Result<RunnerBootConfig, ApiError> {
        let path = self.store.runner_config_path(id);
        std::fs::read(&path)
            .map_err(|error| error.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|error| error.to_string()))
            .map_err(|error| {
                ApiError::internal(format!(
                    "cannot read the runner config {}: {error}",
                    path.display()
                ))
            })
    }

    fn start_runner(&self, id: &str, entry: &Arc<SandboxEntry>) -> RunnerSupervisor {
        let command = RunnerCommand {
            program: self.runner_bin.clone(),
            config_path: self.store.runner_config_path(id),
            log_path: self.store.runner_log_path(id),
            working_dir: self.store.runner_dir(id),
            run_as: self
                .provider_of(&entry.snapshot())
                .ok()
                .and_then(|provider| provider.runner_user()),
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
            template: record
                .template
                .as_deref()
                .and_then(|id| self.templates.reference(id)),
            labels: record.labels.clone(),
            gateway: record.gateway.clone(),
            shared_record: self.shared_record(record),
            has_runner: record.runner.is_some(),
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

/// A stopped sandbox's files are reachable only where its provider keeps them with
/// it: a provider that cannot restart a stopped sandbox (Modal, Railway) has none
/// there, or keeps them in a snapshot only a wake brings back.
fn files_reachable(record: &SandboxRecord, provider: &dyn Provider) -> Result<(), ApiError> {
    if record.status == SandboxStatus::Stopped && !provider.capabilities().restart {
        return Err(ApiError::conflict(format!(
            "sandbox {} is {}: the {} provider keeps no running sandbox to reach its files \
             in{}",
            record.id,
            if record.asleep { "asleep" } else { "stopped" },
            provider.name(),
            if record.asleep {
                " (wake it to reach them)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// Records a runner the provider started inside the sandbox (and supervises there).
fn runner_inside_started(record: &mut SandboxRecord) {
    if let Some(runner) = record.runner.as_mut() {
        runner.state = RunnerState::Running;
        runner.pid = None;
        runner.start_ticks = None;
        runner.starts += 1;
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
