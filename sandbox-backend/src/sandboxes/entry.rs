//! One sandbox in memory: its record (behind a short mutex the runner supervisor
//! also updates) and its processes (behind the lifecycle lock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nightshift_protocol::sandbox::SandboxStatus;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::processes::ProcessTable;
use super::record::{RunnerState, SandboxRecord, TOKEN_REJECTED_MESSAGE};
use super::store::{Store, StoreError};
use crate::runner_supervision::{RunnerEvent, RunnerSupervisor};

/// How long a stop waits for killed commands to be reaped.
const EXEC_STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct SandboxEntry {
    pub(super) record: Mutex<SandboxRecord>,
    pub(super) live: tokio::sync::RwLock<Live>,
    pub(super) processes: ProcessTable,
    /// When an exec, a process or a client last did something here.
    last_active: Mutex<Instant>,
    /// Execs running right now (a sandbox is never idle while one runs).
    running_execs: AtomicUsize,
}

/// The processes of a sandbox.
#[derive(Default)]
pub(super) struct Live {
    pub(super) runner: Option<RunnerSupervisor>,
    /// Parent of every exec's cancellation token.
    pub(super) exec_cancel: CancellationToken,
    pub(super) exec_tasks: TaskTracker,
}

impl SandboxEntry {
    pub(super) fn new(record: SandboxRecord) -> SandboxEntry {
        SandboxEntry {
            record: Mutex::new(record),
            live: tokio::sync::RwLock::new(Live::default()),
            processes: ProcessTable::default(),
            last_active: Mutex::new(Instant::now()),
            running_execs: AtomicUsize::new(0),
        }
    }

    pub(super) fn touch(&self) {
        *self
            .last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// How long nothing happened in the sandbox (zero while an exec runs).
    pub(super) fn idle_for(&self) -> Duration {
        if self.running_execs.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }

    pub(super) fn exec_started(&self) {
        self.running_execs.fetch_add(1, Ordering::SeqCst);
        self.touch();
    }

    pub(super) fn exec_ended(&self) {
        self.running_execs.fetch_sub(1, Ordering::SeqCst);
        self.touch();
    }

    pub(super) fn snapshot(&self) -> SandboxRecord {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the record and persists it (a destroyed sandbox has nothing left to
    /// persist to). Returns the new record.
    pub(super) fn update(
        &self,
        store: &Store,
        change: impl FnOnce(&mut SandboxRecord),
    ) -> Result<SandboxRecord, StoreError> {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut record);
        if record.status != SandboxStatus::Destroyed {
            store.save(&record)?;
        }
        Ok(record.clone())
    }

    pub(super) fn observe_runner(&self, store: &Store, event: RunnerEvent) {
        let id = self.snapshot().id;
        match &event {
            RunnerEvent::Down { reason, restart_in } => {
                tracing::warn!(sandbox = %id, %reason, ?restart_in, "runner down");
            }
            RunnerEvent::TokenRejected => {
                tracing::warn!(sandbox = %id, "runner token rejected; runner stays down")
            }
            RunnerEvent::Started { pid, .. } => {
                tracing::info!(sandbox = %id, pid, "runner started")
            }
            RunnerEvent::Stopped => tracing::info!(sandbox = %id, "runner stopped"),
        }
        let saved = self.update(store, |record| {
            let Some(runner) = record.runner.as_mut() else {
                return;
            };
            runner.pid = None;
            runner.start_ticks = None;
            match event {
                RunnerEvent::Started { pid, start_ticks } => {
                    runner.state = RunnerState::Running;
                    runner.pid = Some(pid);
                    runner.start_ticks = start_ticks;
                    runner.starts = runner.starts.saturating_add(1);
                }
                RunnerEvent::Down { .. } => runner.state = RunnerState::Restarting,
                RunnerEvent::TokenRejected => {
                    runner.state = RunnerState::TokenRejected;
                    record.error = Some(TOKEN_REJECTED_MESSAGE.into());
                }
                RunnerEvent::Stopped => runner.state = RunnerState::Stopped,
            }
        });
        if let Err(error) = saved {
            tracing::warn!(sandbox = %id, %error, "cannot record the runner's state");
        }
    }
}

impl Live {
    /// Fresh process bookkeeping for a sandbox that starts again.
    pub(super) fn restart(&mut self) {
        self.exec_cancel = CancellationToken::new();
        self.exec_tasks = TaskTracker::new();
    }
}

/// Kills the runner and every exec'd command of a sandbox, and waits for them.
pub(super) async fn stop_processes(live: &mut Live) {
    if let Some(runner) = live.runner.take() {
        runner.shutdown().await;
    }
    live.exec_cancel.cancel();
    live.exec_tasks.close();
    if tokio::time::timeout(EXEC_STOP_TIMEOUT, live.exec_tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("exec'd commands did not end in time after being killed");
    }
}
