//! Enforcing a route's [`Access`] for a signed-in user: team routes by team role,
//! session routes by the user's role on that session (owner, share, or team admin),
//! read from D1. The rules themselves are [`crate::access`].

use nightshift_protocol::auth::{Access, SessionRole, TeamRole};
use serde::Deserialize;
use worker::Env;

use crate::access::{self, Denial};
use crate::api_error::{ApiError, ApiResult};
use crate::auth::User;
use crate::auth::d1::{self, Arg};
use crate::routes::Route;

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

/// Refuses `user` unless `route`'s access admits them; answers their role on the
/// route's session, for session routes.
pub async fn authorize(
    env: &Env,
    user: &User,
    route: &Route<'_>,
) -> ApiResult<Option<SessionRole>> {
    let access = route.access();
    match (access, route.session_id()) {
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
