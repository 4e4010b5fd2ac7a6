//! The events a browser receives over SSE.
//!
//! `GET /api/sessions/{id}/events` streams [`SessionEvent`]s: SSE `id:` is the event's
//! per-session `seq` and `data:` its JSON. `GET /api/events` streams
//! [`SessionListEvent`]s for the sessions list. Neither uses SSE `event:` names, so a
//! browser's `EventSource.onmessage` sees everything; the JSON's `type` tells kinds
//! apart.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::agent::TokenUsage;
use crate::agent::{AgentKind, PermissionMode};
use crate::api::{Session, SessionStatus};

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    Done,
    Failed,
    Aborted,
}

/// What a question from the agent asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// A question in the agent's own words (the built-in `ask_user` tool, OpenCode's
    /// question tool); the answer is free text or one of `options`.
    #[default]
    Question,
    /// A request for permission to do something; the answer is one of `options`
    /// ([`PERMISSION_ALLOW`], [`PERMISSION_ALWAYS`], [`PERMISSION_DENY`]).
    Permission,
}

/// Answer to a permission question: allow this once.
pub const PERMISSION_ALLOW: &str = "allow";
/// Answer to a permission question: allow this and requests like it for the rest of
/// the session.
pub const PERMISSION_ALWAYS: &str = "always";
/// Answer to a permission question: refuse it.
pub const PERMISSION_DENY: &str = "deny";

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
    /// An image the agent made (a browser screenshot), for everyone watching. The
    /// runner uploaded it first (`POST /api/sessions/{id}/artifacts`); the event holds
    /// only the reference, served at `GET /api/sessions/{id}/artifacts/{artifact}`.
    Image {
        /// The tool call that made it, when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        /// The artifact id the upload answered (see [`crate::artifacts`]).
        artifact: String,
        width: u32,
        height: u32,
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
        /// How long the turn ran, as the runner measured it.
        #[serde(default)]
        duration_ms: u64,
    },
    /// One LLM call of the turn ended and used these tokens; sent as each call ends,
    /// so spend caps are checked at every step (`turn_finished` still carries the
    /// turn's total).
    StepUsage { usage: TokenUsage },
    /// A call to the LLM failed in a way worth retrying (rate limit, overload,
    /// connection); the runner waits `delay_ms` and makes attempt `attempt + 1`.
    Retrying {
        /// The attempt that failed, from 1.
        attempt: u32,
        /// How many attempts are made in all; 0 when the agent does not say
        /// (OpenCode's own retries).
        max_attempts: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The agent asked the user something; the turn waits for
    /// `POST /api/sessions/{id}/questions/{question_id}/answer` or `timeout_ms`.
    QuestionAsked {
        question_id: String,
        kind: QuestionKind,
        text: String,
        #[serde(default)]
        options: Vec<String>,
        timeout_ms: u64,
    },
    /// Nobody answered in time: the turn goes on without an answer (a permission
    /// request is denied).
    QuestionExpired { question_id: String },

    // --- written by the SessionAgent ------------------------------------------
    /// A whole piece of the agent's reply: the turn's `text_delta`s from `seq`
    /// `from_seq` up to this event's `seq`, joined once the turn ended (the log is
    /// compacted: those deltas are no longer stored, and this event takes the last
    /// one's `seq`). A reader that has already applied some of those deltas (it
    /// reconnected with a `Last-Event-ID` inside the run) replaces the text it built
    /// from `from_seq` on with `text`; any other reader treats it as one delta.
    Text { text: String, from_seq: u64 },
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
    /// A question was answered (the runner has been sent the answer).
    QuestionAnswered {
        question_id: String,
        answer: String,
        #[serde(default)]
        answered_by: Option<String>,
    },
    /// A queued prompt's content was replaced before it ran.
    PromptEdited { message_id: String, content: String },
    /// Prompts sent in `collect` mode were merged into `message_id`, whose content is
    /// now `content`; the `merged_ids` prompts will not run on their own.
    PromptsMerged {
        message_id: String,
        merged_ids: Vec<String>,
        content: String,
    },
    /// The session's agent, model or permission mode changed (from the next turn on).
    SessionUpdated {
        agent: AgentKind,
        model: Option<String>,
        permission_mode: PermissionMode,
    },
    /// The runner reported a new state of the session's repository (after its clone,
    /// commands, edits, pushes). The latest is also `GET /api/sessions/{id}/repo`'s.
    RepoUpdated { state: crate::repo::RepoState },
    /// The session's pull request was opened or changed (state, checks, title).
    PullRequestUpdated {
        pull_request: crate::repo::PullRequestInfo,
    },
    /// A GitHub credential the session needs is revoked or expired beyond refresh:
    /// `user_id` must reconnect GitHub (`connect_url`) before git can push or fetch
    /// as them again. Nothing waits on it: git's request failed at once.
    GithubReconnectRequired {
        user_id: String,
        message: String,
        connect_url: String,
    },
    /// A spend cap was reached: the running turn is stopped (it ends with
    /// `turn_finished` aborted) and new prompts are refused with
    /// `spend_cap_reached` until an admin raises the cap or the period ends.
    CapReached {
        cap: crate::usage::CapHit,
        message: String,
    },
    /// The sandbox's files were kept as they were when the event's turn ended, so
    /// the session can be rewound or forked to that turn. A checkpoint that could not
    /// be taken is an `error` event of the turn instead.
    CheckpointSaved {
        checkpoint_id: String,
        files: u64,
        bytes_added: u64,
        ms: u64,
    },
    /// The session went back to the event's turn: its files and conversation are
    /// that turn's again, and `rewound_turns` (those after it) stay in the history
    /// marked rewound (the agent no longer sees them).
    Rewound { rewound_turns: Vec<String> },
}

