//! Agents: what runs a turn. [`BuiltinAgent`] is Nightshift's own loop (LLM + tools);
//! other agents (an OpenCode adapter, for one) implement the same [`Agent`] trait and
//! emit the same events.
//!
//! An agent streams what it does through [`TurnEvents`] and returns how the turn
//! ended; it does not emit `turn_finished` itself: the turn controller
//! ([`crate::turns`]) does, exactly once per turn, whatever the agent did.

mod builtin;
mod prompt;

use async_trait::async_trait;
use nightshift_protocol::events::{EventBody, TokenUsage, TurnOutcome};
use nightshift_protocol::runner_link::LlmConfig;
use tokio_util::sync::CancellationToken;

pub use builtin::{BuiltinAgent, MAX_STEPS};

use crate::link::EventQueue;

/// One prompt to work on.
#[derive(Debug, Clone)]
pub struct TurnInput {
    pub turn_id: String,
    pub message_id: String,
    pub content: String,
    pub llm: LlmConfig,
}

/// How a turn ended, reported by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnEnd {
    pub outcome: TurnOutcome,
    /// Tokens of every LLM call of the turn.
    pub usage: TokenUsage,
    /// Why it failed, for people (shown in the session).
    pub error: Option<String>,
}

impl TurnEnd {
    pub fn done(usage: TokenUsage) -> TurnEnd {
        TurnEnd {
            outcome: TurnOutcome::Done,
            usage,
            error: None,
        }
    }

    pub fn aborted(usage: TokenUsage) -> TurnEnd {
        TurnEnd {
            outcome: TurnOutcome::Aborted,
            usage,
            error: None,
        }
    }

    pub fn failed(usage: TokenUsage, error: impl Into<String>) -> TurnEnd {
        TurnEnd {
            outcome: TurnOutcome::Failed,
            usage,
            error: Some(error.into()),
        }
    }
}

#[async_trait]
pub trait Agent: Send {
    /// Works on one prompt until the answer is complete, it fails, or `cancel` fires
    /// (then it stops promptly, killing any running command, and returns an aborted
    /// end). The agent may keep state, such as the conversation, across turns.
    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) -> TurnEnd;
}

/// Where an agent sends the events of one turn.
#[derive(Clone)]
pub struct TurnEvents {
    queue: EventQueue,
    turn_id: String,
}

impl TurnEvents {
    pub fn new(queue: EventQueue, turn_id: impl Into<String>) -> TurnEvents {
        TurnEvents {
            queue,
            turn_id: turn_id.into(),
        }
    }

    pub fn turn_id(&self) -> &str {
        &self.turn_id
    }

    /// Queues an event for delivery; waits only while the outbox is full.
    pub async fn emit(&self, event: EventBody) {
        self.queue.push(&self.turn_id, event).await;
    }
}
