//! Presence: who is watching a session now, as leases. A heartbeat (or opening the
//! event stream) grants or renews a person's lease until `now + lease_ms`; leaving
//! gives it back at once; a lease nobody renews runs out. A person with several tabs
//! holds one lease.
//!
//! [`Presence`] is the lease table and decides; the caller keeps it in memory, wakes
//! up at [`Presence::next_expiry`] and tells the streams when an edit returns the new
//! set of viewers.

use nightshift_protocol::auth::Viewer;

/// How long a lease lasts without a heartbeat: two 15 s heartbeats and some slack.
pub const DEFAULT_LEASE_MS: i64 = 35_000;

#[derive(Debug, Clone, PartialEq)]
struct Lease {
    viewer: Viewer,
    expires_at: i64,
}

/// The leases of the people watching one session.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Presence {
    leases: Vec<Lease>,
}

impl Presence {
    /// The people holding a lease, in the order they came.
    pub fn viewers(&self) -> Vec<Viewer> {
        self.leases
            .iter()
            .map(|lease| lease.viewer.clone())
            .collect()
    }

    /// When the next lease runs out, for the object's alarm.
    pub fn next_expiry(&self) -> Option<i64> {
        self.leases.iter().map(|lease| lease.expires_at).min()
    }

    /// Grants or renews `viewer`'s lease until `now + lease_ms` (never shortening it),
    /// dropping leases that ran out. Returns the viewers if that changed them.
    pub fn heartbeat(&mut self, viewer: Viewer, now: i64, lease_ms: i64) -> Option<Vec<Viewer>> {
        self.change(|leases| {
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
        })
    }

    /// Gives `user_id`'s lease back (they left the page). Returns the viewers if that
    /// changed them.
    pub fn leave(&mut self, user_id: &str) -> Option<Vec<Viewer>> {
        self.change(|leases| leases.retain(|lease| lease.viewer.user_id != user_id))
    }

    /// Drops the leases that ran out by `now`. Returns the viewers if that changed
    /// them.
    pub fn expire(&mut self, now: i64) -> Option<Vec<Viewer>> {
        self.change(|leases| leases.retain(|lease| lease.expires_at > now))
    }

    fn change(&mut self, edit: impl FnOnce(&mut Vec<Lease>)) -> Option<Vec<Viewer>> {
        let before = self.viewers();
        edit(&mut self.leases);
        let after = self.viewers();
        (after != before).then_some(after)
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

    fn ids(viewers: &[Viewer]) -> Vec<&str> {
        viewers.iter().map(|v| v.user_id.as_str()).collect()
    }

    #[test]
    fn a_heartbeat_makes_a_person_present_until_the_lease_runs_out() {
        let mut presence = Presence::default();
        let changed = presence.heartbeat(viewer("ada"), 0, 1_000);
        assert_eq!(changed.as_deref().map(ids), Some(vec!["ada"]));
        assert_eq!(presence.next_expiry(), Some(1_000));
        assert_eq!(presence.expire(999), None);
        assert_eq!(presence.expire(1_000).as_deref().map(ids), Some(vec![]));
        assert_eq!(presence.next_expiry(), None);
    }

    #[test]
    fn people_are_listed_in_the_order_they_came() {
        let mut presence = Presence::default();
        presence.heartbeat(viewer("bob"), 0, 1_000);
        presence.heartbeat(viewer("ada"), 10, 1_000);
        presence.heartbeat(viewer("bob"), 20, 1_000);
        assert_eq!(ids(&presence.viewers()), ["bob", "ada"]);
    }

    #[test]
    fn a_renewal_extends_the_lease_and_changes_nobody() {
        let mut presence = Presence::default();
        presence.heartbeat(viewer("ada"), 0, 1_000);
        assert_eq!(presence.heartbeat(viewer("ada"), 900, 1_000), None);
        assert_eq!(presence.next_expiry(), Some(1_900));
    }

    #[test]
    fn a_shorter_renewal_never_shortens_a_lease() {
        let mut presence = Presence::default();
        presence.heartbeat(viewer("ada"), 0, 10_000);
        presence.heartbeat(viewer("ada"), 100, 1_000);
        assert_eq!(presence.next_expiry(), Some(10_000));
    }

    #[test]
    fn a_renewal_under_a_new_name_is_a_change() {
        let mut presence = Presence::default();
        presence.heartbeat(viewer("ada"), 0, 1_000);
        let renamed = Viewer {
            user_id: "ada".to_owned(),
            name: "Ada L.".to_owned(),
        };
        let changed = presence.heartbeat(renamed.clone(), 10, 1_000);
        assert_eq!(changed, Some(vec![renamed]));
    }

    #[test]
    fn a_heartbeat_drops_the_leases_that_ran_out() {
        let mut presence = Presence::default();
        presence.heartbeat(viewer("ada"), 0, 1_000);
        let changed = presence.heartbeat(viewer("bob"), 1_000, 1_000);
        assert_eq!(changed.as_deref().map(ids), Some(vec!["bob"]));
    }

    #[test]
    fn leaving_gives_the_lease_back_at_once() {
        let mut presence = Presence::default();
        presence.heartbeat(viewer("ada"), 0, 1_000);
        presence.heartbeat(viewer("bob"), 0, 2_000);
        assert_eq!(presence.leave("ada").as_deref().map(ids), Some(vec!["bob"]));
        assert_eq!(presence.next_expiry(), Some(2_000));
        assert_eq!(presence.leave("ada"), None, "leaving twice changes nothing");
    }
}
