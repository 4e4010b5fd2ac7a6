//! The events a browser receives over SSE.
//!
//! `GET /api/sessions/{id}/events` streams [`SessionEvent`]s: SSE `id:` is the event's
//! per-session `seq` and `data:` its JSON. `GET /api/events` streams
//! [`SessionListEvent`]s for the sessions list. Neither uses SSE `event:` names, so a
//! browser's `EventSource.onmessage` sees everything; the JSON's `type` tells kinds
//! apart.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{Session, SessionStatus};

/// Tokens an LLM reported for one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl TokenUsage {
    pub fn add(&mut self, other: TokenUsage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    Done,
    Failed,
    Aborted,
}

/// What happened. The first group comes from the runner (the agent's work); the
/// second is written by the `SessionAgent` itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    // --- written by the runner -------------------------------------------------
    /// A piece of the agent's reply text, as the LLM generated it.
    TextDelta { text: String },
    /// The agent started a tool call.
    ToolCallStarted {
        call_id: String,
        tool: String,
        args: Value,
    },
    /// A tool call finished. `output` is cut at
    /// [`crate::limits::MAX_TOOL_OUTPUT_BYTES`]; `truncated_bytes` says how much was cut.
    ToolCallFinished {
        call_id: String,
        output: String,
        is_error: bool,
        #[serde(default)]
        truncated_bytes: u64,
    },
    /// Something went wrong that the user should see (a missing LLM configuration,
    /// an LLM error). A turn that cannot go on also ends with `turn_finished`.
    Error { message: String },
    /// The turn ended. Always the last event of a turn from the runner.
    TurnFinished {
        outcome: TurnOutcome,
        #[serde(default)]
        usage: TokenUsage,
        #[serde(default)]
        error: Option<String>,
    },

    // --- written by the SessionAgent ------------------------------------------
    /// A prompt was accepted into the queue.
    PromptQueued {
        message_id: String,
        content: String,
        position: u32,
    },
    /// A queued prompt was cancelled before it ran.
    PromptCancelled { message_id: String },
    /// A turn started for a prompt.
    TurnStarted {
        message_id: String,
        content: String,
        attempt: u32,
    },
    /// The runner running this turn went away; the prompt is back at the front of
    /// the queue and runs again once a runner is back.
    TurnInterrupted { message_id: String, reason: String },
    /// The session's status changed.
    StatusChanged { status: SessionStatus },
}

impl EventBody {
    /// The kinds a runner may send; the `SessionAgent` refuses anything else from it.
    pub fn is_from_runner(&self) -> bool {
        matches!(
            self,
            EventBody::TextDelta { .. }
                | EventBody::ToolCallStarted { .. }
                | EventBody::ToolCallFinished { .. }
                | EventBody::Error { .. }
                | EventBody::TurnFinished { .. }
        )
    }
}

/// One stored event of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Per-session sequence number: 1, 2, 3, ... with no gaps, assigned when the
    /// event is first stored and never changed.
    pub seq: u64,
    /// The turn this event belongs to, if any.
    pub turn_id: Option<String>,
    /// When it was stored (ms since the epoch).
    pub at: i64,
    #[serde(flatten)]
    pub body: EventBody,
}

/// A change to the sessions list, on `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionListEvent {
    SessionCreated {
        session: Session,
    },
    SessionStatusChanged {
        session_id: String,
        status: SessionStatus,
    },
    SessionTitleChanged {
        session_id: String,
        title: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_event_is_flat_json_with_a_type() {
        let event = SessionEvent {
            seq: 7,
            turn_id: Some("t1".into()),
            at: 1,
            body: EventBody::TextDelta { text: "hi".into() },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"seq": 7, "turn_id": "t1", "at": 1, "type": "text_delta", "text": "hi"})
        );
        let back: SessionEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn only_agent_kinds_are_accepted_from_a_runner() {
        assert!(
            EventBody::TextDelta {
                text: String::new()
            }
            .is_from_runner()
        );
        assert!(
            !EventBody::StatusChanged {
                status: SessionStatus::Idle
            }
            .is_from_runner()
        );
        assert!(
            !EventBody::TurnStarted {
                message_id: "m".into(),
                content: String::new(),
                attempt: 1
            }
            .is_from_runner()
        );
    }
}
