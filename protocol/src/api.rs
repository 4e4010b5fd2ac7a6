//! REST bodies of the Worker's `/api` routes.
//!
//! Timestamps are milliseconds since the Unix epoch (UTC). Ids are opaque strings.

use serde::{Deserialize, Serialize};

pub use crate::agent::{AgentKind, PermissionMode};

use crate::agent::{LlmApi, TokenUsage};

/// Where a session is in its life: the phase of its `SessionAgent`'s state machine
/// (`nightshift_session::session_machine`; the machine's `ready` is `idle` here).
/// Never set directly by a client.
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
    /// Idle for its sleep time: the sandbox is being saved and stopped.
    Sleeping,
    /// The sandbox is stopped with its files kept; a prompt, an opened panel or
    /// `POST /api/sessions/{id}/wake` wakes it.
    Asleep,
    /// The sandbox is being restored and its runner reconnected.
    Waking,
    /// The sandbox could not be created or restored; the session's `error` says why.
    Error,
    /// Ended by its owner or an admin: the sandbox is gone, the history stays
    /// readable, and nothing runs any more (`archived_at` says when).
    Archived,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Provisioning => "provisioning",
            SessionStatus::Idle => "idle",
            SessionStatus::Running => "running",
            SessionStatus::Reconnecting => "reconnecting",
            SessionStatus::Sleeping => "sleeping",
            SessionStatus::Asleep => "asleep",
            SessionStatus::Waking => "waking",
            SessionStatus::Error => "error",
            SessionStatus::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "provisioning" => SessionStatus::Provisioning,
            "idle" => SessionStatus::Idle,
            "running" => SessionStatus::Running,
            "reconnecting" => SessionStatus::Reconnecting,
            "sleeping" => SessionStatus::Sleeping,
            "asleep" => SessionStatus::Asleep,
            "waking" => SessionStatus::Waking,
            "error" => SessionStatus::Error,
            "archived" => SessionStatus::Archived,
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
    /// The agent that works in this session.
    #[serde(default)]
    pub agent: AgentKind,
    /// The model the agent uses (a [`ModelInfo::id`]); `None` means the configured
    /// default.
    #[serde(default)]
    pub model: Option<String>,
    /// Whether the agent's permission requests are asked of the user or allowed.
    #[serde(default)]
    pub permission_mode: PermissionMode,
    /// What the session's finished turns used, in total.
    #[serde(default)]
    pub usage: UsageTotals,
    pub owner_id: String,
    pub sandbox_id: Option<String>,
    /// Why the session is in [`SessionStatus::Error`], if it is.
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The asking user's role on this session (`owner`, `co_owner`, `collaborator`,
    /// `viewer`, or `admin` for a team admin who is none of those).
    #[serde(default)]
    pub my_role: Option<crate::auth::SessionRole>,
    /// Who owns the session.
    #[serde(default)]
    pub owner: Option<Box<crate::auth::OwnerInfo>>,
    /// Whose LLM key the latest turn used.
    #[serde(default)]
    pub llm_source: Option<crate::auth::LlmSource>,
    /// The GitHub repository the session works on, with its pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<crate::repo::SessionRepoSummary>,
    /// When the session was archived (ms); `None` while it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<i64>,
}

/// `POST /api/sessions`. Every field is optional; `{}` is a valid body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// At most [`crate::limits::MAX_TITLE_CHARS`] characters. When absent the session is
    /// titled after its first prompt.
    #[serde(default)]
    pub title: Option<String>,
    /// The agent to work in the session; the built-in one when absent.
    #[serde(default)]
    pub agent: Option<AgentKind>,
    /// The model to use (a [`ModelInfo::id`] from `GET /api/models`); the configured
    /// default when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// How permission requests are handled; `ask` when absent.
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
    /// A GitHub repository to clone into the sandbox and work on.
    #[serde(default)]
    pub repo: Option<crate::repo::RepoChoice>,
}

/// `PATCH /api/sessions/{id}`: every field is optional and only the present ones
/// change. Agent, model and permission mode apply from the next turn on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSessionRequest {
    #[serde(default)]
    pub agent: Option<AgentKind>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
    #[serde(default)]
    pub title: Option<String>,
}

