//! The bodies of the sign-in, team, sharing and key routes, as the app reads and
//! sends them. Every optional or newer field has a default.

use serde::{Deserialize, Serialize};

use super::access::TeamRole;

/// `GET /auth/providers`: which sign-in buttons to show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Providers {
    pub github: bool,
    pub google: bool,
    pub dev: bool,
}

/// `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Me {
    pub user: User,
    #[serde(default)]
    pub team: Option<Team>,
    #[serde(default)]
    pub csrf_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub email: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub role: TeamRole,
    #[serde(default)]
    pub default_model: Option<String>,
}

impl User {
    /// The name to show: the profile name, else the email.
    pub fn display_name(&self) -> &str {
        if self.name.trim().is_empty() {
            &self.email
        } else {
            &self.name
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Team {
    pub id: String,
    pub name: String,
}

/// `PATCH /api/me`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Some("")` clears the default model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
}

/// One personal API token, as listed (`GET /api/tokens`) or just created
/// (`POST /api/tokens`, the only answer that carries `token`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiToken {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub token: Option<String>,
}

/// `POST /api/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// `GET /api/admin/members`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub email: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub role: TeamRole,
    #[serde(default)]
    pub joined_at: Option<i64>,
}

/// `GET /api/team/members`: who a session can be shared with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TeamMember {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub email: String,
}

impl TeamMember {
    /// "Name <email>", or whichever of the two is known.
    pub fn label(&self) -> String {
        match (self.name.trim().is_empty(), self.email.is_empty()) {
            (false, false) => format!("{} <{}>", self.name, self.email),
            (false, true) => self.name.clone(),
            _ => self.email.clone(),
        }
    }
}

/// An invite link (`GET`/`POST /api/admin/invites`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Invite {
    pub id: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub role: TeamRole,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub max_uses: Option<u32>,
    #[serde(default)]
    pub uses: u32,
}

