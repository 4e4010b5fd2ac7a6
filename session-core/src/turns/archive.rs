//! Archiving a session: the step that records it and ends what runs, and the answer
//! a prompt to an archived session gets.
//!
//! Archiving is a fact (`archived_at`), not a goal: the state machine observes it
//! ([`crate::session_machine::observe`]). The step ends a running turn here (its
//! sandbox is about to go), forgets the sandbox and moves the sandbox generation past
//! every runner token issued, so nothing the old sandbox holds can reconnect; the
//! caller closes the link and destroys the sandbox it names, which, for a session
//! asleep, is its snapshot too (the stopped sandbox keeps the files). Queued prompts stay in
//! the queue, readable, for a restore to run.

use super::TurnSteps;
use crate::lifecycle::SandboxState;
use crate::store::{SessionRecord, Sql};

/// Why a turn running when its session was archived ended.
pub const ARCHIVED_TURN_REASON: &str = "The session was archived while this turn ran.";

/// What [`TurnSteps::archive`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveStep {
    /// The session was archived before; nothing changed (archiving is idempotent).
    AlreadyArchived,
    /// Archived now; the caller destroys `sandbox_id` (if one was created) and closes
    /// the runner's link.
    Archived { sandbox_id: Option<String> },
}

impl<S: Sql> TurnSteps<'_, S> {
    /// Archives the session at this step's time (see the module).
    pub fn archive(&mut self) -> Result<ArchiveStep, S::Error> {
        if self.store.record()?.archived_at.is_some() {
            return Ok(ArchiveStep::AlreadyArchived);
        }
        if let Some(turn_id) = self.running_turn()? {
            self.end_turn_here(&turn_id, Some(ARCHIVED_TURN_REASON.to_owned()))?;
        }
        // Read after the turn ended: finishing it wrote the record.
        let mut record = self.store.record()?;
        let sandbox_id = record
            .sandbox
            .sandbox_id()
            .or(record
                .snapshot
                .as_ref()
                .map(|kept| kept.sandbox_id.as_str()))
            .map(str::to_owned);
        record.archived_at = Some(self.now);
        record.sandbox = SandboxState::NotRequested;
        record.sandbox_generation += 1;
        record.runner_connection = None;
        record.abort_requested = None;
        self.store.save_record(&record)?;
        self.runner_connected = false;
        self.refresh_status()?;
        Ok(ArchiveStep::Archived { sandbox_id })
    }
}

/// Why an archived session refuses a prompt, an answer or a panel; `None` when it is
/// not archived.
///
/// This is where a restore will begin once checkpoints are kept (issue 15, item 4):
/// with a checkpoint, the session would be provisioned again from it instead of
/// refusing. Until then nothing is provisioned again.
pub fn archived_refusal(record: &SessionRecord) -> Option<&'static str> {
    record.archived_at.map(|_| {
        "this session is archived: its sandbox was destroyed, and it cannot be resumed \
         because no checkpoint of it is kept; its history stays readable"
    })
}
