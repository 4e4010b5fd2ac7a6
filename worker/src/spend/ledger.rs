//! Writing the ledger: one `usage_turns` row per turn and one `usage_sandboxes` row
//! per sandbox a session had.
//!
//! Every write sets values rather than adding to them, so writing again (a retry,
//! a resent runner event) changes nothing: a turn's row holds its usage so far while
//! it runs and its own total once it ended (`finished`), after which the writes of
//! its steps, which may land late, are ignored.

use nightshift_protocol::agent::TokenUsage;
use worker::Env;

use crate::api_error::ApiResult;
use crate::auth::TEAM_ID;
use crate::auth::d1::{self, Arg};

/// What one turn used, as far as is known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TurnSpend {
    pub turn_id: String,
    pub session_id: String,
    /// Who sent the prompt (whose spend it is).
    pub user_id: String,
    pub model: String,
    pub started_at: i64,
    pub usage: TokenUsage,
    pub cost_micro_usd: u64,
    pub duration_ms: u64,
}

fn int(value: u64) -> Arg<'static> {
    Arg::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

/// Writes `turn`'s row: its usage so far (`finished` false, ignored once the turn's
/// total is written) or its total (`finished` true).
pub async fn write_turn(env: &Env, turn: &TurnSpend, finished: bool) -> ApiResult<()> {
    let guard = if finished {
        ""
    } else {
        " WHERE usage_turns.finished = 0"
    };
    let sql = format!(
        "INSERT INTO usage_turns (turn_id, session_id, user_id, team_id, model, input_tokens, \
         output_tokens, cache_read_tokens, cache_write_tokens, cost_micro_usd, started_at, \
         duration_ms, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (turn_id) DO UPDATE SET input_tokens = excluded.input_tokens, \
         output_tokens = excluded.output_tokens, cache_read_tokens = excluded.cache_read_tokens, \
         cache_write_tokens = excluded.cache_write_tokens, \
         cost_micro_usd = excluded.cost_micro_usd, duration_ms = excluded.duration_ms, \
         finished = excluded.finished{guard}"
    );
    d1::run(
        env,
        &sql,
        &[
            Arg::Text(&turn.turn_id),
            Arg::Text(&turn.session_id),
            Arg::Text(&turn.user_id),
            Arg::Text(TEAM_ID),
            Arg::Text(&turn.model),
            int(turn.usage.input_tokens),
            int(turn.usage.output_tokens),
            int(turn.usage.cache_read_tokens),
            int(turn.usage.cache_write_tokens),
            int(turn.cost_micro_usd),
            Arg::Int(turn.started_at),
            int(turn.duration_ms),
            Arg::Int(i64::from(finished)),
        ],
    )
    .await?;
    Ok(())
}

/// Sandbox `generation` of session `session_id` (counted for `owner_id`) exists
/// from `at`. Recorded again, it keeps its first start.
pub async fn sandbox_started(
    env: &Env,
    session_id: &str,
    generation: u64,
    owner_id: &str,
    at: i64,
) -> ApiResult<()> {
    d1::run(
        env,
        "INSERT INTO usage_sandboxes (session_id, generation, user_id, team_id, started_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, generation) DO NOTHING",
        &[
            Arg::Text(session_id),
            int(generation),
            Arg::Text(owner_id),
            Arg::Text(TEAM_ID),
            Arg::Int(at),
        ],
    )
    .await?;
    Ok(())
}

/// Every sandbox of `session_id` still counted as alive stopped at `at`.
pub async fn sandbox_stopped(env: &Env, session_id: &str, at: i64) -> ApiResult<()> {
    d1::run(
        env,
        "UPDATE usage_sandboxes SET stopped_at = MAX(started_at, ?) \
         WHERE session_id = ? AND stopped_at IS NULL",
        &[Arg::Int(at), Arg::Text(session_id)],
    )
    .await?;
    Ok(())
}

/// The statements that keep a deleted session's spend in its user's and team's sums
/// while forgetting the session: its rows lose the session id (each sandbox row gets
/// a random one, which keeps the key unique).
pub fn forget_session(env: &Env, session_id: &str) -> ApiResult<Vec<worker::D1PreparedStatement>> {
    Ok(vec![
        d1::statement(
            env,
            "UPDATE usage_turns SET session_id = '' WHERE session_id = ?",
            &[Arg::Text(session_id)],
        )?,
        d1::statement(
            env,
            "UPDATE usage_sandboxes SET session_id = 'deleted-' || lower(hex(randomblob(12))), \
             stopped_at = COALESCE(stopped_at, ?) WHERE session_id = ?",
            &[Arg::Int(crate::clock::now_ms()), Arg::Text(session_id)],
        )?,
    ])
}
