//! What a role means on screen: the names and descriptions of session roles, the key
//! source's label, and the access fields of a session read apart from the rest.
//!
//! The roles themselves and what each allows are `nightshift_protocol::roles`, the
//! same rules the Worker enforces on every route; the app only uses them to hide or
//! disable controls the user could not use anyway.

use nightshift_protocol::auth::{LlmSource, OwnerInfo, Viewer};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use nightshift_protocol::roles::{SessionRole, TeamRole};

/// A session role's name, as the role pill and the share dialog show it.
pub fn role_label(role: SessionRole) -> &'static str {
    match role {
        SessionRole::Owner => "Owner",
        SessionRole::CoOwner => "Co-owner",
        SessionRole::Collaborator => "Collaborator",
        SessionRole::Viewer => "Viewer",
        SessionRole::Admin => "Admin",
    }
}

/// What the share dialog says a role may do.
pub fn role_description(role: SessionRole) -> &'static str {
    match role {
        SessionRole::Viewer => "can watch",
        SessionRole::Collaborator => "can prompt and abort",
        SessionRole::CoOwner | SessionRole::Owner => "can prompt and share",
        SessionRole::Admin => "manages the team",
    }
}

/// Where a session's agent gets its LLM key (`llm_source` in the session's JSON).
pub fn llm_source_label(source: &str) -> &'static str {
    match LlmSource::parse(source) {
        // The prompting user's own key, which need not be the viewer's.
        Some(LlmSource::User) => "personal key",
        Some(LlmSource::Team) => "team key",
        Some(LlmSource::Environment) => "server key",
        None => "no key",
    }
}

/// The access fields of a session's JSON (`GET /api/sessions/{id}`), read apart from
/// the rest so the app works with servers that send them and ones that do not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SessionAccess {
    /// `None` for a server that predates roles: the user is then its only owner.
    #[serde(deserialize_with = "lenient")]
    pub my_role: Option<SessionRole>,
    pub owner: Option<OwnerInfo>,
    /// Whose LLM key the latest turn used; `None` before any turn (or when unknown).
    #[serde(deserialize_with = "lenient")]
    pub llm_source: Option<LlmSource>,
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

/// A field this build may not understand (a newer role or key source): `None` then,
/// rather than failing the whole answer.
fn lenient<'de, D: serde::Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value.and_then(|value| serde_json::from_value(value).ok()))
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
