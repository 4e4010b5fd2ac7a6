//! Turning a verified identity (from GitHub, Google or the development form) into a
//! team member and a signed-in browser.
//!
//! The rules (first user is admin, invites, the sign-in policy) are
//! [`crate::access::decide_signin`]; this module reads the facts from D1, applies the
//! decision and creates the server-side session whose cookie the browser keeps.

use nightshift_protocol::auth::{SigninPolicy, TeamRole};
use serde::Deserialize;
use worker::{Env, Request};

use super::d1::{self, Arg};
use super::{MEMBER_COLUMNS, MEMBER_JOIN, MemberRow, SESSION_COOKIE, SESSION_TTL_SECS, TEAM_ID};
use crate::access::{self, InviteFacts, SigninDecision, SigninFacts};
use crate::api_error::ApiResult;
use crate::{clock, ids};

/// Where an identity comes from, with the provider's stable user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    Dev,
    Github(String),
    Google(String),
}

/// A person whose email the provider verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub email: String,
    pub name: String,
    pub avatar_url: Option<String>,
    pub provider: Provider,
}

#[derive(Deserialize)]
struct TeamRow {
    signin_policy: String,
    allowed_domain: Option<String>,
    members: u32,
}

#[derive(Deserialize)]
struct InviteRow {
    role: String,
    email: Option<String>,
    expires_at: i64,
    max_uses: u32,
    uses: u32,
    revoked_at: Option<i64>,
}

/// Signs `identity` in: answers the member's user id, or the refusal code that
/// `/signin?error=` shows (`invite_invalid`, `signin_not_allowed`).
pub async fn sign_in(
    env: &Env,
    identity: &Identity,
    invite: Option<&str>,
) -> ApiResult<Result<String, &'static str>> {
    let email = identity.email.trim().to_lowercase();
    let existing = find_user(env, identity, &email).await?;
    let team: TeamRow = d1::first(
        env,
        "SELECT t.signin_policy AS signin_policy, t.allowed_domain AS allowed_domain, \
         (SELECT COUNT(*) FROM memberships m WHERE m.team_id = t.id) AS members \
         FROM teams t WHERE t.id = ?",
        &[Arg::Text(TEAM_ID)],
    )
    .await?
    .ok_or_else(|| crate::api_error::ApiError::internal("the team row is missing"))?;
    let invite = invite.map(str::trim).filter(|token| !token.is_empty());
    // The setup code stands in for an invite to the first admin's seat; it is no
    // invite at all once the team has members.
    let setup_code = crate::config::var(env, "SETUP_CODE");
    let presented_setup = match (invite, setup_code.as_deref()) {
        (Some(token), Some(code)) => constant_time_eq(token.as_bytes(), code.as_bytes()),
        _ => false,
    };
    let operator_admin = crate::config::var(env, "ADMIN_EMAILS").is_some_and(|list| {
        list.split([',', ' ', '\n'])
            .map(str::trim)
            .any(|listed| !listed.is_empty() && listed.eq_ignore_ascii_case(&email))
    });
    let operator_vouched = presented_setup || identity.provider == Provider::Dev;
    let invite = if presented_setup && team.members == 0 {
        None
    } else {
        invite
    };
    let invite_facts = match invite {
        Some(token) => d1::first::<InviteRow>(
            env,
            "SELECT role, email, expires_at, max_uses, uses, revoked_at FROM invites WHERE token = ?",
            &[Arg::Text(token)],
        )
        .await?
        .and_then(|row| {
            Some(InviteFacts {
                role: TeamRole::parse(&row.role)?,
                email: row.email,
                expires_at: row.expires_at,
                max_uses: row.max_uses,
                uses: row.uses,
                revoked: row.revoked_at.is_some(),
            })
        }),
        None => None,
    };
    let existing_role = existing
        .as_ref()
        .and_then(|row| row.role.as_deref())
        .and_then(TeamRole::parse);
    let now = clock::now_ms();
    let decision = access::decide_signin(SigninFacts {
        existing: existing_role,
        team_has_members: team.members > 0,
        invite: invite_facts.as_ref(),
        invite_presented: invite.is_some(),
        policy: SigninPolicy::parse(&team.signin_policy).unwrap_or(SigninPolicy::InviteOnly),
        allowed_domain: team.allowed_domain.as_deref(),
        email: &email,
        now_ms: now,
        operator_admin,
        operator_vouched,
    });
    let (role, use_invite) = match decision {
        SigninDecision::Refuse(code) => return Ok(Err(code)),
        SigninDecision::Member(_) => {
            let user_id = existing.map(|row| row.id).unwrap_or_default();
            update_profile(env, &user_id, identity).await?;
            return Ok(Ok(user_id));
        }
        SigninDecision::Join { role, use_invite } => (role, use_invite),
        SigninDecision::FirstAdmin => (TeamRole::Admin, false),
    };
    let first_admin = decision == SigninDecision::FirstAdmin;
    if use_invite {
        let token = invite.unwrap_or_default();
        let used = d1::run(
            env,
            "UPDATE invites SET uses = uses + 1 WHERE token = ? AND uses < max_uses \
             AND revoked_at IS NULL AND expires_at > ?",
            &[Arg::Text(token), Arg::Int(now)],
        )
        .await?;
        if used == 0 {
            return Ok(Err("invite_invalid"));
        }
    }
    let user_id = match existing {
        Some(row) => {
            update_profile(env, &row.id, identity).await?;
            row.id
        }
        None => create_user(env, identity, &email, now).await?,
    };
    // The first member becomes admin only if the team is still empty when the row
    // is written, so two simultaneous first sign-ins cannot both become admin.
    let joined = if first_admin {
        d1::run(
            env,
            "INSERT INTO memberships (team_id, user_id, role, joined_at) \
             SELECT ?, ?, 'admin', ? WHERE NOT EXISTS \
             (SELECT 1 FROM memberships WHERE team_id = ?)",
            &[
                Arg::Text(TEAM_ID),
                Arg::Text(&user_id),
                Arg::Int(now),
                Arg::Text(TEAM_ID),
            ],
        )
        .await?
    } else {
        d1::run(
            env,
            "INSERT OR IGNORE INTO memberships (team_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
            &[
                Arg::Text(TEAM_ID),
                Arg::Text(&user_id),
                Arg::Text(role.as_str()),
                Arg::Int(now),
            ],
        )
        .await?
    };
    if joined == 0 {
        return Ok(Err("signin_not_allowed"));
    }
    Ok(Ok(user_id))
}

