//! Telling people what happened in this session: after a step stored its events,
//! the ones that make a notice (a turn's end, a question, a permission request;
//! `nightshift_session::notices`) are turned into inbox entries and webhook posts,
//! delivered in the background (`crate::inbox::deliver` under `waitUntil`) so no
//! turn and no request waits on D1 or a receiver.
//!
//! Everything read here is the object's own SQLite (who sent the turn's prompt,
//! the reply, the owner and shares), read in the same synchronous stretch as the
//! step, so the facts are those of the moment the event was stored.

use nightshift_protocol::events::SessionEvent;
use nightshift_session::access_facts::AccessFacts;
use nightshift_session::notices::{Notice, TurnFacts, may_notify, notice_for};

use super::SessionAgent;
use crate::inbox::{self, SessionFacts};

impl SessionAgent {
    /// Delivers the notices `events` make, if any.
    pub(super) fn notify(&self, events: &[SessionEvent]) {
        if !events.iter().any(|event| may_notify(&event.body)) {
            return;
        }
        match self.notices(events) {
            Ok(Some((session, notices))) => {
                self.state
                    .wait_until(inbox::deliver(self.env.clone(), session, notices));
            }
            Ok(None) => {}
            Err(error) => worker::console_warn!("deciding whom to tell failed: {error}"),
        }
    }

    fn notices(
        &self,
        events: &[SessionEvent],
    ) -> worker::Result<Option<(SessionFacts, Vec<Notice>)>> {
        let record = self.store.record()?;
        if record.deleted || record.session_id.is_empty() {
            return Ok(None);
        }
        // A session created before the object kept its shares: its owner only.
        let access = self.store.access_facts()?.unwrap_or_else(|| AccessFacts {
            owner_id: record.owner_id.clone(),
            shares: Default::default(),
        });
        let mut notices = Vec::new();
        for event in events.iter().filter(|event| may_notify(&event.body)) {
            let turn = match &event.turn_id {
                Some(turn_id) => TurnFacts {
                    sender: self
                        .store
                        .prompt_of_turn(turn_id)?
                        .and_then(|prompt| prompt.message.sent_by),
                    reply: self.store.turn_reply(turn_id)?,
                },
                None => TurnFacts::default(),
            };
            notices.extend(notice_for(&event.body, &access, &turn));
        }
        if notices.is_empty() {
            return Ok(None);
        }
        let session = SessionFacts {
            session_url: record.worker_url.as_deref().map(|url| {
                format!(
                    "{}/sessions/{}",
                    url.trim_end_matches('/'),
                    record.session_id
                )
            }),
            session_id: record.session_id,
            title: record.title,
        };
        Ok(Some((session, notices)))
    }
}
