//! The runner link: WebSocket frames between a sandbox's runner and its session's
//! `SessionAgent` (`GET /api/sessions/{id}/runner`, text frames of JSON).
//!
//! Exactly-once delivery, by construction:
//! - A runner process picks a random `epoch` when it starts and numbers every event
//!   it produces with `local_seq` = 1, 2, 3, ... within that epoch.
//! - It keeps every event the `SessionAgent` has not acknowledged and, after a
//!   reconnect, resends from the `acked` the `welcome` frame names.
//! - The `SessionAgent` stores `(epoch, local_seq)` with each event and ignores a
//!   frame it already stored, then acknowledges. The per-session `seq` browsers see is
//!   assigned only when an event is first stored, so a resend never renumbers.
//!
//! A `hello` with a new `epoch` while a turn was running means the runner that ran it
//! died: that turn is interrupted and its prompt goes back to the front of the queue.

use serde::{Deserialize, Serialize};

pub use crate::agent::LlmApi;

use crate::agent::{AgentKind, PermissionMode};
use crate::events::EventBody;

/// Sent by the runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunnerFrame {
    /// First frame on every connection.
    Hello {
        session_id: String,
        runner_version: String,
        /// Random per runner process; stays the same across reconnects.
        epoch: String,
        /// The turn this runner is still working on, if any.
        active_turn: Option<String>,
    },
    /// One event of a turn.
    Event {
        local_seq: u64,
        turn_id: String,
        event: EventBody,
    },
    /// Keep-alive; answered with `pong`.
    Ping,
    /// The session repository's state as the runner sees it now (latest wins; not
    /// part of the exactly-once event numbering, since each one replaces the last).
    Repo { state: crate::repo::RepoState },
}

/// Sent by the `SessionAgent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionFrame {
    /// Answer to `hello`: the highest `local_seq` of this epoch already stored; the
    /// runner resends everything after it. `token` replaces the runner's token for
    /// later reconnects (tokens are short-lived and renewed over the link).
    Welcome {
        acked: u64,
        token: Option<String>,
        /// The session's repository, which the runner clones into the workspace if
        /// it is not there yet; `None` for a session without one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repo: Option<crate::repo::SessionRepo>,
    },
    /// Run a turn.
    Prompt {
        turn_id: String,
        message_id: String,
        content: String,
        /// The LLM to use for this turn; `None` when nothing usable is configured (the
        /// runner then fails the turn with an error saying what to set).
        llm: Option<LlmConfig>,
        /// The agent that runs this turn.
        #[serde(default)]
        agent: AgentKind,
        /// The session's chosen model; when set it overrides `llm.model`.
        #[serde(default)]
        model: Option<String>,
        /// Whether permission requests are asked (as `question_asked`) or allowed.
        #[serde(default)]
        permission_mode: PermissionMode,
        /// Who commits this turn's work: the user who sent the prompt. `None` for a
        /// session without a repository.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        author: Option<crate::repo::GitAuthor>,
    },
    /// Push the session's branch now (the user asked from the app); the runner
    /// answers with a `repo` frame once it is done.
    Push,
    /// Stop the turn now; the runner ends it with `turn_finished { outcome: aborted }`.
    /// What the turn already did (partial text, finished tool calls) stays in the
    /// agent's conversation, so a steering prompt sent next continues from it.
    Abort { turn_id: String },
    /// The user's answer to a `question_asked` of a running turn.
    Answer {
        turn_id: String,
        question_id: String,
        answer: String,
    },
    /// Everything up to and including `up_to` (of the current epoch) is stored.
    Ack { up_to: u64 },
    /// Answer to `ping`, with a renewed token when the current one is getting old.
    Pong { token: Option<String> },
}

/// An LLM endpoint and the key to call it with, for one turn. It travels only from
/// the `SessionAgent` to its own runner; commands the agent runs never see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmConfig {
    pub api: LlmApi,
    pub base_url: String,
    pub api_key: crate::redacted::Redacted<String>,
    pub model: String,
    /// Where the key came from (`"environment"` for now), for showing in the session.
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frame = RunnerFrame::Event {
            local_seq: 3,
            turn_id: "t".into(),
            event: EventBody::TextDelta { text: "x".into() },
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            text,
            r#"{"type":"event","local_seq":3,"turn_id":"t","event":{"type":"text_delta","text":"x"}}"#
        );
        assert_eq!(serde_json::from_str::<RunnerFrame>(&text).unwrap(), frame);
    }

    #[test]
    fn prompt_defaults_and_answer_round_trip() {
        let old = r#"{"type":"prompt","turn_id":"t","message_id":"m","content":"c","llm":null}"#;
        let frame: SessionFrame = serde_json::from_str(old).unwrap();
        assert_eq!(
            frame,
            SessionFrame::Prompt {
                turn_id: "t".into(),
                message_id: "m".into(),
                content: "c".into(),
                llm: None,
                agent: AgentKind::Builtin,
                model: None,
                permission_mode: PermissionMode::Ask,
                author: None,
            }
        );
        let frame = SessionFrame::Prompt {
            turn_id: "t".into(),
            message_id: "m".into(),
            content: "c".into(),
            llm: None,
            agent: AgentKind::Opencode,
            model: Some("gpt".into()),
            permission_mode: PermissionMode::Allow,
            author: None,
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert!(text.contains(r#""agent":"opencode""#));
        assert_eq!(serde_json::from_str::<SessionFrame>(&text).unwrap(), frame);

        let answer = SessionFrame::Answer {
            turn_id: "t".into(),
            question_id: "q".into(),
            answer: "yes".into(),
        };
        let text = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            text,
            r#"{"type":"answer","turn_id":"t","question_id":"q","answer":"yes"}"#
        );
        assert_eq!(serde_json::from_str::<SessionFrame>(&text).unwrap(), answer);
    }

    #[test]
    fn debug_hides_the_key() {
        let config = LlmConfig {
            api: LlmApi::Anthropic,
            base_url: "https://example.invalid".into(),
            api_key: "sk-secret".into(),
            model: "m".into(),
            source: "environment".into(),
        };
        assert!(!format!("{config:?}").contains("sk-secret"));
    }
}