/// `POST /api/admin/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewInvite {
    pub role: TeamRole,
    pub expires_in_hours: u32,
    pub max_uses: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `GET`/`PUT /api/admin/settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSettings {
    #[serde(default = "default_policy")]
    pub signin_policy: String,
    #[serde(default)]
    pub allowed_domain: Option<String>,
    /// Always answered; sent only to change them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<nightshift_protocol::auth::UsageLimits>,
}

fn default_policy() -> String {
    "invite_only".to_owned()
}

/// `GET /api/sessions/{id}/shares`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SessionShares {
    pub shares: Vec<SharedUser>,
    pub links: Vec<ShareLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SharedUser {
    pub user_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub email: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ShareLink {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub role: String,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub max_uses: Option<u32>,
    #[serde(default)]
    pub uses: u32,
}

/// `POST /api/sessions/{id}/share-links`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewShareLink {
    pub role: String,
    pub expires_in_hours: u32,
    pub max_uses: u32,
}

/// `POST /api/share-links/{token}/accept`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AcceptedShare {
    pub session_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub role: String,
}

/// Who is watching a session now (`GET /api/sessions/{id}/presence` and the
/// `presence_changed` event).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Viewer {
    pub user_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

/// A stored LLM key (`GET /api/keys`); the key itself never comes back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LlmKey {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub scope: String,
    #[serde(default, deserialize_with = "nullable")]
    pub provider: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub last4: String,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// `POST /api/keys`. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewLlmKey {
    pub scope: String,
    pub provider: String,
    pub api_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl std::fmt::Debug for NewLlmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLlmKey")
            .field("scope", &self.scope)
            .field("provider", &self.provider)
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("models", &self.models)
            .field("name", &self.name)
            .finish()
    }
}

/// A string field that servers may send as `null`.
fn nullable<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

/// `GET /api/models`, when the server offers it: either a bare list of ids or
/// `{"models": [...]}` whose items are ids or objects with an `id`.
pub fn parse_models(text: &str) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let items = match &value {
        serde_json::Value::Array(items) => items.as_slice(),
        serde_json::Value::Object(map) => match map.get("models") {
            Some(serde_json::Value::Array(items)) => items.as_slice(),
            _ => &[],
        },
        _ => &[],
    };
    items
        .iter()
        .filter_map(|item| {
            item.as_str()
                .or_else(|| item.get("id").and_then(|id| id.as_str()))
                .map(str::to_owned)
        })
        .collect()
}

/// A list answer, either a bare array or an object holding it under `field`
/// (`{"invites": [...]}`); servers have used both shapes for collections.
pub fn parse_list<T: serde::de::DeserializeOwned>(
    text: &str,
    field: &str,
) -> Result<Vec<T>, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    match value {
        serde_json::Value::Object(mut map) => match map.remove(field) {
            Some(items) => serde_json::from_value(items),
            None => serde_json::from_value(serde_json::Value::Object(map)),
        },
        other => serde_json::from_value(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_bare_or_wrapped() {
        let bare: Vec<Viewer> = parse_list(r#"[{"user_id":"a","name":"A"}]"#, "viewers").unwrap();
        let wrapped: Vec<Viewer> =
            parse_list(r#"{"viewers":[{"user_id":"a","name":"A"}]}"#, "viewers").unwrap();
        assert_eq!(bare, wrapped);
        assert!(parse_list::<Viewer>(r#"{"other":[]}"#, "viewers").is_err());
    }

    #[test]
    fn me_reads_the_contract_shape_and_tolerates_missing_fields() {
        let me: Me = serde_json::from_str(
            r#"{"user":{"id":"u1","email":"a@x.dev","name":"Ada","avatar_url":null,
                "role":"admin","default_model":null},"team":{"id":"t","name":"T"},
                "csrf_token":"c"}"#,
        )
        .unwrap();
        assert_eq!(me.user.role, TeamRole::Admin);
        assert_eq!(me.csrf_token.as_deref(), Some("c"));
        let bare: Me =
            serde_json::from_str(r#"{"user":{"id":"u2","email":"b@x.dev","name":null}}"#).unwrap();
        assert_eq!(bare.user.role, TeamRole::Member);
        assert_eq!(bare.user.display_name(), "b@x.dev");
        let emailless: Member =
            serde_json::from_str(r#"{"id":"m","email":null,"name":"Bo","role":"admin"}"#).unwrap();
        assert_eq!(emailless.email, "");
    }

    #[test]
    fn a_new_key_never_prints_its_secret() {
        let key = NewLlmKey {
            scope: "user".into(),
            provider: "openai".into(),
            api_key: "sk-secret-123".into(),
            base_url: None,
            models: Vec::new(),
            name: None,
        };
        assert!(!format!("{key:?}").contains("sk-secret"));
    }

    #[test]
    fn a_profile_update_sends_only_what_changed() {
        let update = ProfileUpdate {
            name: Some("Ada".into()),
            default_model: None,
        };
        assert_eq!(serde_json::to_string(&update).unwrap(), r#"{"name":"Ada"}"#);
        let clear = ProfileUpdate {
            name: None,
            default_model: Some(String::new()),
        };
        assert_eq!(
            serde_json::to_string(&clear).unwrap(),
            r#"{"default_model":""}"#
        );
    }

    #[test]
    fn models_are_read_from_either_shape() {
        assert_eq!(parse_models(r#"["a","b"]"#), vec!["a", "b"]);
        assert_eq!(
            parse_models(r#"{"models":[{"id":"c"},"d",{"name":"x"}]}"#),
            vec!["c", "d"]
        );
        assert!(parse_models("<html>").is_empty());
    }

    #[test]
    fn team_member_labels() {
        let member = TeamMember {
            id: "1".into(),
            name: "Bo".into(),
            email: "bo@x.dev".into(),
        };
        assert_eq!(member.label(), "Bo <bo@x.dev>");
        let nameless = TeamMember {
            name: " ".into(),
            ..member
        };
        assert_eq!(nameless.label(), "bo@x.dev");
    }
}
