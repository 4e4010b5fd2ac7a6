//! REST bodies of sign-in, teams, sharing, API tokens and LLM keys (`/auth/*`,
//! `/api/me`, `/api/tokens`, `/api/admin/*`, `/api/sessions/{id}/shares`,
//! `/api/keys`). See docs/API.md for the routes.
//!
//! Requests refuse unknown fields; answers may gain fields (clients ignore unknown
//! ones). Answers are also read leniently where a field may be missing or `null`
//! (it takes its default), so an app never fails on a server that leaves one out;
//! that changes nothing the Worker sends or accepts.

use serde::{Deserialize, Serialize};

use crate::roles::strict_team_role;
pub use crate::roles::{Access, SessionRole, TeamRole};

/// A string field that may come as `null` or not at all: read as `""`.
fn nullable<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

/// Whose LLM key a turn used (shown in the session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmSource {
    /// The prompting user's own key.
    User,
    /// A team-wide key.
    Team,
    /// The deployment's environment (`LLM_*`, `ANTHROPIC_*`).
    Environment,
}

impl LlmSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LlmSource::User => "user",
            LlmSource::Team => "team",
            LlmSource::Environment => "environment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => LlmSource::User,
            "team" => LlmSource::Team,
            "environment" => LlmSource::Environment,
            _ => return None,
        })
    }
}

/// A session's owner, as the session JSON names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OwnerInfo {
    pub id: String,
    pub name: String,
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub role: TeamRole,
    #[serde(default)]
    pub default_model: Option<String>,
}

impl UserInfo {
    /// The name to show: the profile name, else the email.
    pub fn display_name(&self) -> &str {
        if self.name.trim().is_empty() {
            self.email.as_deref().unwrap_or_default()
        } else {
            &self.name
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamInfo {
    pub id: String,
    pub name: String,
}

/// `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user: UserInfo,
    #[serde(default)]
    pub team: TeamInfo,
    /// Send as `X-CSRF-Token` with every state-changing request authenticated by the
    /// session cookie. Empty for bearer-token requests (they need none).
    #[serde(default, deserialize_with = "nullable")]
    pub csrf_token: String,
}

/// `PATCH /api/me`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A model id; `""` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
}

/// `POST /auth/dev/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevLoginRequest {
    pub email: String,
    pub name: String,
    #[serde(default)]
    pub invite: Option<String>,
}

/// The answer to `POST /auth/dev/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub user: UserInfo,
}

/// `GET /auth/providers`: which sign-in buttons to show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Providers {
    pub github: bool,
    pub google: bool,
    pub dev: bool,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// `GET` routes and event streams.
    Read,
    /// Everything else (prompting, creating, changing).
    Write,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Write => "write",
        }
    }
}

/// An API token as listed (the secret itself is shown only once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenInfo {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<TokenScope>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// `POST /api/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    pub scopes: Vec<TokenScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// The 201 answer to `POST /api/tokens`: `token` is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: ApiTokenInfo,
}

/// `GET /api/admin/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub role: TeamRole,
    #[serde(default)]
    pub joined_at: i64,
}

/// `PATCH /api/admin/members/{user_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMemberRequest {
    #[serde(deserialize_with = "strict_team_role")]
    pub role: TeamRole,
}

/// An invite link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub token: String,
    #[serde(default, deserialize_with = "nullable")]
    pub url: String,
    #[serde(default)]
    pub role: TeamRole,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default)]
    pub max_uses: u32,
    #[serde(default)]
    pub uses: u32,
}

/// `POST /api/admin/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    #[serde(deserialize_with = "strict_team_role")]
    pub role: TeamRole,
    pub expires_in_hours: u32,
    pub max_uses: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Who may sign in besides existing members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigninPolicy {
    /// Only people holding a valid invite.
    InviteOnly,
    /// Anyone whose verified email is in `allowed_domain` (and invitees).
    Domain,
    /// Anyone with a verified email.
    Open,
}

