//! Taking in one new runner event (one that
//! [`classify_runner_event`](crate::event_log::classify_runner_event) accepted):
//! storing it under its `(epoch, local_seq)`, moving the epoch's high-water mark, and
//! finishing the turn when the event says it finished.

use nightshift_protocol::events::EventBody;

use super::TurnSteps;
use crate::store::Sql;

/// What taking in a runner event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakenEvent {
    /// The event was stored in the log.
    pub stored: bool,
    /// The event was of a kind only the `SessionAgent` writes: taken in (numbering
    /// goes on) but not stored.
    pub refused_kind: bool,
    /// The event finished its turn, so the queue may move on (dispatch, publish).
    pub finished_turn: bool,
}

impl<S: Sql> TurnSteps<'_, S> {
    /// Takes in the runner's event `local_seq` of `epoch` for turn `turn_id`. The
    /// caller has classified it as new; this acknowledges it (the caller then sends
    /// the `ack` for `local_seq`).
    pub fn take_runner_event(
        &mut self,
        turn_id: &str,
        epoch: &str,
        local_seq: u64,
        event: EventBody,
    ) -> Result<TakenEvent, S::Error> {
        let finished = match &event {
            EventBody::TurnFinished {
                outcome,
                error,
                usage,
                duration_ms,
            } => Some((*outcome, error.clone(), *usage, *duration_ms)),
            _ => None,
        };
        // The SessionAgent may have ended this turn itself (its abort went
        // unanswered); a turn has exactly one `turn_finished`.
        let already_ended = finished.is_some() && self.store.turn_finished(turn_id)?;
        let stored = !already_ended && event.is_from_runner();
        if stored {
            let stored_event = self.store.append_event(
                Some(turn_id),
                Some((epoch, local_seq)),
                event,
                self.now,
            )?;
            self.events.push(stored_event);
        }
        self.store.set_epoch_acked(epoch, local_seq)?;
        let mut finished_turn = false;
        if let Some((outcome, error, usage, duration_ms)) = finished
            && !already_ended
        {
            finished_turn = self.finish_turn(
                turn_id,
                outcome,
                error,
                Some(usage),
                (duration_ms > 0).then_some(duration_ms),
            )?;
        }
        Ok(TakenEvent {
            stored,
            refused_kind: !already_ended && !stored,
            finished_turn,
        })
    }
}
