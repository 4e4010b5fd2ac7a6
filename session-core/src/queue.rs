//! The prompt queue of one session: which prompt runs next, and how each moves
//! between `queued`, `processing` and its final state.
//!
//! [`PromptQueue`] is a plain in-memory value. The `SessionAgent` loads it from its
//! storage, applies one operation and writes back the prompt the operation returns;
//! nothing here knows about storage, sockets or clocks (times are passed in).
//!
//! Rules:
//! - At most one prompt is `processing` at a time.
//! - Queued prompts run in queue order; a new prompt goes to the back, an interrupted
//!   one goes back to the front.
//! - Queue modes ([`QueueMode`]) say where a new prompt goes: `followup` to the back;
//!   `steer` to the front (the caller aborts the running turn, so it runs next);
//!   `collect` into the newest queued `collect` prompt of the same sender whose
//!   collect window is still open (the contents are joined), else to the back with a
//!   window of its own; prompts of different people are never merged, since a prompt
//!   runs on the LLM key of whoever wrote it. A
//!   prompt whose window is open is not started until the window closes, so prompts
//!   sent in quick succession become one turn.
//! - Only a queued prompt can be cancelled or edited; an edited prompt's text is its
//!   editor's, so it becomes theirs (`sent_by`).
//! - A prompt's position is the number of queued prompts ahead of it.

use nightshift_protocol::api::{Message, MessageState, QueueMode, UsageTotals};
use nightshift_protocol::events::{TokenUsage, TurnOutcome};
use serde::{Deserialize, Serialize};

/// What separates the contents of prompts merged by `collect`.
pub const COLLECT_SEPARATOR: &str = "\n\n";

/// A prompt as stored: the public [`Message`] plus what only the queue needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// The message as clients see it; `position` is not kept here but computed by
    /// [`PromptQueue::message`], since it changes whenever a prompt ahead moves.
    pub message: Message,
    /// Sort key among queued prompts: lower runs first.
    pub queue_order: i64,
    /// The epoch of the runner a processing prompt was sent to; a runner that says
    /// hello with another epoch did not inherit the turn.
    pub runner_epoch: Option<String>,
    /// For a queued `collect` prompt: until when (ms) later `collect` prompts are
    /// merged into it. It does not start before then.
    #[serde(default)]
    pub collect_until: Option<i64>,
}

/// What became of a prompt given to [`PromptQueue::enqueue_with_mode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new prompt in the queue, `position` prompts from the front.
    Added { prompt: Prompt, position: u32 },
    /// Merged (`collect`) into the queued prompt `prompt`, which now holds both
    /// contents; `merged_id` is the id the new prompt would have had.
    Merged {
        prompt: Prompt,
        merged_id: String,
        position: u32,
    },
}

impl Enqueued {
    /// The prompt that holds the new content.
    pub fn prompt(&self) -> &Prompt {
        match self {
            Enqueued::Added { prompt, .. } | Enqueued::Merged { prompt, .. } => prompt,
        }
    }

    pub fn position(&self) -> u32 {
        match self {
            Enqueued::Added { position, .. } | Enqueued::Merged { position, .. } => *position,
        }
    }
}

/// How a turn ended, as the runner reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnResult {
    pub outcome: TurnOutcome,
    pub reply: Option<String>,
    pub error: Option<String>,
    pub usage: Option<TokenUsage>,
    pub duration_ms: Option<u64>,
}

/// Why a queue operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("there is no prompt with id {0}")]
    NotFound(String),
    #[error("prompt {id} is {state}; only a queued prompt can be changed", state = .state.as_str())]
    NotQueued { id: String, state: MessageState },
    #[error("no prompt is processing turn {0}")]
    NoSuchTurn(String),
}

/// The prompts of one session, in the order they were created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptQueue {
    prompts: Vec<Prompt>,
}

