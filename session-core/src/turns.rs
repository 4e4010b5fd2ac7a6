//! The steps of a turn as state transitions over the [`SessionStore`]: queueing a
//! prompt (and cancelling or editing it while it waits), starting the next one,
//! taking in the runner's hello and events, and finishing, interrupting or aborting
//! the turn, and archiving the session. Each step reads and writes the store synchronously and returns what
//! the caller must do next (send this frame, tell the runner to abort that turn);
//! the events it stored are collected in [`TurnSteps::events`] for the caller to fan
//! out to live streams.
//!
//! The `SessionAgent` builds one [`TurnSteps`] per stretch of synchronous work and
//! keeps only the effects: sockets, fetches, alarms. The same steps run natively over
//! real SQLite in this crate's tests.

use nightshift_protocol::events::{EventBody, SessionEvent, TokenUsage, TurnOutcome};
use nightshift_protocol::runner_link::{LlmConfig, SessionFrame};

use crate::abort::{AbortStep, abort_step, start_abort_clock};
use crate::lifecycle::SandboxState;
use crate::queue::TurnResult;
use crate::session_machine::{Effect, Input, Machine, Observed, Phase, observe};
use crate::store::{SessionRecord, SessionStore, Sql};

mod archive;
mod changes;
mod enqueue;
mod hello;
mod rewind;
mod runner_events;

pub use archive::{ARCHIVED_TURN_REASON, ArchiveStep, archived_refusal};
pub use enqueue::{NewPrompt, QueuedPrompt};
pub use rewind::{RewindPlan, RewindRefusal};
pub use runner_events::TakenEvent;

/// Why a prompt goes back to the queue when its frame could not be sent.
pub const UNSENT_REASON: &str =
    "The prompt could not be sent to the runner; it will run again once a runner is connected.";

/// One stretch of turn steps at one moment over the store.
pub struct TurnSteps<'a, S> {
    store: &'a SessionStore<S>,
    now: i64,
    /// Whether the session's runner is connected and has said hello (the caller
    /// knows its sockets; the store does not).
    runner_connected: bool,
    /// Whether a turn's text deltas are joined once it ends (on unless the
    /// deployment turns it off to measure or debug).
    compact_log: bool,
    /// The events stored by these steps, in order, for the caller to fan out.
    pub events: Vec<SessionEvent>,
}

impl<'a, S: Sql> TurnSteps<'a, S> {
    pub fn new(store: &'a SessionStore<S>, now: i64, runner_connected: bool) -> Self {
        Self {
            store,
            now,
            runner_connected,
            compact_log: true,
            events: Vec::new(),
        }
    }

    /// Whether ended turns are compacted ([`SessionStore::compact_turn`]).
    pub fn compacting(mut self, compact_log: bool) -> Self {
        self.compact_log = compact_log;
        self
    }

    /// Compacts the ended turn `turn_id` when compaction is on. Its reply has been
    /// read already, and no event of it is sent live after this.
    fn compact(&self, turn_id: &str) -> Result<(), S::Error> {
        if self.compact_log {
            self.store.compact_turn(turn_id)?;
        }
        Ok(())
    }

    /// Stores an event written by the `SessionAgent` itself.
    pub fn record_event(
        &mut self,
        turn_id: Option<&str>,
        body: EventBody,
    ) -> Result<SessionEvent, S::Error> {
        let event = self.store.append_event(turn_id, None, body, self.now)?;
        self.events.push(event.clone());
        Ok(event)
    }

    /// What the store says now, as the state machine observes it.
    pub fn observed(&self, record: &SessionRecord) -> Result<Observed, S::Error> {
        let queue = self.store.queue()?;
        Ok(Observed {
            runner: self.runner_connected,
            turn: queue.processing().is_some(),
            queued: u32::try_from(queue.queued_count()).unwrap_or(u32::MAX),
            sandbox_failed: record.sandbox.failure().is_some(),
            archived: record.archived_at.is_some(),
        })
    }

