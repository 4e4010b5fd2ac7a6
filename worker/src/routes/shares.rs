//! Sharing a session: with teammates (`/api/sessions/{id}/shares/{user_id}`) and by
//! link (`/api/sessions/{id}/share-links`, accepted with
//! `POST /api/share-links/{token}/accept`). The router admits only those who manage
//! the session (owner, co-owner, team admin) to the share routes.
//!
//! A link grants only while its creator still manages the session, and never to
//! someone removed from the session's shares after it was made
//! ([`access::share_link_grants`]). Listing links (their tokens) needs a cookie or
//! a `write` token ([`access::may_read_grants`]).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::{
    AcceptShareResponse, CreateShareLinkRequest, PutShareRequest, SessionRole, ShareInfo,
    ShareLinkInfo, SharesList, TeamRole,
};
use serde::Deserialize;
use worker::{Env, Request, Response};

use super::admin::{check_link_limits, origin};
use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::d1::{self, Arg};
use crate::auth::{AuthMethod, TEAM_ID, User, random_token};
use crate::{access, session_access};
use crate::{body, clock, ids};

#[derive(Deserialize)]
struct ShareRow {
    user_id: String,
    display_name: String,
    email: Option<String>,
    role: String,
}

#[derive(Deserialize)]
struct LinkRow {
    id: String,
    token: String,
    role: String,
    expires_at: i64,
    max_uses: u32,
    uses: u32,
}

fn link_info(row: LinkRow, origin: &str) -> ShareLinkInfo {
    ShareLinkInfo {
        url: format!("{origin}/share/{}", row.token),
        id: row.id,
        role: SessionRole::parse(&row.role).unwrap_or(SessionRole::Viewer),
        expires_at: row.expires_at,
        max_uses: row.max_uses,
        uses: row.uses,
    }
}

pub async fn list(req: &Request, env: &Env, user: &User, session_id: &str) -> ApiResult<Response> {
    require_grant_reader(user)?;
    let shares: Vec<ShareRow> = d1::all(
        env,
        "SELECT sh.user_id AS user_id, u.display_name AS display_name, u.email AS email, \
         sh.role AS role FROM session_shares sh JOIN users u ON u.id = sh.user_id \
         WHERE sh.session_id = ? ORDER BY sh.created_at",
        &[Arg::Text(session_id)],
    )
    .await?;
    let links: Vec<LinkRow> = d1::all(
        env,
        "SELECT id, token, role, expires_at, max_uses, uses FROM share_links \
         WHERE session_id = ? ORDER BY created_at",
        &[Arg::Text(session_id)],
    )
    .await?;
    let origin = origin(req)?;
    let list = SharesList {
        shares: shares
            .into_iter()
            .filter_map(|row| {
                Some(ShareInfo {
                    role: SessionRole::parse(&row.role)?,
                    user_id: row.user_id,
                    name: row.display_name,
                    email: row.email,
                })
            })
            .collect(),
        links: links
            .into_iter()
            .map(|row| link_info(row, &origin))
            .collect(),
    };
    Ok(json(200, &list))
}

fn shareable(role: SessionRole) -> ApiResult<()> {
    if role.is_shareable() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "a session is shared as viewer, collaborator or co_owner",
        ))
    }
}

#[derive(Deserialize)]
struct OwnerRow {
    owner_id: String,
}

pub async fn put(
    req: &mut Request,
    env: &Env,
    user: &User,
    session_id: &str,
    user_id: &str,
) -> ApiResult<Response> {
    let request: PutShareRequest = body::read_json(req).await?;
    shareable(request.role)?;
    let member: Option<ShareRow> = d1::first(
        env,
        "SELECT u.id AS user_id, u.display_name AS display_name, u.email AS email, m.role AS role \
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.team_id = ? AND m.user_id = ?",
        &[Arg::Text(TEAM_ID), Arg::Text(user_id)],
    )
    .await?;
    let member = member.ok_or_else(|| ApiError::not_found(format!("no teammate {user_id}")))?;
    let owner: Option<OwnerRow> = d1::first(
        env,
        "SELECT owner_id FROM sessions WHERE id = ?",
        &[Arg::Text(session_id)],
    )
    .await?;
    if owner.is_some_and(|owner| owner.owner_id == user_id) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the owner of a session needs no share",
        ));
    }
    d1::run(
        env,
        "INSERT INTO session_shares (session_id, user_id, role, created_by, created_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, user_id) DO UPDATE SET role = excluded.role",
        &[
            Arg::Text(session_id),
            Arg::Text(user_id),
            Arg::Text(request.role.as_str()),
            Arg::Text(&user.id),
            Arg::Int(clock::now_ms()),
        ],
    )
    .await?;
    crate::internal::reload_access(env, session_id).await?;
    Ok(json(
        200,
        &ShareInfo {
            user_id: member.user_id,
            name: member.display_name,
            email: member.email,
            role: request.role,
        },
    ))
}