impl SigninPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SigninPolicy::InviteOnly => "invite_only",
            SigninPolicy::Domain => "domain",
            SigninPolicy::Open => "open",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "invite_only" => SigninPolicy::InviteOnly,
            "domain" => SigninPolicy::Domain,
            "open" => SigninPolicy::Open,
            _ => return None,
        })
    }
}

/// `GET`/`PUT /api/admin/settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSettings {
    pub signin_policy: SigninPolicy,
    #[serde(default)]
    pub allowed_domain: Option<String>,
    /// The caps every member is held to: always answered; a `PUT` without it keeps
    /// them as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UsageLimits>,
    /// The team's maximum sleep time: always answered; a `PUT` without it keeps it as
    /// it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<crate::sleep::TeamSleep>,
}

/// The caps every member is held to (`TeamSettings::limits`). Going over one answers
/// 429 `quota_exceeded` and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageLimits {
    /// Sessions one member may own that are not in `error`; each holds one sandbox,
    /// so this caps their sandboxes too.
    pub live_sessions: u32,
    /// Prompts that may wait in one session.
    pub queued_prompts: u32,
    /// Event streams (a session's, or the session list's) one member may hold open.
    pub open_streams: u32,
    /// LLM keys one member may store; the team's keys are capped by the same number.
    pub keys: u32,
}

impl UsageLimits {
    /// The largest value any cap takes.
    pub const MAX: u32 = 100_000;

    /// Each cap lies within `1..=MAX`.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("live_sessions", self.live_sessions),
            ("queued_prompts", self.queued_prompts),
            ("open_streams", self.open_streams),
            ("keys", self.keys),
        ] {
            if !(1..=Self::MAX).contains(&value) {
                return Err(format!("{name} must be between 1 and {}", Self::MAX));
            }
        }
        Ok(())
    }
}

/// A teammate, for the share picker (`GET /api/team/members`) and presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

impl TeamMember {
    /// "Name <email>", or whichever of the two is known.
    pub fn label(&self) -> String {
        let email = self.email.as_deref().unwrap_or_default();
        match (self.name.trim().is_empty(), email.is_empty()) {
            (false, false) => format!("{} <{email}>", self.name),
            (false, true) => self.name.clone(),
            _ => email.to_owned(),
        }
    }
}

/// One person a session is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    pub user_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub role: SessionRole,
}

/// A share link of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLinkInfo {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub url: String,
    pub role: SessionRole,
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default)]
    pub max_uses: u32,
    #[serde(default)]
    pub uses: u32,
}

/// `GET /api/sessions/{id}/shares`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SharesList {
    pub shares: Vec<ShareInfo>,
    pub links: Vec<ShareLinkInfo>,
}

/// `PUT /api/sessions/{id}/shares/{user_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutShareRequest {
    pub role: SessionRole,
}

/// `POST /api/sessions/{id}/share-links`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateShareLinkRequest {
    pub role: SessionRole,
    pub expires_in_hours: u32,
    pub max_uses: u32,
}

/// `POST /api/share-links/{token}/accept`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptShareResponse {
    pub session_id: String,
    pub role: SessionRole,
}

/// Someone watching a session now (`GET /api/sessions/{id}/presence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub user_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

/// One row of the router's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    pub method: String,
    pub path: String,
    pub access: Access,
}

/// Which kind of endpoint an LLM key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyProvider {
    Anthropic,
    Openai,
    OpenaiCompatible,
}

impl KeyProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyProvider::Anthropic => "anthropic",
            KeyProvider::Openai => "openai",
            KeyProvider::OpenaiCompatible => "openai_compatible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "anthropic" => KeyProvider::Anthropic,
            "openai" => KeyProvider::Openai,
            "openai_compatible" => KeyProvider::OpenaiCompatible,
            _ => return None,
        })
    }
}

