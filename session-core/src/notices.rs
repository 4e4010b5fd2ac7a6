//! Who is told what when something happens in a session: the rules behind a user's
//! inbox, their browser notifications and the team's webhook.
//!
//! A [`Notice`] is decided from one stored event and the facts of its session:
//! - a turn that finished (`done`) or `failed` is told to the user who started it
//!   (the sender of its prompt; the session's owner for prompts stored before
//!   senders were recorded). An `aborted` turn is told to nobody: someone chose to
//!   end it, or a steer replaced it.
//! - a question or a permission request is told to whoever can be waited on: the
//!   user who started the running turn, the session's owner and its co-owners.
//!   Collaborators who did not start the turn and viewers are never told (a viewer
//!   cannot answer; a collaborator sees it when they look).
//!
//! The webhook receives each notice once (not once per recipient), as Slack's
//! incoming-webhook message ([`webhook_payload`]). Nothing here does I/O.

use nightshift_protocol::events::{EventBody, QuestionKind, TurnOutcome};
use nightshift_protocol::inbox::{InboxKind, WebhookPayload};
use nightshift_protocol::roles::SessionRole;

use crate::access_facts::AccessFacts;

/// How much of a reply, error or question an entry keeps, in characters.
pub const EXCERPT_CHARS: usize = 280;

/// Something to tell: its kind, what happened, and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: InboxKind,
    /// An excerpt of what happened (the reply, the error, the question).
    pub text: String,
    /// User ids, each once, the turn's sender first.
    pub recipients: Vec<String>,
}

/// What a notice about a turn's event reads from the session.
#[derive(Debug, Clone, Default)]
pub struct TurnFacts {
    /// Who sent the prompt the turn runs, when recorded.
    pub sender: Option<String>,
    /// The turn's reply text so far.
    pub reply: Option<String>,
}

/// The notice `event` makes in a session with `access` (owner and shares), about a
/// turn described by `turn`; `None` for events nobody is told about.
pub fn notice_for(event: &EventBody, access: &AccessFacts, turn: &TurnFacts) -> Option<Notice> {
    let starter = turn
        .sender
        .clone()
        .unwrap_or_else(|| access.owner_id.clone());
    match event {
        EventBody::TurnFinished { outcome, error, .. } => {
            let (kind, text) = match outcome {
                TurnOutcome::Done => (
                    InboxKind::TurnFinished,
                    turn.reply
                        .as_deref()
                        .map(excerpt)
                        .filter(|text| !text.is_empty())
                        .unwrap_or_else(|| "The agent finished.".to_owned()),
                ),
                TurnOutcome::Failed => (
                    InboxKind::TurnFailed,
                    error
                        .as_deref()
                        .map(excerpt)
                        .filter(|text| !text.is_empty())
                        .unwrap_or_else(|| "The turn failed.".to_owned()),
                ),
                TurnOutcome::Aborted => return None,
            };
            Some(Notice {
                kind,
                text,
                recipients: vec![starter],
            })
        }
        EventBody::QuestionAsked { kind, text, .. } => {
            let kind = match kind {
                QuestionKind::Question => InboxKind::Question,
                QuestionKind::Permission => InboxKind::Permission,
            };
            let mut recipients = vec![starter];
            let co_owners = access
                .shares
                .iter()
                .filter(|(_, role)| **role == SessionRole::CoOwner)
                .map(|(user, _)| user.clone());
            for user in std::iter::once(access.owner_id.clone()).chain(co_owners) {
                if !recipients.contains(&user) {
                    recipients.push(user);
                }
            }
            Some(Notice {
                kind,
                text: excerpt(text),
                recipients,
            })
        }
        _ => None,
    }
}

/// Whether `event` can make a notice at all: lets the caller skip reading the
/// session's facts for the many events that cannot (text deltas, tool calls).
pub fn may_notify(event: &EventBody) -> bool {
    matches!(
        event,
        EventBody::TurnFinished { .. } | EventBody::QuestionAsked { .. }
    )
}

