//! Sleep times on the Worker's side: the deployment's default and bounds (from its
//! environment), the user's own time (`GET`/`PUT /api/me/settings`), and telling the
//! sessions concerned when a time changes.
//!
//! A session's `SessionAgent` keeps its owner's time and the team's maximum in its
//! own storage (see `session_agent::sleep`), so a prompt never waits on a D1 read
//! for them. Whenever either changes, the change is written first and then every
//! live session it concerns (the user's own, or all the team's for the maximum) is
//! told to read them again (`POST /access`, which reads the owner, the shares and
//! these times in one statement), before the change is answered: a shorter time
//! takes effect at once instead of after the old one ran out.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::sleep::{
    DEFAULT_MIN_SLEEP_AFTER_MS, MySettings, PutMySettings, SleepBounds,
};
use nightshift_session::lifecycle::DEFAULT_SLEEP_AFTER_MS;
use nightshift_session::sleep_time::effective_sleep_after_ms;
use serde::Deserialize;
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::d1::{self, Arg};
use crate::auth::{TEAM_ID, User};
use crate::{body, config};

/// The deployment's default sleep time (`SESSION_SLEEP_AFTER_MS`, ms; 0: sleep off).
pub fn deployment_ms(env: &Env) -> i64 {
    config::var(env, "SESSION_SLEEP_AFTER_MS")
        .and_then(|value| value.parse::<i64>().ok())
        .filter(|value| *value >= 0)
        .unwrap_or(DEFAULT_SLEEP_AFTER_MS)
}

/// The range a chosen time lies in; its minimum is `SESSION_SLEEP_MIN_MS`.
pub fn bounds(env: &Env) -> SleepBounds {
    let min = config::var(env, "SESSION_SLEEP_MIN_MS")
        .and_then(|value| value.parse::<u64>().ok())
        .filter(|value| *value > 0)
        .unwrap_or(DEFAULT_MIN_SLEEP_AFTER_MS);
    SleepBounds::with_min(min)
}

/// A stored time as the wire's (negative values never pass validation).
pub fn stored_ms(value: Option<i64>) -> Option<u64> {
    value.and_then(|ms| u64::try_from(ms).ok())
}

#[derive(Deserialize)]
struct SettingsRow {
    sleep_after_ms: Option<i64>,
    max_sleep_after_ms: Option<i64>,
}

async fn my_settings(env: &Env, user_id: &str) -> ApiResult<MySettings> {
    let row: SettingsRow = d1::first(
        env,
        "SELECT u.sleep_after_ms AS sleep_after_ms, t.max_sleep_after_ms AS max_sleep_after_ms \
         FROM users u, teams t WHERE u.id = ? AND t.id = ?",
        &[Arg::Text(user_id), Arg::Text(TEAM_ID)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("the user's or the team's row is missing"))?;
    let deployment = deployment_ms(env);
    let sleep_after_ms = stored_ms(row.sleep_after_ms);
    let max_sleep_after_ms = stored_ms(row.max_sleep_after_ms);
    let effective = effective_sleep_after_ms(deployment, sleep_after_ms, max_sleep_after_ms);
    Ok(MySettings {
        sleep_after_ms,
        default_sleep_after_ms: u64::try_from(deployment).unwrap_or(0),
        max_sleep_after_ms,
        effective_sleep_after_ms: u64::try_from(effective).unwrap_or(0),
        bounds: bounds(env),
    })
}

/// `GET /api/me/settings`.
pub async fn get(env: &Env, user: &User) -> ApiResult<Response> {
    Ok(json(200, &my_settings(env, &user.id).await?))
}

/// `PUT /api/me/settings`: validated whole before anything is written.
pub async fn put(req: &mut Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: PutMySettings = body::read_json(req).await?;
    bounds(env)
        .check_user(request.sleep_after_ms)
        .map_err(|message| ApiError::new(ErrorCode::InvalidRequest, message))?;
    let stored = request
        .sleep_after_ms
        .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
    d1::run(
        env,
        "UPDATE users SET sleep_after_ms = ? WHERE id = ?",
        &[Arg::OptInt(stored), Arg::Text(&user.id)],
    )
    .await?;
    tell_sessions(env, Some(&user.id)).await;
    Ok(json(200, &my_settings(env, &user.id).await?))
}

#[derive(Deserialize)]
struct SessionIdRow {
    id: String,
}

/// Sessions told of a change at once, side by side (a Worker keeps at most six
/// connections open at a time).
const TOLD_AT_ONCE: usize = 6;

/// Tells the live (not archived) sessions of `owner`, or of the whole team, to read
/// their sleep time again. Best effort per session: one that fails is logged, and
/// reads the time again at its next access reload.
pub async fn tell_sessions(env: &Env, owner: Option<&str>) {
    let rows: ApiResult<Vec<SessionIdRow>> = match owner {
        Some(owner) => {
            d1::all(
                env,
                "SELECT id FROM sessions WHERE owner_id = ? AND archived_at IS NULL",
                &[Arg::Text(owner)],
            )
            .await
        }
        None => {
            d1::all(
                env,
                "SELECT id FROM sessions WHERE archived_at IS NULL",
                &[],
            )
            .await
        }
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            worker::console_warn!(
                "listing sessions to tell of a sleep time: {}",
                error.message
            );
            return;
        }
    };
    for chunk in rows.chunks(TOLD_AT_ONCE) {
        let calls = chunk
            .iter()
            .map(|row| crate::internal::reload_access(env, &row.id));
        for (row, outcome) in chunk.iter().zip(futures::future::join_all(calls).await) {
            if let Err(error) = outcome {
                worker::console_warn!("session {}: {}", row.id, error.message);
            }
        }
    }
}
