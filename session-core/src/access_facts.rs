//! Who may do what on one session, as its `SessionAgent` keeps it: the owner and the
//! shares. The object checks the calls it receives against these facts itself, so the
//! hot path (a prompt, an answer, the event stream) needs no D1 read for the
//! session's access, and a change to a share or to the owner holds from the moment
//! it was applied here.
//!
//! The facts are a copy of D1's (`sessions.owner_id`, `session_shares`): every change
//! there is followed by a reload here before it is acknowledged ([`Reloads`] keeps a
//! slow reload from overwriting a newer one). The caller's team role comes with the
//! call (from the sign-in), since it belongs to the team, not to the session.

use std::collections::BTreeMap;

use nightshift_protocol::auth::{Access, SessionRole, TeamRole};
use nightshift_protocol::roles::session_role;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessFacts {
    pub owner_id: String,
    /// User id -> the role a share gives them.
    #[serde(default)]
    pub shares: BTreeMap<String, SessionRole>,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The caller cannot see the session (and must not learn it exists).
    NotFound,
    /// The caller sees it, but their role does not allow this.
    Forbidden,
}

impl AccessFacts {
    /// A new session's facts: its owner, no shares.
    pub fn owned_by(owner_id: impl Into<String>) -> Self {
        Self {
            owner_id: owner_id.into(),
            shares: BTreeMap::new(),
        }
    }

    /// The role `user_id` (team role `team_role`) has on the session.
    pub fn role_of(&self, user_id: &str, team_role: TeamRole) -> Option<SessionRole> {
        let share = self.shares.get(user_id).copied();
        session_role(user_id, team_role, &self.owner_id, share)
    }

    /// Admits the caller to a route of `access`, answering their role.
    pub fn check(
        &self,
        user_id: &str,
        team_role: TeamRole,
        access: Access,
    ) -> Result<SessionRole, Refusal> {
        let role = self.role_of(user_id, team_role).ok_or(Refusal::NotFound)?;
        if role.allows(access) {
            Ok(role)
        } else {
            Err(Refusal::Forbidden)
        }
    }
}

/// Orders reloads of the facts: each reload takes a ticket before it reads D1 and
/// may store what it read only if no reload that started after it has stored yet.
/// A reload starts after the change it follows was written, so whatever it read
/// includes that change; a newer reload's read includes it too, so an older one
/// finishing late is dropped.
#[derive(Debug, Default)]
pub struct Reloads {
    issued: u64,
    stored: u64,
}

impl Reloads {
    pub fn start(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    /// Whether the reload holding `ticket` may store its result; if so, it is
    /// recorded as stored.
    pub fn may_store(&mut self, ticket: u64) -> bool {
        if ticket > self.stored {
            self.stored = ticket;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AccessFacts {
        let mut facts = AccessFacts::owned_by("owner");
        facts.shares.insert("viewer".into(), SessionRole::Viewer);
        facts
            .shares
            .insert("collab".into(), SessionRole::Collaborator);
        facts
    }

    #[test]
    fn roles_follow_owner_shares_and_team_admins() {
        let facts = facts();
        assert_eq!(
            facts.role_of("owner", TeamRole::Member),
            Some(SessionRole::Owner)
        );
        assert_eq!(
            facts.role_of("collab", TeamRole::Member),
            Some(SessionRole::Collaborator)
        );
        assert_eq!(
            facts.role_of("admin", TeamRole::Admin),
            Some(SessionRole::Admin)
        );
        assert_eq!(facts.role_of("stranger", TeamRole::Member), None);
    }

    #[test]
    fn checks_hide_the_session_from_strangers_and_refuse_viewers_writes() {
        let facts = facts();
        assert_eq!(
            facts.check("stranger", TeamRole::Member, Access::SessionViewer),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            facts.check("viewer", TeamRole::Member, Access::SessionViewer),
            Ok(SessionRole::Viewer)
        );
        assert_eq!(
            facts.check("viewer", TeamRole::Member, Access::SessionCollaborator),
            Err(Refusal::Forbidden)
        );
        assert_eq!(
            facts.check("collab", TeamRole::Member, Access::SessionCollaborator),
            Ok(SessionRole::Collaborator)
        );
        assert_eq!(
            facts.check("collab", TeamRole::Member, Access::SessionManager),
            Err(Refusal::Forbidden)
        );
    }

    #[test]
    fn a_removed_share_takes_the_role_away_at_once() {
        let mut facts = facts();
        facts.shares.remove("collab");
        assert_eq!(
            facts.check("collab", TeamRole::Member, Access::SessionViewer),
            Err(Refusal::NotFound)
        );
    }

    #[test]
    fn a_reload_that_finishes_after_a_newer_one_does_not_store() {
        let mut reloads = Reloads::default();
        let first = reloads.start();
        let second = reloads.start();
        assert!(reloads.may_store(second));
        assert!(!reloads.may_store(first));

        // In order, both store.
        let third = reloads.start();
        let fourth = reloads.start();
        assert!(reloads.may_store(third));
        assert!(reloads.may_store(fourth));
    }
}
