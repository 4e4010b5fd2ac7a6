//! The caps every member is held to ([`UsageLimits`]): live sessions (and so
//! sandboxes) and keys per user, queued prompts per session, open streams per user.
//!
//! Each has a default from the Worker's environment (`MAX_LIVE_SESSIONS`,
//! `MAX_QUEUED_PROMPTS`, `MAX_OPEN_STREAMS`, `MAX_KEYS`, else [`DEFAULTS`]), which an
//! admin overrides in the team's settings (`PUT /api/admin/settings`, kept in the
//! `teams` row). The effective caps are read from D1 at most once per
//! [`CACHE_MS`] per Worker isolate, so a prompt costs no extra query; an admin's
//! change reaches every isolate within that time.

use std::cell::RefCell;

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::UsageLimits;
use serde::Deserialize;
use worker::Env;

use crate::api_error::{ApiError, ApiResult};
use crate::auth::TEAM_ID;
use crate::auth::d1::{self, Arg};
use crate::{clock, config};

/// The caps when neither the environment nor an admin says otherwise.
pub const DEFAULTS: UsageLimits = UsageLimits {
    live_sessions: 20,
    queued_prompts: 100,
    open_streams: 20,
    keys: 20,
};

/// How long an isolate trusts the caps it read.
pub const CACHE_MS: i64 = 30_000;

thread_local! {
    static CACHED: RefCell<Option<(i64, UsageLimits)>> = const { RefCell::new(None) };
}

/// The defaults this deployment's environment sets.
pub fn defaults(env: &Env) -> UsageLimits {
    let read = |name: &str, default: u32| {
        config::var(env, name)
            .and_then(|value| value.parse::<u32>().ok())
            .filter(|value| (1..=UsageLimits::MAX).contains(value))
            .unwrap_or(default)
    };
    UsageLimits {
        live_sessions: read("MAX_LIVE_SESSIONS", DEFAULTS.live_sessions),
        queued_prompts: read("MAX_QUEUED_PROMPTS", DEFAULTS.queued_prompts),
        open_streams: read("MAX_OPEN_STREAMS", DEFAULTS.open_streams),
        keys: read("MAX_KEYS", DEFAULTS.keys),
    }
}

#[derive(Deserialize)]
struct LimitsRow {
    max_live_sessions: Option<u32>,
    max_queued_prompts: Option<u32>,
    max_open_streams: Option<u32>,
    max_keys: Option<u32>,
}

/// The admin's overrides over the environment's defaults.
fn merge(defaults: UsageLimits, row: Option<LimitsRow>) -> UsageLimits {
    let Some(row) = row else {
        return defaults;
    };
    UsageLimits {
        live_sessions: row.max_live_sessions.unwrap_or(defaults.live_sessions),
        queued_prompts: row.max_queued_prompts.unwrap_or(defaults.queued_prompts),
        open_streams: row.max_open_streams.unwrap_or(defaults.open_streams),
        keys: row.max_keys.unwrap_or(defaults.keys),
    }
}

/// The caps in force, read afresh from D1.
pub async fn read(env: &Env) -> ApiResult<UsageLimits> {
    let row: Option<LimitsRow> = d1::first(
        env,
        "SELECT max_live_sessions, max_queued_prompts, max_open_streams, max_keys FROM teams \
         WHERE id = ?",
        &[Arg::Text(TEAM_ID)],
    )
    .await?;
    let limits = merge(defaults(env), row);
    CACHED.with(|cached| *cached.borrow_mut() = Some((clock::now_ms(), limits)));
    Ok(limits)
}

/// The caps in force, as this isolate last read them (within [`CACHE_MS`]).
pub async fn current(env: &Env) -> ApiResult<UsageLimits> {
    let now = clock::now_ms();
    let fresh = CACHED.with(|cached| {
        cached
            .borrow()
            .filter(|(read_at, _)| now.saturating_sub(*read_at) < CACHE_MS)
            .map(|(_, limits)| limits)
    });
    match fresh {
        Some(limits) => Ok(limits),
        None => read(env).await,
    }
}

/// Stores an admin's caps (validated first; nothing is written otherwise).
pub async fn store(env: &Env, limits: &UsageLimits) -> ApiResult<()> {
    limits
        .validate()
        .map_err(|message| ApiError::new(ErrorCode::InvalidRequest, message))?;
    d1::run(
        env,
        "UPDATE teams SET max_live_sessions = ?, max_queued_prompts = ?, max_open_streams = ?, \
         max_keys = ? WHERE id = ?",
        &[
            Arg::Int(limits.live_sessions.into()),
            Arg::Int(limits.queued_prompts.into()),
            Arg::Int(limits.open_streams.into()),
            Arg::Int(limits.keys.into()),
            Arg::Text(TEAM_ID),
        ],
    )
    .await?;
    CACHED.with(|cached| *cached.borrow_mut() = Some((clock::now_ms(), *limits)));
    Ok(())
}

/// Which cap a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    LiveSessions,
    QueuedPrompts,
    OpenStreams,
    Keys,
}

impl Cap {
    /// The variable that sets its default.
    pub fn variable(self) -> &'static str {
        match self {
            Cap::LiveSessions => "MAX_LIVE_SESSIONS",
            Cap::QueuedPrompts => "MAX_QUEUED_PROMPTS",
            Cap::OpenStreams => "MAX_OPEN_STREAMS",
            Cap::Keys => "MAX_KEYS",
        }
    }
}

/// The 429 a request over `cap` (whose value is `limit`) gets: what is full, and how
/// the limit is set.
pub fn exceeded(cap: Cap, limit: u32, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::QuotaExceeded,
        format!(
            "{what} (the limit is {limit}: {} by default, which an admin can change in the \
             team's settings)",
            cap.variable()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admins_values_override_the_defaults_one_by_one() {
        let row = LimitsRow {
            max_live_sessions: Some(3),
            max_queued_prompts: None,
            max_open_streams: Some(7),
            max_keys: None,
        };
        let merged = merge(DEFAULTS, Some(row));
        assert_eq!(merged.live_sessions, 3);
        assert_eq!(merged.queued_prompts, DEFAULTS.queued_prompts);
        assert_eq!(merged.open_streams, 7);
        assert_eq!(merged.keys, DEFAULTS.keys);
        assert_eq!(merge(DEFAULTS, None), DEFAULTS);
    }

    #[test]
    fn caps_outside_their_range_are_refused() {
        assert!(DEFAULTS.validate().is_ok());
        let zero = UsageLimits {
            keys: 0,
            ..DEFAULTS
        };
        assert!(zero.validate().unwrap_err().contains("keys"));
        let huge = UsageLimits {
            live_sessions: UsageLimits::MAX + 1,
            ..DEFAULTS
        };
        assert!(huge.validate().unwrap_err().contains("live_sessions"));
    }
}
