//! Open streams end when their viewer loses access. The routes that take access
//! away (removing a share, removing a member) ask the object to end that user's
//! streams at once (`POST /streams/close`); as a backstop for every other way of
//! losing it (an admin demoted, the session deleted, a call that failed), the object
//! rechecks the access of everyone with an open stream every
//! `STREAM_ACCESS_CHECK_MS` (default [`DEFAULT_STREAM_ACCESS_CHECK_MS`]) while
//! streams are open: one D1 read per session, at its alarm.

use super::SessionAgent;
use super::control::millis_var;
use crate::{clock, session_access};

/// How often a session with open streams rechecks its viewers' access.
pub const DEFAULT_STREAM_ACCESS_CHECK_MS: i64 = 5_000;

impl SessionAgent {
    fn stream_access_check_ms(&self) -> i64 {
        millis_var(
            &self.env,
            "STREAM_ACCESS_CHECK_MS",
            DEFAULT_STREAM_ACCESS_CHECK_MS,
        )
        .max(100)
    }

    /// A stream opened: make sure a check is due (the caller sets the alarm).
    pub(super) fn stream_opened(&self) {
        if self.stream_access_check_at.get().is_none() {
            self.stream_access_check_at
                .set(Some(clock::now_ms() + self.stream_access_check_ms()));
        }
    }

    /// At the alarm: when a check is due, ends the streams of viewers who lost
    /// access, and makes the next check due while streams remain.
    pub(super) async fn check_stream_access(&self) {
        let now = clock::now_ms();
        match self.stream_access_check_at.get() {
            Some(at) if at <= now => {}
            _ => return,
        }
        if self.subscribers.count() == 0 {
            self.stream_access_check_at.set(None);
            return;
        }
        self.stream_access_check_at
            .set(Some(now + self.stream_access_check_ms()));
        let session_id = match self.store.record() {
            Ok(record) => record.session_id,
            Err(error) => {
                worker::console_warn!("stream access check: {error}");
                return;
            }
        };
        let users: Vec<String> = self
            .subscribers
            .users()
            .into_iter()
            .filter(|user_id| !user_id.is_empty())
            .collect();
        match session_access::without_access(&self.env, &session_id, &users).await {
            Ok(gone) => {
                self.subscribers
                    .close_where(|user_id| gone.iter().any(|g| g == user_id));
                for user_id in &gone {
                    self.presence.leave(user_id, &self.subscribers);
                }
            }
            Err(error) => worker::console_warn!("stream access check: {}", error.message),
        }
    }
}
