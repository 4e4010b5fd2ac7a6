//! Start-up: loading the persisted sandboxes and reconciling them with what is
//! actually running.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nightshift_protocol::sandbox::SandboxStatus;

use super::Sandboxes;
use super::entry::SandboxEntry;
use super::record::{RunnerState, SandboxRecord};
use super::store::{Store, StoreError};
use super::templates::Templates;
use crate::providers::{Reconciled, Registry};

/// How long a runner left over from a crashed backend gets to exit.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

impl Sandboxes {
    /// Loads the persisted sandboxes and reconciles them with reality: a creation or
    /// destruction the backend died in the middle of is finished (by removing the
    /// sandbox), a runner that outlived a crash is replaced by a supervised one, and
    /// every ready sandbox with a runner gets it started again.
    pub async fn load(
        store: Store,
        providers: Registry,
        runner_bin: PathBuf,
        templates: Templates,
        idle_minute: Duration,
    ) -> Result<Sandboxes, StoreError> {
        let sandboxes = Sandboxes {
            store: store.clone(),
            providers,
            runner_bin,
            entries: RwLock::new(HashMap::new()),
            closing: AtomicBool::new(false),
            templates,
            idle_minute,
            published_activity: Default::default(),
        };
        for mut record in store.load_all()? {
            retire_orphan_runner(&record).await;
            match record.status {
                SandboxStatus::Pending
                | SandboxStatus::Initializing
                | SandboxStatus::Destroying
                | SandboxStatus::Destroyed => {
                    tracing::info!(sandbox = %record.id, status = ?record.status, "finishing an interrupted operation: removing the sandbox");
                    sandboxes.remove_resources(&record).await;
                    continue;
                }
                SandboxStatus::Stopping => {
                    // Finish the stop: whatever still runs of it goes.
                    if let Some(provider) = sandboxes.providers.get(&record.provider) {
                        let _ = provider.stop(&sandboxes.spec(&record)).await;
                    }
                    record.status = SandboxStatus::Stopped;
                }
                SandboxStatus::Ready => sandboxes.reconcile(&mut record).await,
                SandboxStatus::Stopped | SandboxStatus::Error => {}
            }
            // A runner inside a running sandbox lives on with it (its provider
            // supervises it there); only runners of this host are started again.
            let inside = sandboxes
                .providers
                .get(&record.provider)
                .is_some_and(|provider| provider.runs_runner_inside());
            if let Some(runner) = record.runner.as_mut() {
                runner.pid = None;
                runner.start_ticks = None;
                if runner.state != RunnerState::TokenRejected
                    && !(inside && record.status == SandboxStatus::Ready)
                {
                    runner.state = RunnerState::Stopped;
                }
            }
            store.save(&record)?;
            let restart = !inside
                && record.status == SandboxStatus::Ready
                && record
                    .runner
                    .as_ref()
                    .is_some_and(|runner| runner.state != RunnerState::TokenRejected)
                && store.runner_config_path(&record.id).is_file();
            let id = record.id.clone();
            let provider_name = record.provider.clone();
            let spec = sandboxes.spec(&record);
            let entry = Arc::new(SandboxEntry::new(record));
            if restart {
                tracing::info!(sandbox = %id, "restarting the runner of a ready sandbox");
                if let Some(provider) = sandboxes.providers.get(&provider_name).cloned()
                    && let Err(error) = provider.prepare_runner(&spec).await
                {
                    tracing::warn!(sandbox = %id, %error, "cannot ready what the runner needs");
                }
                entry.live.write().await.runner = Some(sandboxes.start_runner(&id, &entry));
            }
            sandboxes.entries_mut().insert(id, entry);
        }
        Ok(sandboxes)
    }
}

impl Sandboxes {
    /// Asks the provider whether a sandbox recorded as ready still runs.
    async fn reconcile(&self, record: &mut SandboxRecord) {
        let Some(provider) = self.providers.get(&record.provider).cloned() else {
            record.status = SandboxStatus::Error;
            record.error = Some(format!(
                "its provider {} is not configured in this backend",
                record.provider
            ));
            return;
        };
        match provider.reconcile(&self.spec(record)).await {
            Ok(Reconciled::Running(handle)) => {
                tracing::info!(sandbox = %record.id, "reattached to a running sandbox");
                record.handle = handle;
            }
            Ok(Reconciled::Stopped(reason)) => {
                tracing::info!(sandbox = %record.id, %reason, "a sandbox stopped while the backend was away");
                record.status = SandboxStatus::Stopped;
                record.status_reason = Some(reason);
            }
            Ok(Reconciled::Gone(reason)) => {
                record.status = SandboxStatus::Error;
                record.error = Some(reason);
            }
            Err(error) => {
                record.status = SandboxStatus::Error;
                record.error = Some(format!("cannot reattach: {error}"));
            }
        }
    }
}

/// A runner recorded as running when the backend starts again outlived a crash of the
/// backend. It cannot be supervised (it is not our child), so it is stopped and a
/// supervised one takes its place. The start time guards against a recycled pid.
async fn retire_orphan_runner(record: &SandboxRecord) {
    let Some(runner) = &record.runner else { return };
    let (Some(pid), Some(ticks)) = (runner.pid, runner.start_ticks) else {
        return;
    };
    if crate::process::start_ticks(pid) != Some(ticks) {
        return;
    }
    tracing::info!(sandbox = %record.id, pid, "stopping a runner left over from a previous backend process");
    let gone = async move {
        while crate::process::start_ticks(pid) == Some(ticks) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    crate::process::terminate_group(pid, ORPHAN_GRACE, gone).await;
}
