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
//! - Only a queued prompt can be cancelled.
//! - A prompt's position is the number of queued prompts ahead of it.

use nightshift_protocol::api::{Message, MessageState};
use nightshift_protocol::events::TurnOutcome;
use serde::{Deserialize, Serialize};

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
}

/// Why a queue operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("there is no prompt with id {0}")]
    NotFound(String),
    #[error("prompt {id} is {state}; only a queued prompt can be cancelled", state = .state.as_str())]
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

    /// Adds a prompt at the back of the queue and returns it with its position.
    pub fn enqueue(&mut self, id: String, content: String, now: i64) -> (Prompt, u32) {
        let queue_order = self
            .prompts
            .iter()
            .map(|p| p.queue_order)
            .max()
            .unwrap_or(0)
            + 1;
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
            },
            queue_order,
            runner_epoch: None,
        };
        self.prompts.push(prompt.clone());
        let position = self.position(&prompt.message.id).unwrap_or(0);
        (prompt, position)
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

    /// The prompt that runs next, if nothing is processing and something is queued.
    pub fn next_to_dispatch(&self) -> Option<&Prompt> {
        if self.processing().is_some() {
            return None;
        }
        self.queued_in_order().into_iter().next()
    }

    /// Starts the next prompt as turn `turn_id` on the runner with `runner_epoch`.
    /// Returns `None` when a prompt is already processing or nothing is queued.
    pub fn start_next(
        &mut self,
        turn_id: String,
        runner_epoch: String,
        now: i64,
    ) -> Option<Prompt> {
        let id = self.next_to_dispatch()?.message.id.clone();
        let prompt = self.find_mut(&id)?;
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
        let prompt = self.processing_turn_mut(turn_id)?;
        prompt.message.state = match outcome {
            TurnOutcome::Done => MessageState::Done,
            TurnOutcome::Failed => MessageState::Failed,
            TurnOutcome::Aborted => MessageState::Aborted,
        };
        prompt.message.reply = reply;
        prompt.message.error = error;
        prompt.message.finished_at = Some(now);
        Ok(prompt.clone())
    }

    /// Cancels a queued prompt. Any other state is a conflict.
    pub fn cancel(&mut self, id: &str, now: i64) -> Result<Prompt, QueueError> {
        let prompt = self
            .find_mut(id)
            .ok_or_else(|| QueueError::NotFound(id.to_owned()))?;
        if prompt.message.state != MessageState::Queued {
            return Err(QueueError::NotQueued {
                id: id.to_owned(),
                state: prompt.message.state,
            });
        }
        prompt.message.state = MessageState::Cancelled;
        prompt.message.finished_at = Some(now);
        Ok(prompt.clone())
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
