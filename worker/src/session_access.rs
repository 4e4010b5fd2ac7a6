//! Enforcing a route's [`Access`] for a signed-in user: team routes by team role,
//! session routes by the user's role on that session (owner, share, or team admin),
//! read from D1. The rules themselves are [`crate::access`].

use futures::StreamExt;
use nightshift_protocol::auth::{Access, SessionRole, TeamRole};
use serde::Deserialize;
use worker::{Env, Response};

use crate::access::{self, Denial};
use crate::api_error::{ApiError, ApiResult};
use crate::auth::User;
use crate::auth::d1::{self, Arg};

#[derive(Deserialize)]
struct RoleRow {
    owner_id: String,
    share: Option<String>,
}

/// The role `user_id` (with team role `team_role`) has on session `session_id`;
/// `None` when the session does not exist or is invisible to them.
pub async fn role_of(
    env: &Env,
    user_id: &str,
    team_role: TeamRole,
    session_id: &str,
) -> ApiResult<Option<SessionRole>> {
    let row: Option<RoleRow> = d1::first(
        env,
        "SELECT s.owner_id AS owner_id, \
         (SELECT sh.role FROM session_shares sh WHERE sh.session_id = s.id AND sh.user_id = ?) AS share \
         FROM sessions s WHERE s.id = ?",
        &[Arg::Text(user_id), Arg::Text(session_id)],
    )
    .await?;
    Ok(row.and_then(|row| {
        let share = row.share.as_deref().and_then(SessionRole::parse);
        access::session_role(user_id, team_role, &row.owner_id, share)
    }))
}

#[derive(Deserialize)]
struct AccessRow {
    user_id: String,
    team_role: String,
    owner_id: String,
    share: Option<String>,
}

/// Of `user_ids`, those who can no longer see session `session_id`: no longer team
/// members, or without a role on it (a share removed, an admin demoted, the session
/// deleted). One D1 read for them all.
pub async fn without_access(
    env: &Env,
    session_id: &str,
    user_ids: &[String],
) -> ApiResult<Vec<String>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = vec!["?"; user_ids.len()].join(", ");
    let sql = format!(
        "SELECT m.user_id AS user_id, m.role AS team_role, s.owner_id AS owner_id, \
         sh.role AS share FROM memberships m JOIN sessions s ON s.id = ? \
         LEFT JOIN session_shares sh ON sh.session_id = s.id AND sh.user_id = m.user_id \
         WHERE m.team_id = ? AND m.user_id IN ({placeholders})"
    );
    let mut args = vec![Arg::Text(session_id), Arg::Text(crate::auth::TEAM_ID)];
    args.extend(user_ids.iter().map(|id| Arg::Text(id)));
    let rows: Vec<AccessRow> = d1::all(env, &sql, &args).await?;
    Ok(user_ids
        .iter()
        .filter(|user_id| {
            !rows.iter().any(|row| {
                &row.user_id == *user_id
                    && TeamRole::parse(&row.team_role).is_some_and(|team_role| {
                        let share = row.share.as_deref().and_then(SessionRole::parse);
                        access::check_session(
                            Access::SessionViewer,
                            access::session_role(user_id, team_role, &row.owner_id, share),
                        )
                        .is_ok()
                    })
            })
        })
        .cloned()
        .collect())
}

/// Ends `user_id`'s open streams of `session_id` if they can no longer see it, and
/// their session-list streams (which may have shown it).
pub async fn end_streams_without_access(env: &Env, session_id: &str, user_id: &str) {
    match without_access(env, session_id, &[user_id.to_owned()]).await {
        Ok(gone) => {
            crate::internal::close_streams(env, session_id, &gone).await;
            crate::internal::close_list_streams(env, &gone).await;
        }
        Err(error) => worker::console_warn!(
            "checking access to {session_id} failed: {}; the session's periodic check \
             ends the streams",
            error.message
        ),
    }
}

