//! REST bodies of the Worker's `/api` routes.
//!
//! Timestamps are milliseconds since the Unix epoch (UTC). Ids are opaque strings.

use serde::{Deserialize, Serialize};

/// Where a session is in its life. Derived by the `SessionAgent` from its sandbox,
/// its runner link and its queue (see `nightshift_session::lifecycle`); never set
/// directly by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// The sandbox is being created or its runner has not connected yet.
    Provisioning,
    /// A runner is connected and nothing is running.
    Idle,
    /// A turn is running.
    Running,
    /// The runner's link is down; queued work waits for it to come back.
    Reconnecting,
    /// The sandbox could not be created; the session's `error` says why.
    Error,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Provisioning => "provisioning",
            SessionStatus::Idle => "idle",
            SessionStatus::Running => "running",
            SessionStatus::Reconnecting => "reconnecting",
            SessionStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "provisioning" => SessionStatus::Provisioning,
            "idle" => SessionStatus::Idle,
            "running" => SessionStatus::Running,
            "reconnecting" => SessionStatus::Reconnecting,
            "error" => SessionStatus::Error,
            _ => return None,
        })
    }
}

/// A chat session, as `GET /api/sessions` and `GET /api/sessions/{id}` return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub title: String,
    pub status: SessionStatus,
    /// The agent that works in this session (`"builtin"` for now).
    pub agent: String,
    /// The model the agent uses, when one is configured.
    pub model: Option<String>,
    pub owner_id: String,
    pub sandbox_id: Option<String>,
    /// Why the session is in [`SessionStatus::Error`], if it is.
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `POST /api/sessions`. Every field is optional; `{}` is a valid body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// At most [`crate::limits::MAX_TITLE_CHARS`] characters. When absent the session is
    /// titled after its first prompt.
    #[serde(default)]
    pub title: Option<String>,
}

/// `GET /api/sessions`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<Session>,
}

/// The state of a prompt in its session's queue.
///
/// `queued -> processing -> done | failed | aborted`; a queued prompt can be
/// `cancelled`; a processing prompt whose runner died goes back to `queued` (at the
/// front) and its turn is recorded as interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Queued,
    Processing,
    Done,
    Failed,
    Aborted,
    Cancelled,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Processing => "processing",
            MessageState::Done => "done",
            MessageState::Failed => "failed",
            MessageState::Aborted => "aborted",
            MessageState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => MessageState::Queued,
            "processing" => MessageState::Processing,
            "done" => MessageState::Done,
            "failed" => MessageState::Failed,
            "aborted" => MessageState::Aborted,
            "cancelled" => MessageState::Cancelled,
            _ => return None,
        })
    }

    /// True once the prompt will never run (again).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageState::Done
                | MessageState::Failed
                | MessageState::Aborted
                | MessageState::Cancelled
        )
    }
}

/// A user's prompt and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub content: String,
    pub state: MessageState,
    /// Prompts ahead of this one in the queue (0 = runs next), while it is queued.
    pub position: Option<u32>,
    /// The turn currently or last running this prompt.
    pub turn_id: Option<String>,
    /// How many times a turn was started for it (more than 1 after an interruption).
    pub attempts: u32,
    /// The agent's text reply, once its turn has finished.
    pub reply: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// `POST /api/sessions/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    pub content: String,
}

/// The 202 answer to `POST /api/sessions/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessageResponse {
    pub message_id: String,
    /// Prompts ahead of it in the queue when it was accepted (0 = runs next).
    pub position: u32,
    pub message: Message,
}

/// `GET /api/sessions/{id}/messages`: oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageList {
    pub messages: Vec<Message>,
}

/// `POST /api/sessions/{id}/abort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortResponse {
    /// The turn that was told to stop, if one was running.
    pub aborted_turn_id: Option<String>,
}

/// One part's answer in `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartHealth {
    pub ok: bool,
    pub version: Option<String>,
    pub error: Option<String>,
}

/// `GET /api/health`: 200 with the versions of the parts that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub worker: PartHealth,
    pub sandbox_backend: PartHealth,
}
