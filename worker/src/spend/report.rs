//! Reading the ledger: what a scope (a session, a user, the team) spent, in total,
//! per UTC day and per user, and what each spend cap's scope has spent so far.
//!
//! A turn counts on the day it started; a sandbox's whole life counts on the day it
//! started (one still alive counts up to now), so a day's bars and the period's
//! totals always agree.

use std::collections::BTreeMap;

use nightshift_protocol::usage::{UsageBucket, UsageLine, UsageSums};
use nightshift_session::spend::caps::{SpendSoFar, Spent};
use nightshift_session::spend::periods::{DAY_MS, day_start, month_start};
use serde::Deserialize;
use worker::Env;

use crate::api_error::ApiResult;
use crate::auth::TEAM_ID;
use crate::auth::d1::{self, Arg};

/// Whose spend a report sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Team,
    User(String),
    Session(String),
}

impl Scope {
    /// The column and value rows are filtered on.
    fn filter(&self) -> (&'static str, &str) {
        match self {
            Scope::Team => ("team_id", TEAM_ID),
            Scope::User(id) => ("user_id", id),
            Scope::Session(id) => ("session_id", id),
        }
    }
}

#[derive(Deserialize, Default)]
struct TurnRow {
    key: Option<String>,
    name: Option<String>,
    turns: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    cost_micro_usd: Option<u64>,
}

#[derive(Deserialize)]
struct SandboxRow {
    key: Option<String>,
    name: Option<String>,
    sandbox_ms: Option<u64>,
}

impl TurnRow {
    fn sums(&self) -> UsageSums {
        UsageSums {
            turns: self.turns.unwrap_or(0),
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: self.cache_read_tokens.unwrap_or(0),
            cache_write_tokens: self.cache_write_tokens.unwrap_or(0),
            cost_micro_usd: self.cost_micro_usd.unwrap_or(0),
            sandbox_ms: 0,
        }
    }
}

const TURN_SUMS: &str = "COUNT(*) AS turns, SUM(input_tokens) AS input_tokens, \
     SUM(output_tokens) AS output_tokens, SUM(cache_read_tokens) AS cache_read_tokens, \
     SUM(cache_write_tokens) AS cache_write_tokens, SUM(cost_micro_usd) AS cost_micro_usd";

/// Turn and sandbox sums of `scope` in `[from, to)`, grouped by `group` (an SQL
/// expression naming the key, e.g. the day), merged by key.
async fn grouped(
    env: &Env,
    scope: &Scope,
    from: i64,
    to: i64,
    now: i64,
    group: &str,
    with_names: bool,
) -> ApiResult<BTreeMap<String, (String, UsageSums)>> {
    let (column, value) = scope.filter();
    let (join, name) = if with_names {
        (
            " LEFT JOIN users ON users.id = t.user_id",
            "COALESCE(users.display_name, t.user_id)",
        )
    } else {
        ("", "''")
    };
    let turns: Vec<TurnRow> = d1::all(
        env,
        &format!(
            "SELECT CAST({group} AS TEXT) AS key, {name} AS name, {TURN_SUMS} FROM usage_turns t{join} \
             WHERE t.{column} = ? AND t.started_at >= ? AND t.started_at < ? GROUP BY {group}"
        ),
        &[Arg::Text(value), Arg::Int(from), Arg::Int(to)],
    )
    .await?;
    let sandboxes: Vec<SandboxRow> = d1::all(
        env,
        &format!(
            "SELECT CAST({group} AS TEXT) AS key, {name} AS name, \
             SUM(MAX(0, COALESCE(t.stopped_at, ?) - t.started_at)) AS sandbox_ms \
             FROM usage_sandboxes t{join} \
             WHERE t.{column} = ? AND t.started_at >= ? AND t.started_at < ? GROUP BY {group}"
        ),
        &[
            Arg::Int(now),
            Arg::Text(value),
            Arg::Int(from),
            Arg::Int(to),
        ],
    )
    .await?;
    let mut merged: BTreeMap<String, (String, UsageSums)> = BTreeMap::new();
    for row in turns {
        let key = row.key.clone().unwrap_or_default();
        let entry = merged.entry(key).or_default();
        entry.0 = row.name.clone().unwrap_or_default();
        entry.1 = row.sums();
    }
    for row in sandboxes {
        let entry = merged.entry(row.key.unwrap_or_default()).or_default();
        if entry.0.is_empty() {
            entry.0 = row.name.unwrap_or_default();
        }
        entry.1.sandbox_ms = row.sandbox_ms.unwrap_or(0);
    }
    Ok(merged)
}

fn add(total: &mut UsageSums, sums: &UsageSums) {
    total.turns += sums.turns;
    total.input_tokens += sums.input_tokens;
    total.output_tokens += sums.output_tokens;
    total.cache_read_tokens += sums.cache_read_tokens;
    total.cache_write_tokens += sums.cache_write_tokens;
    total.cost_micro_usd += sums.cost_micro_usd;
    total.sandbox_ms += sums.sandbox_ms;
}