/// Refuses `user` unless `route`'s access admits them; answers their role on the
/// route's session, for session routes.
pub async fn authorize(
    env: &Env,
    user: &User,
    access: Access,
    session_id: Option<&str>,
) -> ApiResult<Option<SessionRole>> {
    match (access, session_id) {
        (
            Access::SessionViewer | Access::SessionCollaborator | Access::SessionManager,
            Some(session_id),
        ) => {
            let role = role_of(env, &user.id, user.role, session_id).await?;
            access::check_session(access, role)
                .map(Some)
                .map_err(|denial| refusal(denial, session_id))
        }
        _ => access::check_team(access, user.role)
            .map(|()| None)
            .map_err(|denial| refusal(denial, "")),
    }
}

fn refusal(denial: Denial, session_id: &str) -> ApiError {
    let message = match denial {
        Denial::NotFound => format!("no session {session_id}"),
        Denial::Forbidden if session_id.is_empty() => "only team admins may do this".to_owned(),
        Denial::Forbidden => "your role on this session does not allow this".to_owned(),
    };
    ApiError::new(denial.code(), message)
}

/// The session a session-list frame (`data: {...}`) is about, if any.
pub fn frame_session_id(frame: &str) -> Option<String> {
    let value = frame_data(frame)?;
    value["session_id"]
        .as_str()
        .or_else(|| value["session"]["id"].as_str())
        .map(str::to_owned)
}

/// The `type` of the event an SSE frame carries.
fn frame_type(frame: &str) -> Option<String> {
    frame_data(frame)?["type"].as_str().map(str::to_owned)
}

/// The JSON an SSE frame's `data:` lines carry.
fn frame_data(frame: &str) -> Option<serde_json::Value> {
    let data: String = frame
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&data).ok()
}

/// `GET /api/events` for `user`: the bus's stream of every session-list change,
/// narrowed to the sessions in their list (their own and those shared with them).
/// Keep-alive comments pass, and so do the user's own inbox changes (the bus sends
/// those to their streams only); frames about other sessions never leave the Worker.
pub fn narrow_list_stream(env: &Env, user: &User, mut response: Response) -> ApiResult<Response> {
    let headers = response.headers().clone();
    let status = response.status_code();
    let body = response.stream()?;
    let state = ListFilter {
        env: env.clone(),
        user_id: user.id.clone(),
        team_role: user.role,
        buffer: String::new(),
        visible: std::collections::HashMap::new(),
    };
    let stream = futures::stream::unfold((body, state), |(mut body, mut state)| async move {
        loop {
            let chunk = match body.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => return Some((Err(error), (body, state))),
                None => return None,
            };
            state
                .buffer
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
            let mut out = String::new();
            while let Some(end) = state.buffer.find("\n\n") {
                let frame: String = state.buffer.drain(..end + 2).collect();
                if state.allows(&frame).await {
                    out.push_str(&frame);
                }
            }
            if !out.is_empty() {
                return Some((Ok(out.into_bytes()), (body, state)));
            }
        }
    });
    Ok(Response::from_stream(stream)?
        .with_status(status)
        .with_headers(headers))
}

struct ListFilter {
    env: Env,
    user_id: String,
    team_role: TeamRole,
    buffer: String,
    visible: std::collections::HashMap<String, bool>,
}

impl ListFilter {
    async fn allows(&mut self, frame: &str) -> bool {
        if !frame.lines().any(|line| line.starts_with("data:")) {
            // Comments (keep-alives) and the like.
            return true;
        }
        if frame_type(frame).as_deref() == Some("inbox_changed") {
            // The bus sends a user's inbox changes to that user's streams only.
            return true;
        }
        let Some(session_id) = frame_session_id(frame) else {
            return false;
        };
        if frame.contains("\"type\":\"session_deleted\"") {
            // Its row is gone, so its visibility cannot be checked any more; the frame
            // carries nothing but the (random) id, which only a list showing it uses.
            return true;
        }
        if let Some(visible) = self.visible.get(&session_id) {
            return *visible;
        }
        let role = role_of(&self.env, &self.user_id, self.team_role, &session_id)
            .await
            .ok()
            .flatten();
        // The list shows a user's own and shared sessions, not everything an admin
        // could open.
        let visible = role.is_some_and(|role| role != SessionRole::Admin);
        self.visible.insert(session_id, visible);
        visible
    }
}
