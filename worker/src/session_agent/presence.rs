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

use std::cell::RefCell;

use nightshift_protocol::auth::Viewer;
use worker::Request;

use crate::sse::Subscribers;

/// The internal headers that name who calls (a stream or a heartbeat); the name is
/// percent-encoded (`crate::header_text`), since a header carries only ASCII.
pub const VIEWER_ID_HEADER: &str = "x-nightshift-viewer-id";
pub const VIEWER_NAME_HEADER: &str = "x-nightshift-viewer-name";

/// How long a lease lasts without a heartbeat: two 15 s heartbeats and some slack.
pub const DEFAULT_LEASE_MS: i64 = 35_000;

#[derive(Debug, Clone, PartialEq)]
struct Lease {
    viewer: Viewer,
    expires_at: i64,
}

#[derive(Debug, Default)]
pub struct Presence {
    leases: RefCell<Vec<Lease>>,
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
        self.leases
            .borrow()
            .iter()
            .map(|lease| lease.viewer.clone())
            .collect()
    }

    /// When the next lease runs out, for the object's alarm.
    pub fn next_expiry(&self) -> Option<i64> {
        self.leases
            .borrow()
            .iter()
            .map(|lease| lease.expires_at)
            .min()
    }

    /// Grants or renews `viewer`'s lease until `now + lease_ms`, dropping leases
    /// that ran out; tells every stream if the set of people changed.
    pub fn heartbeat(&self, viewer: Viewer, now: i64, lease_ms: i64, subscribers: &Subscribers) {
        self.change(subscribers, |leases| {
            leases.retain(|lease| lease.expires_at > now);
            let expires_at = now + lease_ms;
            match leases
                .iter_mut()
                .find(|lease| lease.viewer.user_id == viewer.user_id)
            {
                Some(lease) => {
                    lease.viewer.name = viewer.name;
                    lease.expires_at = lease.expires_at.max(expires_at);
                }
                None => leases.push(Lease { viewer, expires_at }),
            }
        });
    }

    /// Gives `user_id`'s lease back (they left the page).
    pub fn leave(&self, user_id: &str, subscribers: &Subscribers) {
        self.change(subscribers, |leases| {
            leases.retain(|lease| lease.viewer.user_id != user_id);
        });
    }

    /// Drops the leases that ran out by `now`.
    pub fn expire(&self, now: i64, subscribers: &Subscribers) {
        self.change(subscribers, |leases| {
            leases.retain(|lease| lease.expires_at > now);
        });
    }

    fn change(&self, subscribers: &Subscribers, edit: impl FnOnce(&mut Vec<Lease>)) {
        let before = self.viewers();
        edit(&mut self.leases.borrow_mut());
        let after = self.viewers();
        if after != before {
            let body = serde_json::json!({"type": "presence_changed", "viewers": after});
            subscribers.broadcast_snapshot(&format!("data: {body}\n\n"));
        }
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