pub async fn delete(env: &Env, session_id: &str, user_id: &str) -> ApiResult<Response> {
    let changed = d1::run(
        env,
        "DELETE FROM session_shares WHERE session_id = ? AND user_id = ?",
        &[Arg::Text(session_id), Arg::Text(user_id)],
    )
    .await?;
    if changed == 0 {
        return Err(ApiError::not_found(format!(
            "session {session_id} is not shared with {user_id}"
        )));
    }
    // Links made before now cannot bring them back.
    d1::run(
        env,
        "INSERT INTO share_removals (session_id, user_id, removed_at) VALUES (?, ?, ?) \
         ON CONFLICT (session_id, user_id) DO UPDATE SET removed_at = excluded.removed_at",
        &[
            Arg::Text(session_id),
            Arg::Text(user_id),
            Arg::Int(clock::now_ms()),
        ],
    )
    .await?;
    crate::internal::reload_access(env, session_id).await?;
    // Streams they hold open end now, unless they still see it another way.
    session_access::end_streams_without_access(env, session_id, user_id).await;
    Ok(Response::empty()?.with_status(204))
}

/// Refuses a read-only API token: grant tokens let their holder in.
pub fn require_grant_reader(user: &User) -> ApiResult<()> {
    match &user.method {
        AuthMethod::Token { scopes, .. } if !access::may_read_grants(scopes) => Err(ApiError::new(
            ErrorCode::InsufficientScope,
            "invite and share-link tokens are shown only with a cookie or a `write` token",
        )),
        _ => Ok(()),
    }
}

pub async fn create_link(
    req: &mut Request,
    env: &Env,
    user: &User,
    session_id: &str,
) -> ApiResult<Response> {
    let request: CreateShareLinkRequest = body::read_json(req).await?;
    shareable(request.role)?;
    check_link_limits(request.expires_in_hours, request.max_uses)?;
    let now = clock::now_ms();
    let row = LinkRow {
        id: ids::new_id()?,
        token: random_token("", 24)?,
        role: request.role.as_str().to_owned(),
        expires_at: now + i64::from(request.expires_in_hours) * 3_600_000,
        max_uses: request.max_uses,
        uses: 0,
    };
    d1::run(
        env,
        "INSERT INTO share_links (id, session_id, token, role, expires_at, max_uses, uses, \
         created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        &[
            Arg::Text(&row.id),
            Arg::Text(session_id),
            Arg::Text(&row.token),
            Arg::Text(&row.role),
            Arg::Int(row.expires_at),
            Arg::Int(i64::from(row.max_uses)),
            Arg::Text(&user.id),
            Arg::Int(now),
        ],
    )
    .await?;
    Ok(json(201, &link_info(row, &origin(req)?)))
}

pub async fn delete_link(env: &Env, session_id: &str, link_id: &str) -> ApiResult<Response> {
    let changed = d1::run(
        env,
        "DELETE FROM share_links WHERE id = ? AND session_id = ?",
        &[Arg::Text(link_id), Arg::Text(session_id)],
    )
    .await?;
    if changed == 0 {
        return Err(ApiError::not_found(format!("no share link {link_id}")));
    }
    Ok(Response::empty()?.with_status(204))
}

#[derive(Deserialize)]
struct AcceptRow {
    session_id: String,
    role: String,
    created_by: String,
    created_at: i64,
    creator_team_role: Option<String>,
    removed_at: Option<i64>,
}

/// Accepting a link grants its role, never less than the user already has.
pub async fn accept(env: &Env, user: &User, token: &str) -> ApiResult<Response> {
    let now = clock::now_ms();
    let invalid = || ApiError::not_found("this share link is unknown, expired or used up");
    let link: AcceptRow = d1::first(
        env,
        "SELECT l.session_id AS session_id, l.role AS role, l.created_by AS created_by, \
         l.created_at AS created_at, m.role AS creator_team_role, r.removed_at AS removed_at \
         FROM share_links l \
         LEFT JOIN memberships m ON m.user_id = l.created_by AND m.team_id = ? \
         LEFT JOIN share_removals r ON r.session_id = l.session_id AND r.user_id = ? \
         WHERE l.token = ? AND l.expires_at > ? AND l.uses < l.max_uses",
        &[
            Arg::Text(TEAM_ID),
            Arg::Text(&user.id),
            Arg::Text(token),
            Arg::Int(now),
        ],
    )
    .await?
    .ok_or_else(invalid)?;
    let granted = SessionRole::parse(&link.role).ok_or_else(invalid)?;
    let creator_role = match link.creator_team_role.as_deref().and_then(TeamRole::parse) {
        Some(team_role) => {
            session_access::role_of(env, &link.created_by, team_role, &link.session_id).await?
        }
        None => None,
    };
    if !access::share_link_grants(creator_role, link.removed_at, link.created_at) {
        return Err(invalid());
    }
    let current = session_access::role_of(env, &user.id, user.role, &link.session_id).await?;
    if let Some(current) = current
        && current >= granted
    {
        let answer = AcceptShareResponse {
            session_id: link.session_id,
            role: current,
        };
        return Ok(json(200, &answer));
    }
    let used = d1::run(
        env,
        "UPDATE share_links SET uses = uses + 1 WHERE token = ? AND expires_at > ? AND uses < max_uses",
        &[Arg::Text(token), Arg::Int(now)],
    )
    .await?;
    if used == 0 {
        return Err(invalid());
    }
    d1::run(
        env,
        "INSERT INTO session_shares (session_id, user_id, role, created_by, created_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, user_id) DO UPDATE SET role = excluded.role",
        &[
            Arg::Text(&link.session_id),
            Arg::Text(&user.id),
            Arg::Text(granted.as_str()),
            Arg::Text(&user.id),
            Arg::Int(now),
        ],
    )
    .await?;
    crate::internal::reload_access(env, &link.session_id).await?;
    let answer = AcceptShareResponse {
        session_id: link.session_id,
        role: granted,
    };
    Ok(json(200, &answer))
}