/// What happens to a prompt sent while a turn is running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueMode {
    /// Runs after the prompts ahead of it.
    #[default]
    Followup,
    /// Aborts the running turn (keeping what it already did) and runs next.
    Steer,
    /// Prompts sent within a short window are merged into one.
    Collect,
}

impl QueueMode {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueMode::Followup => "followup",
            QueueMode::Steer => "steer",
            QueueMode::Collect => "collect",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "followup" => QueueMode::Followup,
            "steer" => QueueMode::Steer,
            "collect" => QueueMode::Collect,
            _ => return None,
        })
    }
}

/// A session's totals over its finished turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub turns: u64,
    pub duration_ms: u64,
}

impl UsageTotals {
    /// Counts one finished turn.
    pub fn add_turn(&mut self, usage: TokenUsage, duration_ms: u64) {
        self.input_tokens += usage.input_tokens;
        self.output_tokens += usage.output_tokens;
        self.turns += 1;
        self.duration_ms += duration_ms;
    }
}

/// A model the user can choose, in `GET /api/models` (a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// What `Session::model` holds, e.g. `"claude-sonnet-4-5"`.
    pub id: String,
    /// For people.
    pub name: String,
    /// The provider it comes from, e.g. `"anthropic"` or `"openai_compatible"`.
    pub provider: String,
    /// The wire format its endpoint speaks.
    pub api: LlmApi,
    /// Where its key comes from (`"environment"` for now).
    pub source: String,
}

/// `DELETE /api/sessions/{id}`: no body, or an empty object (anything else is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteSessionRequest {}

/// `GET /api/sessions[?limit=N&cursor=C&scope=&q=&archived=]` (the filters are
/// [`crate::session_list::ListFilter`]): one page, newest first. `next_cursor`,
/// when set, is the `cursor` of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<Session>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
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
    /// The queue mode it was sent with.
    #[serde(default)]
    pub mode: QueueMode,
    /// Tokens its turn used, once the turn has finished.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// How long its turn took, once the turn has finished.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// The id of the user who sent it (for prompts merged by `collect`, the first
    /// one's sender). Its turn uses this user's LLM key, else the team's. `None` for
    /// prompts stored before senders were recorded.
    #[serde(default)]
    pub sent_by: Option<String>,
}

/// `POST /api/sessions/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    pub content: String,
    /// `followup` when absent.
    #[serde(default)]
    pub mode: QueueMode,
}

/// `PATCH /api/sessions/{id}/messages/{message_id}`: replaces a queued prompt's
/// content (409 `not_queued` once it has started or ended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    pub content: String,
}

/// `POST /api/sessions/{id}/questions/{question_id}/answer`: the answer to a question
/// the agent asked (`question_asked`). For a permission request the answer is one of
/// its options (`"allow"`, `"deny"`, ...). 409 `question_closed` when the question was
/// already answered or expired, 404 when there is no such question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerQuestionRequest {
    pub answer: String,
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

