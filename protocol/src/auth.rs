//! REST bodies of sign-in, teams, sharing, API tokens and LLM keys (`/auth/*`,
//! `/api/me`, `/api/tokens`, `/api/admin/*`, `/api/sessions/{id}/shares`,
//! `/api/keys`). See docs/API.md for the routes.
//!
//! Requests refuse unknown fields; answers may gain fields (clients ignore unknown
//! ones).

use serde::{Deserialize, Serialize};

/// A team role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    Admin,
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
        matches!(
            self,
            SessionRole::Viewer | SessionRole::Collaborator | SessionRole::CoOwner
        )
    }
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerInfo {
    pub id: String,
    pub name: String,
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: String,
    pub email: Option<String>,
    pub name: String,
    pub avatar_url: Option<String>,
    pub role: TeamRole,
    pub default_model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamInfo {
    pub id: String,
    pub name: String,
}

/// `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user: UserInfo,
    pub team: TeamInfo,
    /// Send as `X-CSRF-Token` with every state-changing request authenticated by the
    /// session cookie. Empty for bearer-token requests (they need none).
    pub csrf_token: String,
}

/// `PATCH /api/me`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMeRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// A model id; `""` clears it.
    #[serde(default)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// An API token as listed (the secret itself is shown only once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<TokenScope>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// `POST /api/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    pub scopes: Vec<TokenScope>,
    #[serde(default)]
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
    pub email: Option<String>,
    pub name: String,
    pub role: TeamRole,
    pub joined_at: i64,
}

/// `PATCH /api/admin/members/{user_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMemberRequest {
    pub role: TeamRole,
}

/// An invite link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub id: String,
    pub token: String,
    pub url: String,
    pub role: TeamRole,
    pub email: Option<String>,
    pub expires_at: i64,
    pub max_uses: u32,
    pub uses: u32,
}

/// `POST /api/admin/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    pub role: TeamRole,
    pub expires_in_hours: u32,
    pub max_uses: u32,
    #[serde(default)]
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
    pub name: String,
    pub email: Option<String>,
}

/// One person a session is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: SessionRole,
}

/// A share link of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLinkInfo {
    pub id: String,
    pub url: String,
    pub role: SessionRole,
    pub expires_at: i64,
    pub max_uses: u32,
    pub uses: u32,
}

/// `GET /api/sessions/{id}/shares`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub name: String,
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

/// Whose a stored key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    User,
    Team,
}

/// A stored LLM key as listed: never the key itself, only its last four characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub scope: KeyScope,
    pub provider: KeyProvider,
    pub name: String,
    pub base_url: Option<String>,
    pub models: Vec<String>,
    pub last4: String,
    pub created_at: i64,
}

/// `POST /api/keys`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub scope: KeyScope,
    pub provider: KeyProvider,
    pub api_key: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub name: Option<String>,
}

impl std::fmt::Debug for CreateKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateKeyRequest")
            .field("scope", &self.scope)
            .field("provider", &self.provider)
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("models", &self.models)
            .field("name", &self.name)
            .finish()
    }
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
