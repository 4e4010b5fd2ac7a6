//! A runner's `hello` and the turn in progress ([`on_hello`] decides): the same
//! runner process goes on, a new process that still runs the turn adopts it, and a
//! turn whose process is gone goes back to the front of the queue.

use super::TurnSteps;
use crate::runner_link::{HelloDecision, INTERRUPTED_REASON, ProcessingTurn, on_hello};
use crate::store::Sql;

impl<S: Sql> TurnSteps<'_, S> {
    /// Applies a hello from the runner with `epoch` that says it works on
    /// `active_turn`. Returns the turn the runner must be told to abort: one it
    /// still works on that is no longer ours to run (aborted or interrupted
    /// meanwhile).
    pub fn runner_said_hello(
        &mut self,
        epoch: &str,
        active_turn: Option<&str>,
    ) -> Result<Option<String>, S::Error> {
        let mut queue = self.store.queue()?;
        let processing = queue.processing().map(|prompt| ProcessingTurn {
            turn_id: prompt.message.turn_id.as_deref().unwrap_or_default(),
            runner_epoch: prompt.runner_epoch.as_deref(),
        });
        let processing_turn = processing.map(|turn| turn.turn_id.to_owned());
        match on_hello(processing, epoch, active_turn) {
            HelloDecision::Interrupt { turn_id } => {
                self.interrupt_turn(&turn_id, INTERRUPTED_REASON)?;
            }
            HelloDecision::Adopt { turn_id } => {
                if let Ok(prompt) = queue.adopt(&turn_id, epoch.to_owned()) {
                    self.store.save_prompt(&prompt)?;
                }
            }
            HelloDecision::Continue | HelloDecision::NothingRunning => {}
        }
        Ok(active_turn
            .filter(|active| processing_turn.as_deref() != Some(*active))
            .map(str::to_owned))
    }
}