async fn find_user(env: &Env, identity: &Identity, email: &str) -> ApiResult<Option<MemberRow>> {
    let by_provider = match &identity.provider {
        Provider::Dev => None,
        Provider::Github(id) => Some(("github_id", id.as_str())),
        Provider::Google(id) => Some(("google_id", id.as_str())),
    };
    if let Some((column, id)) = by_provider {
        let row = d1::first::<MemberRow>(
            env,
            &format!("SELECT {MEMBER_COLUMNS} FROM users u {MEMBER_JOIN} WHERE u.{column} = ?"),
            &[Arg::Text(id)],
        )
        .await?;
        if row.is_some() {
            return Ok(row);
        }
    }
    d1::first::<MemberRow>(
        env,
        &format!("SELECT {MEMBER_COLUMNS} FROM users u {MEMBER_JOIN} WHERE lower(u.email) = ?"),
        &[Arg::Text(email)],
    )
    .await
}

/// Compares two secrets without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn provider_column(provider: &Provider) -> Option<(&'static str, &str)> {
    match provider {
        Provider::Dev => None,
        Provider::Github(id) => Some(("github_id", id)),
        Provider::Google(id) => Some(("google_id", id)),
    }
}

async fn create_user(env: &Env, identity: &Identity, email: &str, now: i64) -> ApiResult<String> {
    let id = ids::new_id()?;
    d1::run(
        env,
        "INSERT INTO users (id, email, display_name, avatar_url, created_at) VALUES (?, ?, ?, ?, ?)",
        &[
            Arg::Text(&id),
            Arg::Text(email),
            Arg::Text(display_name(identity, email).as_str()),
            Arg::OptText(identity.avatar_url.as_deref()),
            Arg::Int(now),
        ],
    )
    .await?;
    if let Some((column, provider_id)) = provider_column(&identity.provider) {
        d1::run(
            env,
            &format!("UPDATE users SET {column} = ? WHERE id = ?"),
            &[Arg::Text(provider_id), Arg::Text(&id)],
        )
        .await?;
    }
    Ok(id)
}

/// Remembers the provider identity and fills a missing avatar; the name the user
/// chose in their profile is kept.
async fn update_profile(env: &Env, user_id: &str, identity: &Identity) -> ApiResult<()> {
    if let Some((column, provider_id)) = provider_column(&identity.provider) {
        d1::run(
            env,
            &format!(
                "UPDATE users SET {column} = ?, avatar_url = COALESCE(avatar_url, ?) WHERE id = ?"
            ),
            &[
                Arg::Text(provider_id),
                Arg::OptText(identity.avatar_url.as_deref()),
                Arg::Text(user_id),
            ],
        )
        .await?;
    }
    Ok(())
}

fn display_name(identity: &Identity, email: &str) -> String {
    let name = identity.name.trim();
    let name = if name.is_empty() {
        email.split('@').next().unwrap_or(email)
    } else {
        name
    };
    name.chars().take(100).collect()
}

/// Creates a server-side session for `user_id`; answers the cookie's `Set-Cookie`
/// value. Only the token's hash is stored.
pub async fn start_session(env: &Env, req: &Request, user_id: &str) -> ApiResult<String> {
    let token = super::random_token("", 32)?;
    let now = clock::now_ms();
    d1::run(
        env,
        "INSERT INTO auth_sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        &[
            Arg::Text(&access::sha256_hex(&token)),
            Arg::Text(user_id),
            Arg::Int(now),
            Arg::Int(now + (SESSION_TTL_SECS * 1000) as i64),
        ],
    )
    .await?;
    Ok(access::set_cookie(
        SESSION_COOKIE,
        &token,
        SESSION_TTL_SECS,
        secure_cookies(req),
    ))
}

/// Whether cookies set in answer to `req` must be `Secure`.
pub fn secure_cookies(req: &Request) -> bool {
    req.url()
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .is_none_or(|host| access::cookie_secure(&host))
}