    /// Feeds the state machine what the store says now ([`observe`]) and carries out
    /// the effects that are records: the idle clock starts when it becomes ready, and
    /// a sandbox asked for again forgets the failed request (the `SessionAgent`
    /// then makes it: see [`SandboxWork`]). When the status changed, stores it and a
    /// `status_changed` event. Returns whether it changed.
    pub fn refresh_status(&mut self) -> Result<bool, S::Error> {
        let record = self.store.record()?;
        if !record.initialized {
            return Ok(false);
        }
        let observed = self.observed(&record)?;
        let (machine, effects) = observe(record.machine, &observed);
        self.apply_machine(record, machine, &effects)
    }

    /// Steps the machine with an input the store cannot observe (the idle timer, a
    /// snapshot's answer, a wake request); returns the effects.
    pub fn step_machine(&mut self, input: Input) -> Result<Vec<Effect>, S::Error> {
        let record = self.store.record()?;
        let (machine, effects) = record.machine.step(input);
        self.apply_machine(record, machine, &effects)?;
        // What the step set in motion may be observable at once (a wake with
        // prompts waiting).
        self.refresh_status()?;
        Ok(effects)
    }

    fn apply_machine(
        &mut self,
        mut record: SessionRecord,
        machine: Machine,
        effects: &[Effect],
    ) -> Result<bool, S::Error> {
        for effect in effects {
            match effect {
                Effect::ArmIdleTimer => record.idle_since = Some(self.now),
                Effect::CreateSandbox | Effect::RestoreSandbox
                    if record.sandbox.failure().is_some() =>
                {
                    record.sandbox = SandboxState::NotRequested;
                }
                Effect::DestroySnapshots => record.snapshot = None,
                _ => {}
            }
        }
        if machine.phase != Phase::Ready {
            record.idle_since = None;
        }
        let status = machine.phase.status();
        let changed = status != record.status;
        let moved = machine != record.machine;
        record.machine = machine;
        record.status = status;
        if changed || moved || !effects.is_empty() {
            self.store.save_record(&record)?;
        }
        if changed {
            self.record_event(None, EventBody::StatusChanged { status })?;
        }
        Ok(changed)
    }

    /// Starts the next queued prompt as turn `turn_id` on the runner with `epoch`,
    /// which resolved `llm` for it. Returns the frame to send the runner, or `None`
    /// when nothing may start. If the frame cannot be sent, the caller puts the turn
    /// back with [`interrupt_turn`](Self::interrupt_turn) and [`UNSENT_REASON`].
    pub fn start_next(
        &mut self,
        turn_id: &str,
        epoch: String,
        llm: Option<LlmConfig>,
    ) -> Result<Option<SessionFrame>, S::Error> {
        let record = self.store.record()?;
        let mut queue = self.store.queue()?;
        let Some(prompt) = queue.start_next(turn_id.to_owned(), epoch, self.now) else {
            return Ok(None);
        };
        self.store.save_prompt(&prompt)?;
        let message = prompt.message;
        self.record_event(
            Some(turn_id),
            EventBody::TurnStarted {
                message_id: message.id.clone(),
                content: message.content.clone(),
                attempt: message.attempts,
            },
        )?;
        Ok(Some(SessionFrame::Prompt {
            turn_id: turn_id.to_owned(),
            message_id: message.id,
            content: message.content,
            model: record
                .model
                .clone()
                .or_else(|| llm.as_ref().map(|llm| llm.model.clone())),
            llm,
            agent: record.agent,
            permission_mode: record.permission_mode,
            author: None,
        }))
    }

