//! Roles and what each allows: team roles, a user's role in one session, the access a
//! route needs, and the rules that join them.
//!
//! The rules live here, beside the wire names, because two parts apply them: the
//! Worker enforces them on every route (`worker/src/access.rs` adds the refusals),
//! and the app uses the very same functions to hide controls the server would refuse.
//! Keeping one copy means the two can never disagree about, say, who may share.

use serde::{Deserialize, Serialize};

/// A team role.
///
/// Answers are read leniently: a role this build does not know reads as
/// [`TeamRole::Member`], the one that allows least. Requests name a role exactly
/// (see [`strict_team_role`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    Admin,
    #[default]
    #[serde(other)]
    Member,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Admin => "admin",
            TeamRole::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(TeamRole::Admin),
            "member" => Some(TeamRole::Member),
            _ => None,
        }
    }
}

/// Reads a [`TeamRole`] in a request body: an unknown name is refused (with serde's
/// usual "unknown variant" message) instead of being read as `member`.
pub(crate) fn strict_team_role<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<TeamRole, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Named {
        Admin,
        Member,
    }
    Ok(match Named::deserialize(deserializer)? {
        Named::Admin => TeamRole::Admin,
        Named::Member => TeamRole::Member,
    })
}

/// What a user may do with one session. Ordered by what it allows: a later role can
/// do everything an earlier one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    /// Watches: reads the session, its messages and its event stream.
    Viewer,
    /// Also prompts, aborts and cancels prompts.
    Collaborator,
    /// Also shares the session and manages its share links.
    CoOwner,
    /// A team admin who is not the owner: everything a co-owner can do.
    Admin,
    /// The session's owner.
    Owner,
}

impl SessionRole {
    /// The roles a session can be shared with (or a share link can grant), from the
    /// one that allows least.
    pub const SHAREABLE: [SessionRole; 3] = [
        SessionRole::Viewer,
        SessionRole::Collaborator,
        SessionRole::CoOwner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionRole::Viewer => "viewer",
            SessionRole::Collaborator => "collaborator",
            SessionRole::CoOwner => "co_owner",
            SessionRole::Admin => "admin",
            SessionRole::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "viewer" => SessionRole::Viewer,
            "collaborator" => SessionRole::Collaborator,
            "co_owner" => SessionRole::CoOwner,
            "admin" => SessionRole::Admin,
            "owner" => SessionRole::Owner,
            _ => return None,
        })
    }

    /// Roles a session can be shared with (or a share link can grant).
    pub fn is_shareable(self) -> bool {
        Self::SHAREABLE.contains(&self)
    }

    /// The least role a session route of `access` needs; `None` for an access that
    /// does not name a session (no session role passes it).
    pub fn needed_for(access: Access) -> Option<SessionRole> {
        match access {
            Access::SessionViewer => Some(SessionRole::Viewer),
            Access::SessionCollaborator => Some(SessionRole::Collaborator),
            Access::SessionManager => Some(SessionRole::CoOwner),
            Access::Public | Access::Member | Access::Admin | Access::Runner => None,
        }
    }

    /// Whether this role passes a route of `access`.
    pub fn allows(self, access: Access) -> bool {
        Self::needed_for(access).is_some_and(|needed| self >= needed)
    }

    /// Sending prompts, cancelling them and aborting turns.
    pub fn can_prompt(self) -> bool {
        self.allows(Access::SessionCollaborator)
    }

    /// Sharing the session and managing its share links.
    pub fn can_share(self) -> bool {
        self.allows(Access::SessionManager)
    }
}

/// The role `user_id` has on a session owned by `owner_id`, given the user's team
/// role and the session's share with them, if any. `None`: the session is invisible
/// to them.
pub fn session_role(
    user_id: &str,
    team_role: TeamRole,
    owner_id: &str,
    share: Option<SessionRole>,
) -> Option<SessionRole> {
    if user_id == owner_id {
        return Some(SessionRole::Owner);
    }
    if team_role == TeamRole::Admin {
        return Some(SessionRole::Admin);
    }
    share.filter(|role| role.is_shareable())
}

/// Who may call a route, as `GET /api/admin/routes` lists the router's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in team member.
    Member,
    /// Team admins.
    Admin,
    /// Someone who can see the session (viewer or more).
    SessionViewer,
    /// Someone who can prompt in the session (collaborator or more).
    SessionCollaborator,
    /// Someone who can manage the session's sharing (co-owner, owner, admin).
    SessionManager,
    /// The session's runner, with its runner token.
    Runner,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SessionRole; 5] = [
        SessionRole::Viewer,
        SessionRole::Collaborator,
        SessionRole::CoOwner,
        SessionRole::Admin,
        SessionRole::Owner,
    ];

    #[test]
    fn only_viewers_cannot_prompt_and_only_owners_and_admins_share() {
        for role in ALL {
            assert_eq!(role.can_prompt(), role != SessionRole::Viewer, "{role:?}");
        }
        let sharers: Vec<_> = ALL.into_iter().filter(|role| role.can_share()).collect();
        assert_eq!(
            sharers,
            [SessionRole::CoOwner, SessionRole::Admin, SessionRole::Owner]
        );
    }

    #[test]
    fn team_roles_are_read_leniently_in_answers_and_strictly_in_requests() {
        let unknown: TeamRole = serde_json::from_str(r#""guest""#).unwrap();
        assert_eq!(unknown, TeamRole::Member);
        let mut strict = serde_json::Deserializer::from_str(r#""guest""#);
        let refused = strict_team_role(&mut strict).unwrap_err().to_string();
        assert!(refused.contains("unknown variant `guest`"), "{refused}");
        let mut admin = serde_json::Deserializer::from_str(r#""admin""#);
        assert_eq!(strict_team_role(&mut admin).unwrap(), TeamRole::Admin);
    }

    #[test]
    fn no_session_role_passes_a_route_that_names_no_session() {
        for role in ALL {
            for access in [
                Access::Public,
                Access::Member,
                Access::Admin,
                Access::Runner,
            ] {
                assert!(!role.allows(access), "{role:?} {access:?}");
            }
            assert!(role.allows(Access::SessionViewer));
        }
    }
}
