//! Telling people: a user's inbox of things that happened in sessions while they
//! were not looking, and the team's webhook that receives the same.
//!
//! Who speaks what:
//! - The browser and the CLI read the inbox with `GET /api/inbox` ([`InboxPage`],
//!   newest first, cursor-paged, with the unread count) and mark entries read with
//!   `POST /api/inbox/read` ([`MarkRead`] -> [`MarkedRead`]).
//! - A new entry, and every change to the unread count, reaches the user's own
//!   session-list stream (`GET /api/events`) as
//!   [`crate::events::SessionListEvent::InboxChanged`]; nobody else's stream sees it.
//! - Team admins read and set the webhook with `GET`/`PUT /api/admin/webhook`
//!   ([`WebhookSettings`], [`PutWebhook`]) and try it with
//!   `POST /api/admin/webhook/test` ([`WebhookTestResult`]); its POSTs are
//!   [`WebhookPayload`]s, Slack's incoming-webhook body with fields Slack ignores.

use serde::{Deserialize, Serialize};

/// The most entries one page of `GET /api/inbox` holds (also its default).
pub const MAX_INBOX_PAGE: u32 = 100;
/// The most ids one `POST /api/inbox/read` names.
pub const MAX_MARK_READ_IDS: usize = 500;
/// The longest webhook URL an admin may set, in bytes.
pub const MAX_WEBHOOK_URL_BYTES: usize = 2048;

/// What happened, for an inbox entry and a webhook post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxKind {
    /// A turn the user started finished (`done`).
    TurnFinished,
    /// A turn the user started failed.
    TurnFailed,
    /// The agent asked a question and waits for an answer.
    Question,
    /// The agent asks for permission to do something and waits.
    Permission,
}

impl InboxKind {
    /// The kind as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            InboxKind::TurnFinished => "turn_finished",
            InboxKind::TurnFailed => "turn_failed",
            InboxKind::Question => "question",
            InboxKind::Permission => "permission",
        }
    }

    /// The kind from its stored name.
    pub fn parse(name: &str) -> Option<InboxKind> {
        [
            InboxKind::TurnFinished,
            InboxKind::TurnFailed,
            InboxKind::Question,
            InboxKind::Permission,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }

    /// What happened, in a few words (a notification's and a webhook's lead).
    pub fn headline(self) -> &'static str {
        match self {
            InboxKind::TurnFinished => "Finished",
            InboxKind::TurnFailed => "Failed",
            InboxKind::Question => "Asks a question",
            InboxKind::Permission => "Asks for permission",
        }
    }
}

/// One entry of a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub id: String,
    pub session_id: String,
    pub kind: InboxKind,
    /// The session's title when it happened.
    pub title: String,
    /// What happened: an excerpt of the reply, the error, the question.
    pub text: String,
    pub created_at: i64,
    /// When the user marked it read; `None` while unread.
    #[serde(default)]
    pub read_at: Option<i64>,
}

/// `GET /api/inbox?limit=&cursor=`: the newest entries first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InboxPage {
    pub entries: Vec<InboxEntry>,
    /// How many of the user's entries are unread (all of them, not this page's).
    pub unread: u32,
    /// Pass as `cursor` for the next (older) page; `None` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `POST /api/inbox/read`: `{"ids": [...]}` or `{"all": true}`, not both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

/// The answer to `POST /api/inbox/read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkedRead {
    /// Entries that were unread and are read now (others' ids count for nothing).
    pub marked: u32,
    pub unread: u32,
}

/// `GET /api/admin/webhook` (admins only: the URL is a secret of sorts).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WebhookSettings {
    #[serde(default)]
    pub url: Option<String>,
    /// Posts the receiver accepted (2xx), since the URL was set.
    #[serde(default)]
    pub deliveries: u64,
    /// Posts that failed (no answer in time, or not 2xx), since the URL was set.
    #[serde(default)]
    pub failures: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_failure_at: Option<i64>,
}

/// `PUT /api/admin/webhook`: `{"url": null}` (or `""`) turns it off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutWebhook {
    #[serde(default)]
    pub url: Option<String>,
}

/// The answer to `POST /api/admin/webhook/test`: what the receiver did with a test
/// post (an unreachable or refusing receiver is an answer too, not an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTestResult {
    pub delivered: bool,
    /// The receiver's HTTP status, when it answered.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The body of a webhook post: Slack's incoming-webhook message (`text`, required,
/// is all Slack reads) plus fields Slack ignores, for receivers of other kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub text: String,
    /// `turn_finished`, `turn_failed`, `question`, `permission`, or `test`.
    pub kind: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub session_url: Option<String>,
    #[serde(default)]
    pub session_title: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in [
            InboxKind::TurnFinished,
            InboxKind::TurnFailed,
            InboxKind::Question,
            InboxKind::Permission,
        ] {
            assert_eq!(InboxKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::json!(kind.as_str()));
        }
        assert_eq!(InboxKind::parse("other"), None);
    }

    #[test]
    fn mark_read_refuses_unknown_fields() {
        assert!(serde_json::from_str::<MarkRead>(r#"{"everything":true}"#).is_err());
        let all: MarkRead = serde_json::from_str(r#"{"all":true}"#).unwrap();
        assert!(all.all && all.ids.is_empty());
    }
}
