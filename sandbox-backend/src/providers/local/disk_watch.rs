//! Holding a running local sandbox to its disk budget: a task per sandbox measures
//! its workspace and home as its host user, and kills its commands when it goes
//! over; while over, new commands (but `rm`) are refused, and the result of a
//! command that was killed says why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::budget::Budget;
use super::disk::{self, DiskState};
use super::handle::LocalHandle;
use super::host_user::HostUser;
use crate::exec::ExecRun;
use crate::providers::{ProviderError, SandboxSpec};

/// A running sandbox's disk state and the task measuring it.
type DiskWatch = (Arc<DiskState>, tokio::task::JoinHandle<()>);

/// The disk watches of the running sandboxes, by sandbox id.
pub(super) struct DiskWatches {
    budget: Budget,
    /// Who measures (root backends only): the sandbox's files are that user's.
    host_user: Option<HostUser>,
    watches: Mutex<HashMap<String, DiskWatch>>,
}

impl DiskWatches {
    pub(super) fn new(budget: Budget, host_user: Option<HostUser>) -> DiskWatches {
        DiskWatches {
            budget,
            host_user,
            watches: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DiskWatch>> {
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches the running sandbox's disk use: going over budget, or growing while
    /// over it, kills its commands.
    pub(super) fn watch(&self, sandbox: &SandboxSpec, handle: &LocalHandle) {
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
        if let Some((_, old)) = self.lock().insert(sandbox.id.clone(), (state, task)) {
            old.abort();
        }
    }

    /// Stops watching the sandbox (its processes are ending).
    pub(super) fn unwatch(&self, id: &str) {
        if let Some((_, watcher)) = self.lock().remove(id) {
            watcher.abort();
        }
    }

    /// Refuses a command (other than `rm`) while the sandbox is over its disk budget
    /// (measured again first: files may have been deleted since); returns the state
    /// to annotate the command's result with.
    pub(super) async fn check(
        &self,
        sandbox: &SandboxSpec,
        argv: &[String],
    ) -> Result<Option<Arc<DiskState>>, ProviderError> {
        let state = self.lock().get(&sandbox.id).map(|(state, _)| state.clone());
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

    /// Adds "disk budget exceeded" to the result of a command the disk watcher killed.
    pub(super) fn annotate(&self, run: ExecRun, disk: Option<Arc<DiskState>>) -> ExecRun {
        use futures::FutureExt;
        use nightshift_protocol::sandbox::ExecOutput;
        let budget = self.budget.disk_bytes;
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
}
