//! What a role allows in the app: team roles (admin, member) and a user's role in
//! one session (owner, co-owner, collaborator, viewer, or admin of the team).
//!
//! The server enforces all of this on every route; the app only uses it to hide or
//! disable controls the user could not use anyway.

use serde::{Deserialize, Serialize};

use super::wire::Viewer;

/// A user's role in the team.
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

    pub fn parse(text: &str) -> Option<TeamRole> {
        match text {
            "admin" => Some(TeamRole::Admin),
            "member" => Some(TeamRole::Member),
            _ => None,
        }
    }
}

/// The user's role in one session (`my_role` in the session's JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    Owner,
    CoOwner,
    Collaborator,
    Viewer,
    /// A team admin looking at someone else's session.
    Admin,
}

impl SessionRole {
    /// The roles a session can be shared with, in the order the share dialog lists them.
    pub const SHARABLE: [SessionRole; 3] = [
        SessionRole::Viewer,
        SessionRole::Collaborator,
        SessionRole::CoOwner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionRole::Owner => "owner",
            SessionRole::CoOwner => "co_owner",
            SessionRole::Collaborator => "collaborator",
            SessionRole::Viewer => "viewer",
            SessionRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<SessionRole> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }

    pub fn label(self) -> &'static str {
        match self {
            SessionRole::Owner => "Owner",
            SessionRole::CoOwner => "Co-owner",
            SessionRole::Collaborator => "Collaborator",
            SessionRole::Viewer => "Viewer",
            SessionRole::Admin => "Admin",
        }
    }

    /// What the share dialog says a role may do.
    pub fn description(self) -> &'static str {
        match self {
            SessionRole::Viewer => "can watch",
            SessionRole::Collaborator => "can prompt and abort",
            SessionRole::CoOwner | SessionRole::Owner => "can prompt and share",
            SessionRole::Admin => "manages the team",
        }
    }

    /// Sending prompts, cancelling them and aborting turns.
    pub fn can_prompt(self) -> bool {
        !matches!(self, SessionRole::Viewer)
    }

    /// Sharing the session and managing its share links.
    pub fn can_share(self) -> bool {
        matches!(
            self,
            SessionRole::Owner | SessionRole::CoOwner | SessionRole::Admin
        )
    }
}

/// Where a session's agent gets its LLM key (`llm_source` in the session's JSON).
pub fn llm_source_label(source: &str) -> &'static str {
    match source {
        // The prompting user's own key, which need not be the viewer's.
        "user" => "personal key",
        "team" => "team key",
        "environment" => "server key",
        _ => "no key",
    }
}

/// The access fields of a session's JSON (`GET /api/sessions/{id}`), read apart from
/// the rest so the app works with servers that send them and ones that do not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SessionAccess {
    /// `None` for a server that predates roles: the user is then its only owner.
    #[serde(deserialize_with = "lenient_role")]
    pub my_role: Option<SessionRole>,
    pub owner: Option<SessionOwner>,
    pub llm_source: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SessionOwner {
    pub id: String,
    pub name: String,
}

impl SessionAccess {
    /// The role to act on: the one the server sent, else owner.
    pub fn role(&self) -> SessionRole {
        self.my_role.unwrap_or(SessionRole::Owner)
    }

    pub fn read_only(&self) -> bool {
        !self.role().can_prompt()
    }
}

fn lenient_role<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SessionRole>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.as_deref().and_then(SessionRole::parse))
}

/// Reads a `presence_changed` event from a session stream's `data`; `None` for any
/// other event.
pub fn presence_update(data: &str) -> Option<Vec<Viewer>> {
    #[derive(Deserialize)]
    struct PresenceChanged {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        viewers: Vec<Viewer>,
    }
    // Cheap check first: every event of a session passes through here.
    if !data.contains("presence_changed") {
        return None;
    }
    let event: PresenceChanged = serde_json::from_str(data).ok()?;
    (event.kind == "presence_changed").then_some(event.viewers)
}

/// Up to two initials for an avatar: "Ada Lovelace" -> "AL", "bo@x.dev" -> "B".
pub fn initials(name: &str) -> String {
    let name = name.split('@').next().unwrap_or(name);
    let letters: String = name
        .split(|c: char| c.is_whitespace() || c == '.' || c == '-' || c == '_')
        .filter_map(|word| word.chars().next())
        .filter(|c| c.is_alphanumeric())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect();
    if letters.is_empty() {
        "?".to_owned()
    } else {
        letters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_viewers_cannot_prompt_and_only_owners_and_admins_share() {
        for role in [
            SessionRole::Owner,
            SessionRole::CoOwner,
            SessionRole::Collaborator,
            SessionRole::Admin,
        ] {
            assert!(role.can_prompt(), "{role:?}");
        }
        assert!(!SessionRole::Viewer.can_prompt());
        assert!(SessionRole::CoOwner.can_share());
        assert!(!SessionRole::Collaborator.can_share());
        assert!(!SessionRole::Viewer.can_share());
    }

    #[test]
    fn role_names_round_trip() {
        for role in [
            SessionRole::Owner,
            SessionRole::CoOwner,
            SessionRole::Collaborator,
            SessionRole::Viewer,
            SessionRole::Admin,
        ] {
            assert_eq!(SessionRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(SessionRole::parse("emperor"), None);
        assert_eq!(TeamRole::parse("admin"), Some(TeamRole::Admin));
        let unknown: TeamRole = serde_json::from_str(r#""guest""#).unwrap();
        assert_eq!(unknown, TeamRole::Member);
    }

    #[test]
    fn session_access_reads_roles_and_defaults_to_owner() {
        let access: SessionAccess = serde_json::from_str(
            r#"{"id":"s","my_role":"viewer","owner":{"id":"u","name":"Ada"},"llm_source":"team"}"#,
        )
        .unwrap();
        assert!(access.read_only());
        assert_eq!(access.owner.unwrap().name, "Ada");
        let old: SessionAccess = serde_json::from_str(r#"{"id":"s","title":"t"}"#).unwrap();
        assert_eq!(old.role(), SessionRole::Owner);
        assert!(!old.read_only());
        let odd: SessionAccess = serde_json::from_str(r#"{"my_role":"wizard"}"#).unwrap();
        assert_eq!(odd.my_role, None);
    }

    #[test]
    fn presence_events_are_recognised_and_others_are_not() {
        let viewers = presence_update(
            r#"{"type":"presence_changed","viewers":[{"user_id":"u1","name":"Ada"}]}"#,
        )
        .unwrap();
        assert_eq!(viewers[0].name, "Ada");
        assert_eq!(
            presence_update(r#"{"type":"text_delta","seq":3,"text":"presence_changed"}"#),
            None
        );
        assert_eq!(presence_update(r#"{"type":"status_changed"}"#), None);
    }

    #[test]
    fn initials_for_avatars() {
        assert_eq!(initials("Ada Lovelace"), "AL");
        assert_eq!(initials("bo@x.dev"), "B");
        assert_eq!(initials("jean-luc.picard@x"), "JL");
        assert_eq!(initials(""), "?");
        assert_eq!(llm_source_label("team"), "team key");
    }
}