    /// Ends the processing turn `turn_id`; its reply is the turn's text so far.
    /// Returns false when no prompt was processing that turn (it already ended).
    pub fn finish_turn(
        &mut self,
        turn_id: &str,
        outcome: TurnOutcome,
        error: Option<String>,
        usage: Option<TokenUsage>,
        duration_ms: Option<u64>,
    ) -> Result<bool, S::Error> {
        let reply = self.store.turn_reply(turn_id)?;
        let mut queue = self.store.queue()?;
        let result = TurnResult {
            outcome,
            reply,
            error,
            usage,
            duration_ms,
        };
        let Ok(prompt) = queue.finish_turn(turn_id, result, self.now) else {
            return Ok(false);
        };
        self.store.save_prompt(&prompt)?;
        self.compact(turn_id)?;
        // Whatever the outcome, the files as the turn left them are kept before the
        // next prompt starts (`store::checkpoints`).
        self.store
            .checkpoint_pending(turn_id, &prompt.message.id, self.now)?;
        let mut record = self.store.record()?;
        if record
            .abort_requested
            .as_ref()
            .is_some_and(|abort| abort.turn_id == turn_id)
        {
            record.abort_requested = None;
            self.store.save_record(&record)?;
        }
        self.refresh_status()?;
        Ok(true)
    }

    /// Puts the processing turn `turn_id` back at the front of the queue and records
    /// why.
    pub fn interrupt_turn(&mut self, turn_id: &str, reason: &str) -> Result<(), S::Error> {
        let mut queue = self.store.queue()?;
        let Ok(prompt) = queue.interrupt(turn_id) else {
            return Ok(());
        };
        self.store.save_prompt(&prompt)?;
        self.record_event(
            Some(turn_id),
            EventBody::TurnInterrupted {
                message_id: prompt.message.id,
                reason: reason.to_owned(),
            },
        )?;
        // A prompt that runs again gets a new turn id: this one has ended.
        self.compact(turn_id)?;
        Ok(())
    }

    /// The turn an abort would stop: the processing prompt's, if any.
    pub fn running_turn(&self) -> Result<Option<String>, S::Error> {
        Ok(self
            .store
            .queue()?
            .processing()
            .and_then(|prompt| prompt.message.turn_id.clone()))
    }

    /// The runner was told to abort `turn_id`: starts the clock on its answer (a
    /// second abort of the same turn keeps the first deadline).
    pub fn abort_sent(&mut self, turn_id: &str) -> Result<(), S::Error> {
        let mut record = self.store.record()?;
        if let Some(abort) = start_abort_clock(record.abort_requested.as_ref(), turn_id, self.now) {
            record.abort_requested = Some(abort);
            self.store.save_record(&record)?;
        }
        Ok(())
    }

    /// Ends the processing turn `turn_id` without its runner: an `aborted`
    /// `turn_finished` written by the `SessionAgent`, after an `error` saying why when
    /// there is a reason.
    pub fn end_turn_here(&mut self, turn_id: &str, reason: Option<String>) -> Result<(), S::Error> {
        if let Some(message) = reason.clone() {
            self.record_event(Some(turn_id), EventBody::Error { message })?;
        }
        self.record_event(
            Some(turn_id),
            EventBody::TurnFinished {
                outcome: TurnOutcome::Aborted,
                usage: TokenUsage::default(),
                error: reason.clone(),
                duration_ms: 0,
            },
        )?;
        self.finish_turn(turn_id, TurnOutcome::Aborted, reason, None, None)?;
        Ok(())
    }

    /// The alarm's part in aborts ([`abort_step`]): ends a turn whose runner did not
    /// confirm its abort within `abort_timeout_ms`, or forgets an abort whose turn
    /// ended some other way.
    pub fn settle_abort(&mut self, abort_timeout_ms: i64) -> Result<(), S::Error> {
        let mut record = self.store.record()?;
        let running_turn = self.running_turn()?;
        match abort_step(
            record.abort_requested.as_ref(),
            running_turn.as_deref(),
            self.now,
            abort_timeout_ms,
        ) {
            AbortStep::Nothing => {}
            AbortStep::Clear => {
                record.abort_requested = None;
                self.store.save_record(&record)?;
            }
            AbortStep::EndTurn { turn_id, reason } => {
                self.end_turn_here(&turn_id, Some(reason))?;
            }
        }
        Ok(())
    }
}