/// The period's totals and its days, oldest first.
pub async fn by_day(
    env: &Env,
    scope: &Scope,
    from: i64,
    to: i64,
    now: i64,
) -> ApiResult<(UsageSums, Vec<UsageBucket>)> {
    let days = grouped(
        env,
        scope,
        from,
        to,
        now,
        "(t.started_at / 86400000)",
        false,
    )
    .await?;
    let mut totals = UsageSums::default();
    let mut buckets = Vec::with_capacity(days.len());
    for (key, (_, sums)) in days {
        add(&mut totals, &sums);
        let day: i64 = key.parse().unwrap_or(0);
        buckets.push(UsageBucket {
            start: day * DAY_MS,
            sums,
        });
    }
    // Keys are text, so "10" sorts before "9": order by the number.
    buckets.sort_by_key(|bucket| bucket.start);
    Ok((totals, buckets))
}

/// The period's sums per user of the team, most expensive first.
pub async fn by_user(env: &Env, from: i64, to: i64, now: i64) -> ApiResult<Vec<UsageLine>> {
    let users = grouped(env, &Scope::Team, from, to, now, "t.user_id", true).await?;
    let mut lines: Vec<UsageLine> = users
        .into_iter()
        .map(|(id, (name, sums))| UsageLine { id, name, sums })
        .collect();
    lines.sort_by(|a, b| {
        b.sums
            .cost_micro_usd
            .cmp(&a.sums.cost_micro_usd)
            .then(b.sums.output_tokens.cmp(&a.sums.output_tokens))
            .then(a.id.cmp(&b.id))
    });
    Ok(lines)
}

/// A session's sums over its whole life.
pub async fn session(env: &Env, session_id: &str, now: i64) -> ApiResult<UsageSums> {
    let scope = Scope::Session(session_id.to_owned());
    let all = grouped(env, &scope, 0, i64::MAX, now, "''", false).await?;
    Ok(all
        .into_values()
        .next()
        .map(|(_, sums)| sums)
        .unwrap_or_default())
}

#[derive(Deserialize)]
struct SpentRow {
    session_cost: Option<u64>,
    session_tokens: Option<u64>,
    day_cost: Option<u64>,
    day_tokens: Option<u64>,
    month_cost: Option<u64>,
    month_tokens: Option<u64>,
    team_cost: Option<u64>,
    team_tokens: Option<u64>,
}

/// What each cap's scope has spent at `now`: session `session_id` over its life,
/// user `user_id` today and this month, the team this month (UTC).
pub async fn spent_so_far(
    env: &Env,
    session_id: &str,
    user_id: &str,
    now: i64,
) -> ApiResult<SpendSoFar> {
    // One row of scalar sub-queries, each over an index (by session, by user and
    // start, by team and start).
    let sql = "SELECT \
         (SELECT COALESCE(SUM(cost_micro_usd), 0) FROM usage_turns WHERE session_id = ?1) AS session_cost, \
         (SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage_turns WHERE session_id = ?1) AS session_tokens, \
         (SELECT COALESCE(SUM(cost_micro_usd), 0) FROM usage_turns WHERE user_id = ?2 AND started_at >= ?3) AS day_cost, \
         (SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage_turns WHERE user_id = ?2 AND started_at >= ?3) AS day_tokens, \
         (SELECT COALESCE(SUM(cost_micro_usd), 0) FROM usage_turns WHERE user_id = ?2 AND started_at >= ?4) AS month_cost, \
         (SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage_turns WHERE user_id = ?2 AND started_at >= ?4) AS month_tokens, \
         (SELECT COALESCE(SUM(cost_micro_usd), 0) FROM usage_turns WHERE team_id = ?5 AND started_at >= ?4) AS team_cost, \
         (SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage_turns WHERE team_id = ?5 AND started_at >= ?4) AS team_tokens";
    let row: Option<SpentRow> = d1::first(
        env,
        sql,
        &[
            Arg::Text(session_id),
            Arg::Text(user_id),
            Arg::Int(day_start(now)),
            Arg::Int(month_start(now)),
            Arg::Text(TEAM_ID),
        ],
    )
    .await?;
    let Some(row) = row else {
        return Ok(SpendSoFar::default());
    };
    let spent = |cost: Option<u64>, tokens: Option<u64>| Spent {
        cost_micro_usd: cost.unwrap_or(0),
        tokens: tokens.unwrap_or(0),
    };
    Ok(SpendSoFar {
        session: spent(row.session_cost, row.session_tokens),
        user_day: spent(row.day_cost, row.day_tokens),
        user_month: spent(row.month_cost, row.month_tokens),
        team_month: spent(row.team_cost, row.team_tokens),
    })
}
