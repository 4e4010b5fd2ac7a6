//! Presence: who is watching a session now, as leases. A signed-in person is present
//! while they hold a lease; a heartbeat (`POST /presence`, which the app sends every
//! 15 s while the session page is open and visible) or opening the `GET /events`
//! stream grants or renews it for `PRESENCE_LEASE_MS` (default
//! [`DEFAULT_LEASE_MS`], about two heartbeats). `DELETE /presence` (the app's
//! keepalive fetch on page hide) gives it back at once; a lease nobody renews
//! expires at the object's alarm. Leaving therefore never depends on the runtime
//! telling the object that a client closed its stream (`wrangler dev` does not).
//!
//! A person with several tabs holds one lease. When the set of people changes,
//! every stream gets a `{"type":"presence_changed","viewers":[...]}` frame without
//! an `id:` (it is not part of the event log, so `Last-Event-ID` never points at
//! it); a stream that goes live later starts with the latest such frame. Leases
//! live in memory: a heartbeat keeps the object awake, and an object that was
//! evicted had no open streams to tell.
//!
//! The lease rules are [`nightshift_session::presence`]'s; this file keeps the table
//! in the object's memory, names the caller from the internal headers and sends the
//! frames.

use std::cell::RefCell;

use nightshift_protocol::auth::Viewer;
use nightshift_session::presence::Presence as Leases;
use worker::Request;

use crate::sse::Subscribers;

/// The internal headers that name who calls (a stream or a heartbeat); the name is
/// percent-encoded (`crate::header_text`), since a header carries only ASCII.
pub const VIEWER_ID_HEADER: &str = "x-nightshift-viewer-id";
pub const VIEWER_NAME_HEADER: &str = "x-nightshift-viewer-name";

pub use nightshift_session::presence::DEFAULT_LEASE_MS;

/// The session's lease table ([`nightshift_session::presence::Presence`], which
/// decides) and the frame that tells every stream when the set of people changed.
#[derive(Debug, Default)]
pub struct Presence {
    leases: RefCell<Leases>,
}

/// The viewer named in `req`'s internal headers (none: an unnamed caller).
pub fn viewer_of(req: &Request) -> Option<Viewer> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let user_id = header(VIEWER_ID_HEADER)?;
    let name = header(VIEWER_NAME_HEADER)
        .and_then(|name| crate::header_text::decode(&name))
        .unwrap_or_else(|| user_id.clone());
    Some(Viewer { user_id, name })
}

impl Presence {
    /// The people holding a lease, in the order they came.
    pub fn viewers(&self) -> Vec<Viewer> {
        self.leases.borrow().viewers()
    }

    /// When the next lease runs out, for the object's alarm.
    pub fn next_expiry(&self) -> Option<i64> {
        self.leases.borrow().next_expiry()
    }

    /// Grants or renews `viewer`'s lease until `now + lease_ms`, dropping leases
    /// that ran out; tells every stream if the set of people changed.
    pub fn heartbeat(&self, viewer: Viewer, now: i64, lease_ms: i64, subscribers: &Subscribers) {
        let changed = self.leases.borrow_mut().heartbeat(viewer, now, lease_ms);
        tell(changed, subscribers);
    }

    /// Gives `user_id`'s lease back (they left the page).
    pub fn leave(&self, user_id: &str, subscribers: &Subscribers) {
        let changed = self.leases.borrow_mut().leave(user_id);
        tell(changed, subscribers);
    }

    /// Drops the leases that ran out by `now`.
    pub fn expire(&self, now: i64, subscribers: &Subscribers) {
        let changed = self.leases.borrow_mut().expire(now);
        tell(changed, subscribers);
    }
}

/// Sends every stream the new set of people, if it changed.
fn tell(changed: Option<Vec<Viewer>>, subscribers: &Subscribers) {
    if let Some(viewers) = changed {
        let body = serde_json::json!({"type": "presence_changed", "viewers": viewers});
        subscribers.broadcast_snapshot(&format!("data: {body}\n\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(id: &str) -> Viewer {
        Viewer {
            user_id: id.to_owned(),
            name: id.to_uppercase(),
        }
    }

    fn names(presence: &Presence) -> Vec<String> {
        presence.viewers().into_iter().map(|v| v.user_id).collect()
    }

    #[test]
    fn a_lease_lasts_until_it_is_renewed_given_back_or_runs_out() {
        let presence = Presence::default();
        let subscribers = std::rc::Rc::new(Subscribers::new());
        let slot = subscribers.open("ada", 0, 60_000);
        slot.go_live(0);
        presence.heartbeat(viewer("ada"), 0, 1_000, &subscribers);
        presence.heartbeat(viewer("bob"), 500, 1_000, &subscribers);
        assert_eq!(names(&presence), ["ada", "bob"]);
        assert_eq!(presence.next_expiry(), Some(1_000));
        // A renewal changes nobody, so no frame.
        presence.heartbeat(viewer("ada"), 900, 1_000, &subscribers);
        assert_eq!(presence.next_expiry(), Some(1_500));
        presence.expire(1_500, &subscribers);
        assert_eq!(names(&presence), ["ada"]);
        presence.leave("ada", &subscribers);
        assert!(presence.viewers().is_empty());
        assert_eq!(presence.next_expiry(), None);
        let seen = slot.waiting();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen[2].contains("presence_changed") && !seen[2].contains("bob"));
        assert!(seen[3].contains(r#""viewers":[]"#));
    }
}
