//! The team's admin routes (`/api/admin/*`, admins only, enforced by the router)
//! and the teammate list every member may read (`GET /api/team/members`).
//!
//! Removing a member keeps their sessions: they pass to the team (the `team` user),
//! where admins still reach them. The last admin cannot be demoted or removed.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::{
    CreateInviteRequest, InviteInfo, MemberInfo, PatchMemberRequest, RouteInfo, SigninPolicy,
    TeamMember, TeamRole, TeamSettings,
};
use nightshift_protocol::sleep::TeamSleep;
use serde::Deserialize;
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::d1::{self, Arg};
use crate::auth::{TEAM_ID, TEAM_USER_ID, User, random_token};
use crate::routes::{TABLE, method_name};
use crate::{body, clock, ids, limits, sleep_settings};

#[derive(Deserialize)]
struct MemberRow {
    id: String,
    email: Option<String>,
    display_name: String,
    role: String,
    joined_at: i64,
}

async fn members(env: &Env) -> ApiResult<Vec<MemberInfo>> {
    let rows: Vec<MemberRow> = d1::all(
        env,
        "SELECT u.id AS id, u.email AS email, u.display_name AS display_name, m.role AS role, \
         m.joined_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.team_id = ? ORDER BY m.joined_at, u.display_name",
        &[Arg::Text(TEAM_ID)],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| MemberInfo {
            id: row.id,
            email: row.email,
            name: row.display_name,
            role: TeamRole::parse(&row.role).unwrap_or(TeamRole::Member),
            joined_at: row.joined_at,
        })
        .collect())
}

pub async fn team_members(env: &Env) -> ApiResult<Response> {
    let list: Vec<TeamMember> = members(env)
        .await?
        .into_iter()
        .map(|member| TeamMember {
            id: member.id,
            name: member.name,
            email: member.email,
        })
        .collect();
    Ok(json(200, &list))
}

pub async fn list_members(env: &Env) -> ApiResult<Response> {
    Ok(json(200, &members(env).await?))
}

/// Refuses a change that would leave the team without an admin.
/// The condition (binding: the new role or `'removed'`, the team, the user) under
/// which a membership may change: it is not an admin's, or the change keeps it
/// admin, or another admin remains. Used inside the changing statement itself.
const KEEPS_AN_ADMIN: &str = "(memberships.role != 'admin' OR ? = 'admin' OR EXISTS \
     (SELECT 1 FROM memberships other WHERE other.team_id = ? AND other.role = 'admin' \
      AND other.user_id != ?))";

fn last_admin() -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        "the team's last admin cannot be demoted or removed; make someone else admin first",
    )
}

/// A friendly early refusal (404 or 409); the guarantee is [`KEEPS_AN_ADMIN`].
async fn keep_an_admin(env: &Env, user_id: &str) -> ApiResult<()> {
    let list = members(env).await?;
    let target = list
        .iter()
        .find(|member| member.id == user_id)
        .ok_or_else(|| ApiError::not_found(format!("no member {user_id}")))?;
    let admins = list
        .iter()
        .filter(|member| member.role == TeamRole::Admin)
        .count();
    if target.role == TeamRole::Admin && admins <= 1 {
        return Err(last_admin());
    }
    Ok(())
}

pub async fn patch_member(
    req: &mut Request,
    env: &Env,
    _admin: &User,
    user_id: &str,
) -> ApiResult<Response> {
    let request: PatchMemberRequest = body::read_json(req).await?;
    if request.role == TeamRole::Member {
        keep_an_admin(env, user_id).await?;
    }
    // The check and the change are one statement, so two admins demoting each other
    // at once cannot both pass a check made before either change.
    let changed = d1::run(
        env,
        &format!(
            "UPDATE memberships SET role = ? WHERE team_id = ? AND user_id = ? AND {KEEPS_AN_ADMIN}"
        ),
        &[
            Arg::Text(request.role.as_str()),
            Arg::Text(TEAM_ID),
            Arg::Text(user_id),
            Arg::Text(request.role.as_str()),
            Arg::Text(TEAM_ID),
            Arg::Text(user_id),
        ],
    )
    .await?;
    if changed == 0 {
        // Gone meanwhile (404), or the last admin by now (409).
        keep_an_admin(env, user_id).await?;
        return Err(last_admin());
    }
    crate::auth::cache::wait_out(user_id).await;
    let member = members(env)
        .await?
        .into_iter()
        .find(|member| member.id == user_id)
        .ok_or_else(|| ApiError::not_found(format!("no member {user_id}")))?;
    Ok(json(200, &member))
}

#[derive(Deserialize)]
struct SessionIdRow {
    id: String,
}

/// Sessions whose open streams of a removed member end at once; the rest (for
/// example ones they watched as an admin) end at the sessions' periodic access
/// checks.
const STREAMS_CLOSED_ON_REMOVAL: i64 = 100;