impl EventBody {
    /// The kinds a runner may send; the `SessionAgent` refuses anything else from it.
    pub fn is_from_runner(&self) -> bool {
        matches!(
            self,
            EventBody::TextDelta { .. }
                | EventBody::ToolCallStarted { .. }
                | EventBody::ToolCallFinished { .. }
                | EventBody::Image { .. }
                | EventBody::Error { .. }
                | EventBody::TurnFinished { .. }
                | EventBody::Retrying { .. }
                | EventBody::StepUsage { .. }
                | EventBody::QuestionAsked { .. }
                | EventBody::QuestionExpired { .. }
        )
    }
}

/// One stored event of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Per-session sequence number, increasing, assigned when the event is first
    /// stored and never changed. The log is gapless until a turn ends; compacting
    /// that turn then removes the `seq`s of the text deltas joined into a
    /// [`EventBody::Text`] (which keeps the run's last `seq`).
    pub seq: u64,
    /// The turn this event belongs to, if any.
    pub turn_id: Option<String>,
    /// When it was stored (ms since the epoch).
    pub at: i64,
    #[serde(flatten)]
    pub body: EventBody,
}

/// A change to the sessions list, on `GET /api/events`.
// `SessionCreated` carries a whole `Session` (larger since it holds its repository):
// each event is built, serialized and dropped at once, never kept in bulk, so the
// size difference costs nothing that boxing every construction site would save.
#[allow(clippy::large_enum_variant)]
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
    /// The session was deleted (with its sandbox, prompts and events).
    SessionDeleted {
        session_id: String,
    },
    /// The user's inbox changed: a new `entry` (`None` when entries were only
    /// marked read), and how many are unread now. Sent only to the streams of the
    /// inbox's own user.
    InboxChanged {
        #[serde(default)]
        entry: Option<crate::inbox::InboxEntry>,
        unread: u32,
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
        assert!(
            EventBody::QuestionExpired {
                question_id: "q".into()
            }
            .is_from_runner()
        );
        assert!(
            !EventBody::QuestionAnswered {
                question_id: "q".into(),
                answer: "a".into(),
                answered_by: None
            }
            .is_from_runner()
        );
    }

    #[test]
    fn an_old_turn_finished_still_parses() {
        let old = serde_json::json!({"type": "turn_finished", "outcome": "done"});
        let body: EventBody = serde_json::from_value(old).unwrap();
        assert_eq!(
            body,
            EventBody::TurnFinished {
                outcome: TurnOutcome::Done,
                usage: TokenUsage::default(),
                error: None,
                duration_ms: 0
            }
        );
    }

    #[test]
    fn issue_five_events_round_trip() {
        let bodies = [
            EventBody::Retrying {
                attempt: 1,
                max_attempts: 4,
                delay_ms: 500,
                reason: "429 Too Many Requests".into(),
            },
            EventBody::QuestionAsked {
                question_id: "q1".into(),
                kind: QuestionKind::Permission,
                text: "Run `rm -rf build`?".into(),
                options: vec![PERMISSION_ALLOW.into(), PERMISSION_DENY.into()],
                timeout_ms: 600_000,
            },
            EventBody::QuestionExpired {
                question_id: "q1".into(),
            },
            EventBody::QuestionAnswered {
                question_id: "q1".into(),
                answer: "allow".into(),
                answered_by: Some("u".into()),
            },
            EventBody::PromptEdited {
                message_id: "m".into(),
                content: "c".into(),
            },
            EventBody::PromptsMerged {
                message_id: "m".into(),
                merged_ids: vec!["m2".into()],
                content: "c".into(),
            },
            EventBody::SessionUpdated {
                agent: AgentKind::Opencode,
                model: Some("m".into()),
                permission_mode: PermissionMode::Allow,
            },
            EventBody::TurnFinished {
                outcome: TurnOutcome::Failed,
                usage: TokenUsage {
                    input_tokens: 3,
                    output_tokens: 4,
                    ..TokenUsage::default()
                },
                error: Some("boom".into()),
                duration_ms: 12,
            },
        ];
        let types = [
            "retrying",
            "question_asked",
            "question_expired",
            "question_answered",
            "prompt_edited",
            "prompts_merged",
            "session_updated",
            "turn_finished",
        ];
        for (body, kind) in bodies.into_iter().zip(types) {
            let json = serde_json::to_value(&body).unwrap();
            assert_eq!(json["type"], kind);
            assert_eq!(serde_json::from_value::<EventBody>(json).unwrap(), body);
        }
        let asked: EventBody = serde_json::from_value(serde_json::json!({
            "type": "question_asked", "question_id": "q", "kind": "question",
            "text": "Which?", "timeout_ms": 5
        }))
        .unwrap();
        assert!(matches!(asked, EventBody::QuestionAsked { options, .. } if options.is_empty()));
    }
}
