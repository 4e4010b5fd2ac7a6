//! Turns and the story the event log tells about them: recording events (and fanning
//! them out to live streams), re-deriving the session status, dispatching the next
//! prompt to the runner, and finishing or interrupting a turn.
//!
//! Everything here is synchronous except [`SessionAgent::dispatch`], which first asks
//! `llm_config` for the turn's LLM (by the user who sent the prompt about to start,
//! else the session owner) and only then reads and changes state, and ends by setting
//! the alarm for a collect window that holds the queue.

use nightshift_protocol::events::{EventBody, SessionEvent, TokenUsage, TurnOutcome};
use nightshift_protocol::runner_link::{LlmConfig, SessionFrame};
use nightshift_session::event_log::sse_frame;
use nightshift_session::lifecycle::{SessionFacts, derive_status};
use nightshift_session::queue::{PromptQueue, TurnResult};
use worker::Result;

use super::SessionAgent;
use super::storage::SessionRecord;
use crate::{clock, ids, llm_config};

/// How often a dispatch resolves the LLM again because another user's prompt moved
/// to the front of the queue while it was resolving; after that it gives up until
/// the next dispatch.
const MAX_LLM_RESOLVES: usize = 4;

/// Why a prompt goes back to the queue when its frame could not be sent.
const UNSENT_REASON: &str =
    "The prompt could not be sent to the runner; it will run again once a runner is connected.";

impl SessionAgent {
    /// Stores an event written by the `SessionAgent` itself and sends it to every
    /// live stream.
    pub(super) fn record_event(
        &self,
        turn_id: Option<&str>,
        body: EventBody,
    ) -> Result<SessionEvent> {
        let event = self
            .store
            .append_event(turn_id, None, body, clock::now_ms())?;
        self.broadcast(&event);
        Ok(event)
    }

    /// Stores a runner's event (numbered `local_seq` in `epoch`) and sends it on.
    pub(super) fn record_runner_event(
        &self,
        turn_id: &str,
        epoch: &str,
        local_seq: u64,
        body: EventBody,
    ) -> Result<SessionEvent> {
        let event = self.store.append_event(
            Some(turn_id),
            Some((epoch, local_seq)),
            body,
            clock::now_ms(),
        )?;
        self.broadcast(&event);
        Ok(event)
    }

    fn broadcast(&self, event: &SessionEvent) {
        match sse_frame(event) {
            Ok(frame) => self.subscribers.broadcast_event(event.seq, &frame),
            Err(error) => {
                worker::console_error!("event {} could not be encoded: {error}", event.seq)
            }
        }
    }

    /// The facts the status is derived from.
    pub(super) fn facts(&self, record: &SessionRecord, queue: &PromptQueue) -> SessionFacts {
        SessionFacts {
            sandbox: record.sandbox.clone(),
            runner_connected: self.current_runner(record).is_some(),
            runner_ever_connected: record.runner_ever_connected,
            turn_processing: queue.processing().is_some(),
        }
    }

    /// Re-derives the status; when it changed, stores it and a `status_changed`
    /// event. Returns whether it changed.
    pub(super) fn refresh_status(&self) -> Result<bool> {
        let mut record = self.store.record()?;
        if !record.initialized {
            return Ok(false);
        }
        let queue = self.store.queue()?;
        let status = derive_status(&self.facts(&record, &queue));
        if status == record.status {
            return Ok(false);
        }
        record.status = status;
        self.store.save_record(&record)?;
        self.record_event(None, EventBody::StatusChanged { status })?;
        Ok(true)
    }

    /// Starts the next queued prompt when a runner is ready and nothing is running,
    /// then sets the alarm for any deadline still ahead.
    pub(super) async fn dispatch(&self) -> Result<()> {
        self.dispatch_now().await?;
        if let Err(error) = self.schedule_alarm().await {
            worker::console_warn!("setting the alarm failed: {}", error.message);
        }
        Ok(())
    }

    async fn dispatch_now(&self) -> Result<()> {
        // The turn uses the LLM key of whoever sent the prompt about to start. Resolving
        // awaits, so the queue is read again afterwards; when another sender's prompt
        // is at the front by then, the LLM is resolved again for them.
        let mut resolved: Option<(String, Option<LlmConfig>)> = None;
        let mut attempts = 0;
        let llm = loop {
            let record = self.store.record()?;
            if self.current_runner(&record).is_none() {
                return Ok(());
            }
            let queue = self.store.queue()?;
            let Some(next) = queue.next_to_dispatch(clock::now_ms()) else {
                return Ok(());
            };
            let sender = next
                .message
                .sent_by
                .clone()
                .unwrap_or_else(|| record.owner_id.clone());
            if let Some((user, llm)) = resolved.take()
                && user == sender
            {
                break llm;
            }
            if attempts == MAX_LLM_RESOLVES {
                worker::console_warn!("the next prompt's sender kept changing; not dispatching");
                return Ok(());
            }
            attempts += 1;
            let llm = llm_config::resolve_model(&self.env, &sender, record.model.as_deref()).await;
            resolved = Some((sender, llm));
        };

        // Read again: other events may have been handled while the LLM was resolved.
        let record = self.store.record()?;
        let Some((socket, attachment)) = self.current_runner(&record) else {
            return Ok(());
        };
        let Some(epoch) = attachment.epoch else {
            return Ok(());
        };
        let mut queue = self.store.queue()?;
        let turn_id = ids::new_id()?;
        let Some(prompt) = queue.start_next(turn_id.clone(), epoch, clock::now_ms()) else {
            return Ok(());
        };
        self.store.save_prompt(&prompt)?;
        let message = prompt.message;
        self.record_event(
            Some(&turn_id),
            EventBody::TurnStarted {
                message_id: message.id.clone(),
                content: message.content.clone(),
                attempt: message.attempts,
            },
        )?;
        let frame = SessionFrame::Prompt {
            turn_id: turn_id.clone(),
            message_id: message.id,
            content: message.content,
            model: record
                .model
                .clone()
                .or_else(|| llm.as_ref().map(|llm| llm.model.clone())),
            llm,
            agent: record.agent,
            permission_mode: record.permission_mode,
        };
        let source = match &frame {
            SessionFrame::Prompt { llm: Some(llm), .. } => Some(llm.clone()),
            _ => None,
        };
        if let Err(error) = socket.send(&frame) {
            worker::console_warn!("sending turn {turn_id} failed: {error}");
            self.interrupt_turn(&turn_id, UNSENT_REASON)?;
        }
        self.refresh_status()?;
        if let Some(llm) = source {
            let (env, session_id) = (self.env.clone(), record.session_id.clone());
            self.state.wait_until(async move {
                llm_config::record_source(env, session_id, &llm).await;
            });
        }
        Ok(())
    }

    /// Ends the processing turn `turn_id`; its reply is the turn's text so far.
    /// Returns false when no prompt was processing that turn (it already ended).
    pub(super) fn finish_turn(
        &self,
        turn_id: &str,
        outcome: TurnOutcome,
        error: Option<String>,
        usage: Option<TokenUsage>,
        duration_ms: Option<u64>,
    ) -> Result<bool> {
        let reply = self.store.turn_reply(turn_id)?;
        let mut queue = self.store.queue()?;
        let result = TurnResult {
            outcome,
            reply,
            error,
            usage,
            duration_ms,
        };
        let Ok(prompt) = queue.finish_turn(turn_id, result, clock::now_ms()) else {
            return Ok(false);
        };
        self.store.save_prompt(&prompt)?;
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
    pub(super) fn interrupt_turn(&self, turn_id: &str, reason: &str) -> Result<()> {
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
        Ok(())
    }
}