impl PromptQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the queue from stored prompts, which must be in creation order.
    pub fn from_prompts(prompts: Vec<Prompt>) -> Self {
        Self { prompts }
    }

    pub fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    pub fn get(&self, id: &str) -> Option<&Prompt> {
        self.prompts.iter().find(|p| p.message.id == id)
    }

    /// How many prompts wait to run.
    pub fn queued_count(&self) -> usize {
        self.prompts
            .iter()
            .filter(|p| p.message.state == MessageState::Queued)
            .count()
    }

    /// Whether a prompt in `mode` from `sent_by` fits under a cap of `max_queued`
    /// waiting prompts: it does when it would merge into an open `collect` prompt
    /// (adding nothing), or when fewer than `max_queued` prompts wait.
    pub fn admits(
        &self,
        mode: QueueMode,
        sent_by: Option<&str>,
        now: i64,
        max_queued: usize,
    ) -> bool {
        (mode == QueueMode::Collect && self.open_collect(now, sent_by).is_some())
            || self.queued_count() < max_queued
    }

    /// Adds a `followup` prompt at the back of the queue and returns it with its
    /// position.
    pub fn enqueue(&mut self, id: String, content: String, now: i64) -> (Prompt, u32) {
        match self.enqueue_with_mode(id, content, QueueMode::Followup, now, 0) {
            Enqueued::Added { prompt, position }
            | Enqueued::Merged {
                prompt, position, ..
            } => (prompt, position),
        }
    }

    /// Adds a prompt where `mode` puts it (see the module rules). `collect_window_ms`
    /// is how long a `collect` prompt stays open for more.
    pub fn enqueue_with_mode(
        &mut self,
        id: String,
        content: String,
        mode: QueueMode,
        now: i64,
        collect_window_ms: i64,
    ) -> Enqueued {
        self.enqueue_sent_by(id, content, mode, None, now, collect_window_ms)
    }

    /// [`enqueue_with_mode`](Self::enqueue_with_mode) for a prompt sent by the user
    /// `sent_by`. A `collect` prompt merges only into an open `collect` prompt of the
    /// same sender; any other prompt records its own.
    pub fn enqueue_sent_by(
        &mut self,
        id: String,
        content: String,
        mode: QueueMode,
        sent_by: Option<String>,
        now: i64,
        collect_window_ms: i64,
    ) -> Enqueued {
        if mode == QueueMode::Collect
            && let Some(open) = self.open_collect(now, sent_by.as_deref())
        {
            let target = open.message.id.clone();
            if let Some(prompt) = self.find_mut(&target) {
                prompt.message.content.push_str(COLLECT_SEPARATOR);
                prompt.message.content.push_str(&content);
                prompt.collect_until = Some(now + collect_window_ms);
                let prompt = prompt.clone();
                let position = self.position(&target).unwrap_or(0);
                return Enqueued::Merged {
                    prompt,
                    merged_id: id,
                    position,
                };
            }
        }
        let queue_order = match mode {
            QueueMode::Steer => {
                self.prompts
                    .iter()
                    .map(|p| p.queue_order)
                    .min()
                    .unwrap_or(0)
                    - 1
            }
            QueueMode::Followup | QueueMode::Collect => {
                self.prompts
                    .iter()
                    .map(|p| p.queue_order)
                    .max()
                    .unwrap_or(0)
                    + 1
            }
        };
        let prompt = Prompt {
            message: Message {
                id,
                content,
                state: MessageState::Queued,
                position: None,
                turn_id: None,
                attempts: 0,
                reply: None,
                error: None,
                created_at: now,
                started_at: None,
                finished_at: None,
                mode,
                usage: None,
                duration_ms: None,
                sent_by,
            },
            queue_order,
            runner_epoch: None,
            collect_until: (mode == QueueMode::Collect).then_some(now + collect_window_ms),
        };
        self.prompts.push(prompt.clone());
        let position = self.position(&prompt.message.id).unwrap_or(0);
        Enqueued::Added { prompt, position }
    }

    /// The newest queued `collect` prompt of `sent_by` whose window is open at `now`.
    fn open_collect(&self, now: i64, sent_by: Option<&str>) -> Option<&Prompt> {
        self.prompts.iter().rev().find(|p| {
            p.message.state == MessageState::Queued
                && p.message.mode == QueueMode::Collect
                && p.message.sent_by.as_deref() == sent_by
                && p.collect_until.is_some_and(|until| now < until)
        })
    }

    /// When the next prompt's collect window closes, if the queue waits for one.
    pub fn collect_deadline(&self, now: i64) -> Option<i64> {
        let next = self.queued_in_order().into_iter().next()?;
        next.collect_until.filter(|until| now < *until)
    }

    /// The number of queued prompts ahead of `id`, while it is queued.
    pub fn position(&self, id: &str) -> Option<u32> {
        let index = self
            .queued_in_order()
            .iter()
            .position(|p| p.message.id == id)?;
        u32::try_from(index).ok()
    }

    /// The prompt being processed, if any.
    pub fn processing(&self) -> Option<&Prompt> {
        self.prompts
            .iter()
            .find(|p| p.message.state == MessageState::Processing)
    }

    /// The prompt that runs next at `now`, if nothing is processing, something is
    /// queued, and the front prompt is not still collecting.
    pub fn next_to_dispatch(&self, now: i64) -> Option<&Prompt> {
        if self.processing().is_some() {
            return None;
        }
        let next = self.queued_in_order().into_iter().next()?;
        match next.collect_until {
            Some(until) if now < until => None,
            _ => Some(next),
        }
    }

    /// Starts the next prompt as turn `turn_id` on the runner with `runner_epoch`.
    /// Returns `None` when a prompt is already processing, nothing is queued, or the
    /// front prompt's collect window is still open.
    pub fn start_next(
        &mut self,
        turn_id: String,
        runner_epoch: String,
        now: i64,
    ) -> Option<Prompt> {
        let id = self.next_to_dispatch(now)?.message.id.clone();
        let prompt = self.find_mut(&id)?;
        prompt.collect_until = None;
        prompt.message.state = MessageState::Processing;
        prompt.message.turn_id = Some(turn_id);
        prompt.message.attempts += 1;
        prompt.message.started_at = Some(now);
        prompt.message.reply = None;
        prompt.message.error = None;
        prompt.runner_epoch = Some(runner_epoch);
        Some(prompt.clone())
    }

    /// Ends the processing turn `turn_id` with its outcome.
    pub fn finish(
        &mut self,
        turn_id: &str,
        outcome: TurnOutcome,
        reply: Option<String>,
        error: Option<String>,
        now: i64,
    ) -> Result<Prompt, QueueError> {
        let result = TurnResult {
            outcome,
            reply,
            error,
            usage: None,
            duration_ms: None,
        };
        self.finish_turn(turn_id, result, now)
    }

    /// Ends the processing turn `turn_id` with everything the runner reported.
    pub fn finish_turn(
        &mut self,
        turn_id: &str,
        result: TurnResult,
        now: i64,
    ) -> Result<Prompt, QueueError> {
        let prompt = self.processing_turn_mut(turn_id)?;
        prompt.message.state = match result.outcome {
            TurnOutcome::Done => MessageState::Done,
            TurnOutcome::Failed => MessageState::Failed,
            TurnOutcome::Aborted => MessageState::Aborted,
        };
        prompt.message.reply = result.reply;
        prompt.message.error = result.error;
        prompt.message.usage = result.usage;
        // The runner measures a turn's time; when it did not say, the queue's own
        // clock is the next best answer.
        prompt.message.duration_ms = result.duration_ms.or_else(|| {
            let started = prompt.message.started_at?;
            u64::try_from(now - started).ok()
        });
        prompt.message.finished_at = Some(now);
        Ok(prompt.clone())
    }

    /// Replaces the content of a queued prompt; the prompt becomes `edited_by`'s
    /// (when known), whose key its turn then uses. Any other state is a conflict.
    pub fn edit(
        &mut self,
        id: &str,
        content: String,
        edited_by: Option<String>,
    ) -> Result<Prompt, QueueError> {
        let prompt = self.queued_mut(id)?;
        prompt.message.content = content;
        if edited_by.is_some() {
            prompt.message.sent_by = edited_by;
        }
        Ok(prompt.clone())
    }

    /// Token usage and time of every finished turn, added up.
    pub fn usage_totals(&self) -> UsageTotals {
        let mut totals = UsageTotals::default();
        for prompt in &self.prompts {
            let finished = matches!(
                prompt.message.state,
                MessageState::Done | MessageState::Failed | MessageState::Aborted
            );
            if !finished {
                continue;
            }
            let usage = prompt.message.usage.unwrap_or_default();
            totals.input_tokens += usage.input_tokens;
            totals.output_tokens += usage.output_tokens;
            totals.duration_ms += prompt.message.duration_ms.unwrap_or(0);
            totals.turns += 1;
        }
        totals
    }

    /// Cancels a queued prompt. Any other state is a conflict.
    pub fn cancel(&mut self, id: &str, now: i64) -> Result<Prompt, QueueError> {
        let prompt = self.queued_mut(id)?;
        prompt.message.state = MessageState::Cancelled;
        prompt.message.finished_at = Some(now);
        prompt.collect_until = None;
        Ok(prompt.clone())
    }

    fn queued_mut(&mut self, id: &str) -> Result<&mut Prompt, QueueError> {
        let prompt = self
            .find_mut(id)
            .ok_or_else(|| QueueError::NotFound(id.to_owned()))?;
        if prompt.message.state != MessageState::Queued {
            return Err(QueueError::NotQueued {
                id: id.to_owned(),
                state: prompt.message.state,
            });
        }
        Ok(prompt)
    }

    /// Puts the processing turn `turn_id` back at the front of the queue, for when the
    /// runner running it went away for good. Its attempt count stays, so the next start
    /// shows it is a retry.
    pub fn interrupt(&mut self, turn_id: &str) -> Result<Prompt, QueueError> {
        let front = self.queued_in_order().first().map(|p| p.queue_order);
        let prompt = self.processing_turn_mut(turn_id)?;
        prompt.message.state = MessageState::Queued;
        prompt.runner_epoch = None;
        if let Some(front) = front {
            prompt.queue_order = prompt.queue_order.min(front - 1);
        }
        Ok(prompt.clone())
    }

    /// Records that the runner with `runner_epoch` now holds the processing turn
    /// `turn_id` (a restarted runner that says it still works on it).
    pub fn adopt(&mut self, turn_id: &str, runner_epoch: String) -> Result<Prompt, QueueError> {
        let prompt = self.processing_turn_mut(turn_id)?;
        prompt.runner_epoch = Some(runner_epoch);
        Ok(prompt.clone())
    }

    /// One message as clients see it, with its current position.
    pub fn message(&self, id: &str) -> Option<Message> {
        let prompt = self.get(id)?;
        Some(self.public(prompt))
    }

    /// Every message, oldest first, with current positions.
    pub fn messages(&self) -> Vec<Message> {
        self.prompts.iter().map(|p| self.public(p)).collect()
    }

    fn public(&self, prompt: &Prompt) -> Message {
        let mut message = prompt.message.clone();
        message.position = match message.state {
            MessageState::Queued => self.position(&message.id),
            _ => None,
        };
        message
    }

    fn queued_in_order(&self) -> Vec<&Prompt> {
        let mut queued: Vec<(usize, &Prompt)> = self
            .prompts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.message.state == MessageState::Queued)
            .collect();
        // Creation order breaks ties so the order is total and stable.
        queued.sort_by_key(|(index, p)| (p.queue_order, *index));
        queued.into_iter().map(|(_, p)| p).collect()
    }

    fn find_mut(&mut self, id: &str) -> Option<&mut Prompt> {
        self.prompts.iter_mut().find(|p| p.message.id == id)
    }

    fn processing_turn_mut(&mut self, turn_id: &str) -> Result<&mut Prompt, QueueError> {
        self.prompts
            .iter_mut()
            .find(|p| {
                p.message.state == MessageState::Processing
                    && p.message.turn_id.as_deref() == Some(turn_id)
            })
            .ok_or_else(|| QueueError::NoSuchTurn(turn_id.to_owned()))
    }
}

#[cfg(test)]
mod tests;