pub async fn remove_member(env: &Env, _admin: &User, user_id: &str) -> ApiResult<Response> {
    keep_an_admin(env, user_id).await?;
    let watched: Vec<SessionIdRow> = d1::all(
        env,
        "SELECT session_id AS id FROM session_shares WHERE user_id = ? \
         UNION SELECT id FROM sessions WHERE owner_id = ? LIMIT ?",
        &[
            Arg::Text(user_id),
            Arg::Text(user_id),
            Arg::Int(STREAMS_CLOSED_ON_REMOVAL),
        ],
    )
    .await?;
    // One transaction: the removal is conditional on an admin remaining (checked in
    // the statement), and the rest applies only if the membership is gone.
    const GONE: &str =
        "NOT EXISTS (SELECT 1 FROM memberships WHERE team_id = 'default' AND user_id = ?)";
    let statements = vec![
        d1::statement(
            env,
            &format!(
                "DELETE FROM memberships WHERE team_id = ? AND user_id = ? AND {KEEPS_AN_ADMIN}"
            ),
            &[
                Arg::Text(TEAM_ID),
                Arg::Text(user_id),
                Arg::Text("removed"),
                Arg::Text(TEAM_ID),
                Arg::Text(user_id),
            ],
        )?,
        // Their sessions stay, owned by the team.
        d1::statement(
            env,
            &format!("UPDATE sessions SET owner_id = ? WHERE owner_id = ? AND {GONE}"),
            &[
                Arg::Text(TEAM_USER_ID),
                Arg::Text(user_id),
                Arg::Text(user_id),
            ],
        )?,
        d1::statement(
            env,
            &format!("DELETE FROM session_shares WHERE user_id = ? AND {GONE}"),
            &[Arg::Text(user_id), Arg::Text(user_id)],
        )?,
        d1::statement(
            env,
            &format!("DELETE FROM auth_sessions WHERE user_id = ? AND {GONE}"),
            &[Arg::Text(user_id), Arg::Text(user_id)],
        )?,
        d1::statement(
            env,
            &format!(
                "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND {GONE}"
            ),
            &[
                Arg::Int(clock::now_ms()),
                Arg::Text(user_id),
                Arg::Text(user_id),
            ],
        )?,
    ];
    d1::batch(env, statements).await?;
    let still_member = members(env)
        .await?
        .iter()
        .any(|member| member.id == user_id);
    if still_member {
        return Err(last_admin());
    }
    let gone = [user_id.to_owned()];
    for session in &watched {
        // Their sessions' owner and shares changed.
        if let Err(error) = crate::internal::reload_access(env, &session.id).await {
            worker::console_warn!("session {}: {}", session.id, error.message);
        }
        crate::internal::close_streams(env, &session.id, &gone).await;
    }
    crate::auth::cache::wait_out(user_id).await;
    crate::internal::close_list_streams(env, &gone).await;
    Ok(Response::empty()?.with_status(204))
}

#[derive(Deserialize)]
struct InviteRow {
    id: String,
    token: String,
    role: String,
    email: Option<String>,
    expires_at: i64,
    max_uses: u32,
    uses: u32,
}

/// The origin the request came to (`https://host`), for links sent to people.
pub fn origin(req: &Request) -> ApiResult<String> {
    Ok(req.url()?.origin().ascii_serialization())
}

fn invite_info(row: InviteRow, origin: &str) -> InviteInfo {
    InviteInfo {
        url: format!("{origin}/invite/{}", row.token),
        id: row.id,
        token: row.token,
        role: TeamRole::parse(&row.role).unwrap_or(TeamRole::Member),
        email: row.email,
        expires_at: row.expires_at,
        max_uses: row.max_uses,
        uses: row.uses,
    }
}

const INVITE_COLUMNS: &str = "id, token, role, email, expires_at, max_uses, uses";

pub async fn list_invites(req: &Request, env: &Env) -> ApiResult<Response> {
    let origin = origin(req)?;
    let rows: Vec<InviteRow> = d1::all(
        env,
        &format!(
            "SELECT {INVITE_COLUMNS} FROM invites WHERE team_id = ? AND revoked_at IS NULL \
             ORDER BY created_at DESC"
        ),
        &[Arg::Text(TEAM_ID)],
    )
    .await?;
    let invites: Vec<InviteInfo> = rows
        .into_iter()
        .map(|row| invite_info(row, &origin))
        .collect();
    Ok(json(200, &invites))
}

/// Limits of an invite or share link.
pub const MAX_LINK_HOURS: u32 = 24 * 90;
pub const MAX_LINK_USES: u32 = 1000;

pub fn check_link_limits(expires_in_hours: u32, max_uses: u32) -> ApiResult<()> {
    if expires_in_hours == 0 || expires_in_hours > MAX_LINK_HOURS {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("expires_in_hours is 1 to {MAX_LINK_HOURS}"),
        ));
    }
    if max_uses == 0 || max_uses > MAX_LINK_USES {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("max_uses is 1 to {MAX_LINK_USES}"),
        ));
    }
    Ok(())
}

