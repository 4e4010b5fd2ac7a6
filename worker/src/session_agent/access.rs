//! Admitting calls against the session's access facts
//! (`nightshift_session::access_facts`), and keeping those facts current.
//!
//! A call that names its [`Caller`] (the hot path: prompts, answers, the event
//! stream) is admitted here instead of by a D1 read in the Worker. The facts are
//! loaded from D1 once for a session created before the object kept them, and read
//! again (`POST /access`) after every change to the session's owner or shares,
//! before that change is acknowledged; so a removed share stops working the moment
//! its removal returns.
//!
//! The same statement reads the owner's sleep time and the team's maximum (see
//! [`super::sleep`]), stored beside the facts under the same ordering: a change of
//! owner brings the new owner's time, and a changed time is read by the same
//! `POST /access` (`crate::sleep_settings::tell_sessions`).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::SessionRole;
use nightshift_session::access_facts::{AccessFacts, Refusal};
use nightshift_session::sleep_time::SleepTime;
use serde::Deserialize;
use worker::Request;

use super::SessionAgent;
use crate::api_error::{ApiError, ApiResult};
use crate::auth::TEAM_ID;
use crate::auth::d1::{self, Arg};
use crate::internal::Caller;
use crate::sleep_settings::stored_ms;

#[derive(Deserialize)]
struct OwnerRow {
    owner_id: String,
    /// The owner's own sleep time and the team's maximum (see `super::sleep`).
    sleep_after_ms: Option<i64>,
    max_sleep_after_ms: Option<i64>,
}

#[derive(Deserialize)]
struct ShareRow {
    user_id: String,
    role: String,
}

impl SessionAgent {
    /// Refuses the call unless its caller (if it names one) may make it.
    pub(super) async fn admit(&self, req: &Request) -> ApiResult<()> {
        let Some(caller) = Caller::of(req)? else {
            return Ok(());
        };
        let record = self.store.record()?;
        let session_id = req
            .headers()
            .get(crate::internal::SESSION_ID_HEADER)?
            .unwrap_or_default();
        let not_found = || ApiError::not_found(format!("no session {session_id}"));
        if !record.initialized || record.deleted {
            return Err(not_found());
        }
        let facts = match self.store.access_facts()? {
            Some(facts) => facts,
            None => self
                .reload_access(&session_id)
                .await?
                .ok_or_else(not_found)?,
        };
        match facts.check(&caller.user_id, caller.team_role, caller.access) {
            Ok(_) => Ok(()),
            Err(Refusal::NotFound) => Err(not_found()),
            Err(Refusal::Forbidden) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "your role on this session does not allow this",
            )),
        }
    }

    /// Reads the owner and the shares from D1 and stores them, unless a reload that
    /// started later stored first. `None`: D1 has no such session.
    pub(super) async fn reload_access(&self, session_id: &str) -> ApiResult<Option<AccessFacts>> {
        let ticket = self.access_reloads.borrow_mut().start();
        let owner: Option<OwnerRow> = d1::first(
            &self.env,
            "SELECT s.owner_id AS owner_id, u.sleep_after_ms AS sleep_after_ms, \
             t.max_sleep_after_ms AS max_sleep_after_ms FROM sessions s \
             LEFT JOIN users u ON u.id = s.owner_id LEFT JOIN teams t ON t.id = ? \
             WHERE s.id = ?",
            &[Arg::Text(TEAM_ID), Arg::Text(session_id)],
        )
        .await?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        let shares: Vec<ShareRow> = d1::all(
            &self.env,
            "SELECT user_id, role FROM session_shares WHERE session_id = ?",
            &[Arg::Text(session_id)],
        )
        .await?;
        let sleep = SleepTime {
            user_ms: stored_ms(owner.sleep_after_ms),
            team_max_ms: stored_ms(owner.max_sleep_after_ms),
        };
        let mut facts = AccessFacts::owned_by(owner.owner_id);
        facts.shares = shares
            .into_iter()
            .filter_map(|row| Some((row.user_id, SessionRole::parse(&row.role)?)))
            .collect();
        if self.access_reloads.borrow_mut().may_store(ticket) {
            self.store.save_access_facts(&facts)?;
            self.store.save_sleep_time(&sleep)?;
            Ok(Some(facts))
        } else {
            // A newer reload stored already; its facts are at least as recent.
            Ok(self.store.access_facts()?.or(Some(facts)))
        }
    }
}