/// Whose a stored key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    User,
    Team,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::User => "user",
            KeyScope::Team => "team",
        }
    }
}

/// A stored LLM key as listed: never the key itself, only its last four characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub scope: KeyScope,
    pub provider: KeyProvider,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub last4: String,
    #[serde(default)]
    pub created_at: i64,
}

/// `POST /api/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub scope: KeyScope,
    pub provider: KeyProvider,
    pub api_key: crate::redacted::Redacted<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order() {
        for role in [
            SessionRole::Viewer,
            SessionRole::Collaborator,
            SessionRole::CoOwner,
            SessionRole::Admin,
            SessionRole::Owner,
        ] {
            assert_eq!(SessionRole::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        assert!(SessionRole::Viewer < SessionRole::Collaborator);
        assert!(SessionRole::CoOwner < SessionRole::Owner);
        assert!(!SessionRole::Owner.is_shareable());
        for policy in [
            SigninPolicy::InviteOnly,
            SigninPolicy::Domain,
            SigninPolicy::Open,
        ] {
            assert_eq!(SigninPolicy::parse(policy.as_str()), Some(policy));
            assert_eq!(serde_json::to_value(policy).unwrap(), policy.as_str());
        }
    }

    #[test]
    fn key_requests_never_print_the_key() {
        let request = CreateKeyRequest {
            scope: KeyScope::User,
            provider: KeyProvider::Anthropic,
            api_key: "sk-secret-1234".into(),
            base_url: None,
            models: None,
            name: None,
        };
        assert!(!format!("{request:?}").contains("sk-secret"));
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
        assert_eq!(me.csrf_token, "c");
        let bare: Me =
            serde_json::from_str(r#"{"user":{"id":"u2","email":"b@x.dev","name":null}}"#).unwrap();
        assert_eq!(bare.user.role, TeamRole::Member);
        assert_eq!(bare.user.display_name(), "b@x.dev");
        let emailless: MemberInfo =
            serde_json::from_str(r#"{"id":"m","email":null,"name":"Bo","role":"admin"}"#).unwrap();
        assert_eq!(emailless.email.as_deref().unwrap_or_default(), "");
    }

    #[test]
    fn a_profile_update_sends_only_what_changed() {
        let update = PatchMeRequest {
            name: Some("Ada".into()),
            default_model: None,
        };
        assert_eq!(serde_json::to_string(&update).unwrap(), r#"{"name":"Ada"}"#);
        let clear = PatchMeRequest {
            name: None,
            default_model: Some(String::new()),
        };
        assert_eq!(
            serde_json::to_string(&clear).unwrap(),
            r#"{"default_model":""}"#
        );
    }

    #[test]
    fn requests_name_team_roles_exactly() {
        let refused = serde_json::from_str::<PatchMemberRequest>(r#"{"role":"guest"}"#);
        assert!(refused.is_err());
        let refused = serde_json::from_str::<CreateInviteRequest>(
            r#"{"role":"owner","expires_in_hours":1,"max_uses":1}"#,
        );
        assert!(refused.is_err());
    }

    #[test]
    fn team_member_labels() {
        let member = TeamMember {
            id: "1".into(),
            name: "Bo".into(),
            email: Some("bo@x.dev".into()),
        };
        assert_eq!(member.label(), "Bo <bo@x.dev>");
        let nameless = TeamMember {
            name: " ".into(),
            ..member
        };
        assert_eq!(nameless.label(), "bo@x.dev");
    }

    #[test]
    fn created_tokens_flatten_their_info() {
        let created = CreatedToken {
            token: "ns_x".into(),
            info: ApiTokenInfo {
                id: "t".into(),
                name: "ci".into(),
                scopes: vec![TokenScope::Read],
                created_at: 1,
                last_used_at: None,
                expires_at: None,
            },
        };
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json["token"], "ns_x");
        assert_eq!(json["scopes"][0], "read");
    }
}