/// `text` with its whitespace runs collapsed to single spaces, cut to
/// [`EXCERPT_CHARS`] characters (the last one an ellipsis when cut).
pub fn excerpt(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= EXCERPT_CHARS {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(EXCERPT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The webhook post for `notice` in the session `session_id` titled `title`,
/// viewable at `session_url`: Slack's `text` (one line saying what happened where,
/// with a link in Slack's `<url|label>` form, then the excerpt) and the same facts
/// as plain fields.
pub fn webhook_payload(
    kind: InboxKind,
    text: &str,
    session_id: &str,
    title: &str,
    session_url: &str,
) -> WebhookPayload {
    let label = slack_escape(if title.is_empty() { session_id } else { title });
    WebhookPayload {
        text: format!(
            "{}: <{}|{}>\n{}",
            kind.headline(),
            session_url,
            label,
            slack_escape(text)
        ),
        kind: kind.as_str().to_owned(),
        session_id: Some(session_id.to_owned()),
        session_url: Some(session_url.to_owned()),
        session_title: Some(title.to_owned()),
    }
}

/// The webhook post of an admin's "send test".
pub fn webhook_test_payload(app_url: &str) -> WebhookPayload {
    WebhookPayload {
        text: format!("Nightshift's webhook works: <{app_url}|Nightshift> will post here."),
        kind: "test".to_owned(),
        session_id: None,
        session_url: None,
        session_title: None,
    }
}

/// Text escaped as Slack's message formatting asks (`&`, `<`, `>`), so a title or an
/// agent's words cannot make links or mentions of their own.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nightshift_protocol::events::TokenUsage;

    use super::*;

    fn access() -> AccessFacts {
        AccessFacts {
            owner_id: "owner".into(),
            shares: BTreeMap::from([
                ("co".to_owned(), SessionRole::CoOwner),
                ("collab".to_owned(), SessionRole::Collaborator),
                ("viewer".to_owned(), SessionRole::Viewer),
            ]),
        }
    }

    fn finished(outcome: TurnOutcome, error: Option<&str>) -> EventBody {
        EventBody::TurnFinished {
            outcome,
            usage: TokenUsage::default(),
            error: error.map(str::to_owned),
            duration_ms: 1,
        }
    }

    fn question(kind: QuestionKind, text: &str) -> EventBody {
        EventBody::QuestionAsked {
            question_id: "q1".into(),
            kind,
            text: text.into(),
            options: vec![],
            timeout_ms: 1000,
        }
    }

    #[test]
    fn a_finished_turn_is_told_to_its_sender_only_with_its_reply() {
        let turn = TurnFacts {
            sender: Some("collab".into()),
            reply: Some("All   done,\n tests pass.".into()),
        };
        let notice = notice_for(&finished(TurnOutcome::Done, None), &access(), &turn).unwrap();
        assert_eq!(notice.kind, InboxKind::TurnFinished);
        assert_eq!(notice.recipients, vec!["collab".to_owned()]);
        assert_eq!(notice.text, "All done, tests pass.");
    }

    #[test]
    fn a_failed_turn_carries_its_error_and_an_unknown_sender_means_the_owner() {
        let notice = notice_for(
            &finished(TurnOutcome::Failed, Some("LLM said 500")),
            &access(),
            &TurnFacts::default(),
        )
        .unwrap();
        assert_eq!(notice.kind, InboxKind::TurnFailed);
        assert_eq!(notice.recipients, vec!["owner".to_owned()]);
        assert_eq!(notice.text, "LLM said 500");
    }

    #[test]
    fn an_aborted_turn_and_other_events_tell_nobody() {
        let turn = TurnFacts::default();
        assert!(notice_for(&finished(TurnOutcome::Aborted, None), &access(), &turn).is_none());
        let delta = EventBody::TextDelta { text: "hi".into() };
        assert!(notice_for(&delta, &access(), &turn).is_none());
        assert!(!may_notify(&delta));
    }

    #[test]
    fn a_question_goes_to_the_sender_the_owner_and_co_owners_never_viewers() {
        let turn = TurnFacts {
            sender: Some("collab".into()),
            reply: None,
        };
        let notice = notice_for(
            &question(QuestionKind::Permission, "Run `rm -rf build`?"),
            &access(),
            &turn,
        )
        .unwrap();
        assert_eq!(notice.kind, InboxKind::Permission);
        assert_eq!(notice.recipients, vec!["collab", "owner", "co"]);
        let owner_asks = TurnFacts {
            sender: Some("owner".into()),
            reply: None,
        };
        let notice = notice_for(
            &question(QuestionKind::Question, "Which?"),
            &access(),
            &owner_asks,
        )
        .unwrap();
        assert_eq!(notice.kind, InboxKind::Question);
        assert_eq!(notice.recipients, vec!["owner", "co"]);
    }

    #[test]
    fn excerpts_are_cut_on_characters_with_an_ellipsis() {
        let long = "é".repeat(EXCERPT_CHARS + 10);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn the_webhook_text_links_the_session_and_escapes_what_the_agent_wrote() {
        let payload = webhook_payload(
            InboxKind::Question,
            "Use <!channel> & go?",
            "s1",
            "Fix <the> build",
            "https://ns.example.com/sessions/s1",
        );
        assert_eq!(
            payload.text,
            "Asks a question: <https://ns.example.com/sessions/s1|Fix &lt;the&gt; build>\n\
             Use &lt;!channel&gt; &amp; go?"
        );
        assert_eq!(payload.kind, "question");
        assert_eq!(payload.session_id.as_deref(), Some("s1"));
    }
}