/// `GET /api/sessions/{id}/streams` (those who manage the session): its open event
/// streams and the most any of them has held in the session's memory since the
/// session's object last started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStats {
    /// Streams open now (replaying or live).
    pub open: u32,
    /// The most events one replay page held.
    pub peak_replay_page_events: u32,
    /// The most bytes of frames one replay page held.
    pub peak_replay_page_bytes: u64,
    /// The most bytes one live stream's outbox held.
    pub peak_outbox_bytes: u64,
    /// Streams ended because they fell too far behind.
    pub dropped_behind: u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_enums_are_snake_case_and_round_trip() {
        for kind in [AgentKind::Builtin, AgentKind::Opencode] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(AgentKind::parse(kind.as_str()), Some(kind));
        }
        for mode in [QueueMode::Followup, QueueMode::Steer, QueueMode::Collect] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
            assert_eq!(QueueMode::parse(mode.as_str()), Some(mode));
        }
        for mode in [PermissionMode::Ask, PermissionMode::Allow] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
            assert_eq!(PermissionMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(AgentKind::parse("claude"), None);
        assert_eq!(AgentKind::default(), AgentKind::Builtin);
        assert_eq!(QueueMode::default(), QueueMode::Followup);
        assert_eq!(PermissionMode::default(), PermissionMode::Ask);
    }

    #[test]
    fn a_session_without_the_new_fields_still_parses() {
        let old = json!({
            "id": "s", "title": "t", "status": "idle", "agent": "builtin", "model": null,
            "owner_id": "u", "sandbox_id": null, "error": null,
            "created_at": 1, "updated_at": 2
        });
        let session: Session = serde_json::from_value(old).unwrap();
        assert_eq!(session.agent, AgentKind::Builtin);
        assert_eq!(session.permission_mode, PermissionMode::Ask);
        assert_eq!(session.usage, UsageTotals::default());

        let mut session = session;
        session.agent = AgentKind::Opencode;
        session.usage.add_turn(
            TokenUsage {
                input_tokens: 10,
                output_tokens: 5,
                ..TokenUsage::default()
            },
            700,
        );
        let json = serde_json::to_value(&session).unwrap();
        assert_eq!(json["agent"], "opencode");
        assert_eq!(
            json["usage"],
            json!({"input_tokens": 10, "output_tokens": 5, "turns": 1, "duration_ms": 700})
        );
        assert_eq!(serde_json::from_value::<Session>(json).unwrap(), session);
    }

    #[test]
    fn requests_default_and_refuse_unknown_fields() {
        let post: PostMessageRequest = serde_json::from_value(json!({"content": "hi"})).unwrap();
        assert_eq!(post.mode, QueueMode::Followup);
        let post: PostMessageRequest =
            serde_json::from_value(json!({"content": "hi", "mode": "steer"})).unwrap();
        assert_eq!(post.mode, QueueMode::Steer);
        assert!(
            serde_json::from_value::<PostMessageRequest>(json!({"content": "hi", "mode": "now"}))
                .is_err()
        );

        let create: CreateSessionRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(create, CreateSessionRequest::default());
        let create: CreateSessionRequest =
            serde_json::from_value(json!({"agent": "opencode", "model": "m"})).unwrap();
        assert_eq!(create.agent, Some(AgentKind::Opencode));
        assert_eq!(create.model.as_deref(), Some("m"));

        let update: UpdateSessionRequest =
            serde_json::from_value(json!({"permission_mode": "allow"})).unwrap();
        assert_eq!(update.permission_mode, Some(PermissionMode::Allow));
        assert_eq!(update.agent, None);
        assert!(serde_json::from_value::<UpdateSessionRequest>(json!({"colour": 1})).is_err());

        let edit: EditMessageRequest = serde_json::from_value(json!({"content": "x"})).unwrap();
        assert_eq!(edit.content, "x");
        let answer: AnswerQuestionRequest =
            serde_json::from_value(json!({"answer": "yes"})).unwrap();
        assert_eq!(answer.answer, "yes");
        assert!(serde_json::from_value::<AnswerQuestionRequest>(json!({})).is_err());
    }

    #[test]
    fn messages_and_models_round_trip() {
        let message = Message {
            id: "m".into(),
            content: "c".into(),
            state: MessageState::Done,
            position: None,
            turn_id: Some("t".into()),
            attempts: 1,
            reply: Some("r".into()),
            error: None,
            created_at: 1,
            started_at: Some(2),
            finished_at: Some(3),
            mode: QueueMode::Collect,
            usage: Some(TokenUsage {
                input_tokens: 1,
                output_tokens: 2,
                ..TokenUsage::default()
            }),
            duration_ms: Some(1),
            sent_by: Some("u".into()),
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["mode"], "collect");
        assert_eq!(json["sent_by"], "u");
        assert_eq!(serde_json::from_value::<Message>(json).unwrap(), message);

        let mut old = serde_json::to_value(&message).unwrap();
        for field in ["mode", "usage", "duration_ms", "sent_by"] {
            old.as_object_mut().unwrap().remove(field);
        }
        let parsed: Message = serde_json::from_value(old).unwrap();
        assert_eq!(parsed.mode, QueueMode::Followup);
        assert_eq!(parsed.usage, None);
        assert_eq!(parsed.sent_by, None);

        let model = ModelInfo {
            id: "gpt".into(),
            name: "GPT".into(),
            provider: "openai_compatible".into(),
            api: LlmApi::OpenAiCompatible,
            source: "environment".into(),
        };
        let json = serde_json::to_value(vec![model.clone()]).unwrap();
        assert_eq!(json[0]["api"], "open_ai_compatible");
        assert_eq!(
            serde_json::from_value::<Vec<ModelInfo>>(json).unwrap(),
            vec![model]
        );
    }
}