pub async fn create_invite(req: &mut Request, env: &Env, admin: &User) -> ApiResult<Response> {
    let request: CreateInviteRequest = body::read_json(req).await?;
    check_link_limits(request.expires_in_hours, request.max_uses)?;
    let email = request
        .email
        .as_deref()
        .map(|email| email.trim().to_lowercase())
        .filter(|email| !email.is_empty());
    if email
        .as_deref()
        .is_some_and(|email| !crate::access::valid_email(email))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "email is not an email address",
        ));
    }
    let now = clock::now_ms();
    let row = InviteRow {
        id: ids::new_id()?,
        token: random_token("", 24)?,
        role: request.role.as_str().to_owned(),
        email,
        expires_at: now + i64::from(request.expires_in_hours) * 3_600_000,
        max_uses: request.max_uses,
        uses: 0,
    };
    d1::run(
        env,
        "INSERT INTO invites (id, token, team_id, role, email, expires_at, max_uses, uses, \
         created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
        &[
            Arg::Text(&row.id),
            Arg::Text(&row.token),
            Arg::Text(TEAM_ID),
            Arg::Text(&row.role),
            Arg::OptText(row.email.as_deref()),
            Arg::Int(row.expires_at),
            Arg::Int(i64::from(row.max_uses)),
            Arg::Text(&admin.id),
            Arg::Int(now),
        ],
    )
    .await?;
    Ok(json(201, &invite_info(row, &origin(req)?)))
}

pub async fn revoke_invite(env: &Env, id: &str) -> ApiResult<Response> {
    let changed = d1::run(
        env,
        "UPDATE invites SET revoked_at = ? WHERE id = ? AND team_id = ? AND revoked_at IS NULL",
        &[Arg::Int(clock::now_ms()), Arg::Text(id), Arg::Text(TEAM_ID)],
    )
    .await?;
    if changed == 0 {
        return Err(ApiError::not_found(format!("no invite {id}")));
    }
    Ok(Response::empty()?.with_status(204))
}

#[derive(Deserialize)]
struct SettingsRow {
    signin_policy: String,
    allowed_domain: Option<String>,
    max_sleep_after_ms: Option<i64>,
}

async fn settings(env: &Env) -> ApiResult<TeamSettings> {
    let row: SettingsRow = d1::first(
        env,
        "SELECT signin_policy, allowed_domain, max_sleep_after_ms FROM teams WHERE id = ?",
        &[Arg::Text(TEAM_ID)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("the team row is missing"))?;
    Ok(TeamSettings {
        signin_policy: SigninPolicy::parse(&row.signin_policy).unwrap_or(SigninPolicy::InviteOnly),
        allowed_domain: row.allowed_domain,
        limits: Some(limits::read(env).await?),
        sleep: Some(TeamSleep {
            max_sleep_after_ms: sleep_settings::stored_ms(row.max_sleep_after_ms),
        }),
    })
}

pub async fn get_settings(env: &Env) -> ApiResult<Response> {
    Ok(json(200, &settings(env).await?))
}

pub async fn put_settings(req: &mut Request, env: &Env) -> ApiResult<Response> {
    let request: TeamSettings = body::read_json(req).await?;
    let domain = request
        .allowed_domain
        .as_deref()
        .map(|domain| domain.trim().trim_start_matches('@').to_lowercase())
        .filter(|domain| !domain.is_empty());
    if request.signin_policy == SigninPolicy::Domain
        && !domain
            .as_deref()
            .is_some_and(|domain| crate::access::valid_email(&format!("x@{domain}")))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the domain policy needs allowed_domain, such as example.com",
        ));
    }
    if let Some(limits) = &request.limits {
        limits
            .validate()
            .map_err(|message| ApiError::new(ErrorCode::InvalidRequest, message))?;
    }
    if let Some(sleep) = &request.sleep {
        sleep_settings::bounds(env)
            .check_team_max(sleep.max_sleep_after_ms)
            .map_err(|message| ApiError::new(ErrorCode::InvalidRequest, message))?;
    }
    // The sleep maximum changes in the same statement as the policy, or not at all.
    let max_sleep = request.sleep.map(|sleep| {
        sleep
            .max_sleep_after_ms
            .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX))
    });
    let before = settings(env).await?;
    d1::run(
        env,
        "UPDATE teams SET signin_policy = ?, allowed_domain = ?, \
         max_sleep_after_ms = CASE WHEN ? THEN ? ELSE max_sleep_after_ms END WHERE id = ?",
        &[
            Arg::Text(request.signin_policy.as_str()),
            Arg::OptText(domain.as_deref()),
            Arg::Int(i64::from(max_sleep.is_some())),
            Arg::OptInt(max_sleep.flatten()),
            Arg::Text(TEAM_ID),
        ],
    )
    .await?;
    if let Some(limits) = &request.limits {
        limits::store(env, limits).await?;
    }
    let after = settings(env).await?;
    if after.sleep != before.sleep {
        // Every live session's time may have changed; each reads it again now.
        sleep_settings::tell_sessions(env, None).await;
    }
    Ok(json(200, &after))
}

/// `GET /api/admin/routes`: the router's table with each route's access.
pub fn list_routes() -> Response {
    let routes: Vec<RouteInfo> = TABLE
        .iter()
        .map(|row| RouteInfo {
            method: method_name(&row.method).to_owned(),
            path: row.path.to_owned(),
            access: row.access,
        })
        .collect();
    json(200, &routes)
}
