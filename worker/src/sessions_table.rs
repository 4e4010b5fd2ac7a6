//! The `sessions` table in D1 (schema in `migrations/0001_init.sql`): the list of
//! sessions, with each one's owner and a copy of its status and title that its
//! `SessionAgent` keeps current.
//!
//! The `SessionAgent` is the source of truth for a session's state; this table exists
//! so that listing sessions and checking that one exists need no Durable Object at
//! all. Every D1 call has a time limit.

use std::time::Duration;

use nightshift_protocol::api::{AgentKind, PermissionMode, Session, SessionStatus, UsageTotals};
use nightshift_protocol::auth::{LlmSource, OwnerInfo, SessionRole};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::api_error::{ApiError, ApiResult};
use crate::timeout::with_timeout;

/// A D1 query answers within this.
pub const D1_TIMEOUT: Duration = Duration::from_secs(10);

/// The most sessions `GET /api/sessions` lists.
pub const LIST_LIMIT: u32 = 500;

/// The columns of a session that its `SessionAgent` keeps current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUpdate {
    pub status: SessionStatus,
    pub title: String,
    pub sandbox_id: Option<String>,
    pub error: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Deserialize)]
struct SessionRow {
    id: String,
    owner_id: String,
    title: String,
    status: String,
    agent: String,
    model: Option<String>,
    sandbox_id: Option<String>,
    error: Option<String>,
    created_at: i64,
    updated_at: i64,
    #[serde(default)]
    permission_mode: Option<String>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    turns: Option<u64>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    llm_source: Option<String>,
    #[serde(default)]
    owner_name: Option<String>,
    #[serde(default)]
    my_role: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Session {
            id: row.id,
            title: row.title,
            // A status this version does not know is shown as an error rather than
            // failing the whole list.
            status: SessionStatus::parse(&row.status).unwrap_or(SessionStatus::Error),
            // An agent this version does not know is shown as the built-in one.
            agent: AgentKind::parse(&row.agent).unwrap_or_default(),
            model: row.model,
            permission_mode: row
                .permission_mode
                .as_deref()
                .and_then(PermissionMode::parse)
                .unwrap_or_default(),
            usage: UsageTotals {
                input_tokens: row.input_tokens.unwrap_or(0),
                output_tokens: row.output_tokens.unwrap_or(0),
                turns: row.turns.unwrap_or(0),
                duration_ms: row.duration_ms.unwrap_or(0),
            },
            sandbox_id: row.sandbox_id,
            error: row.error,
            created_at: row.created_at,
            updated_at: row.updated_at,
            my_role: row.my_role.as_deref().and_then(SessionRole::parse),
            owner: row.owner_name.map(|name| {
                Box::new(OwnerInfo {
                    id: row.owner_id.clone(),
                    name,
                })
            }),
            owner_id: row.owner_id,
            llm_source: row.llm_source.as_deref().and_then(LlmSource::parse),
        }
    }
}

const COLUMNS: &str = "id, owner_id, title, status, agent, model, sandbox_id, error, created_at, \
     updated_at, permission_mode, input_tokens, output_tokens, turns, duration_ms";

fn db(env: &Env) -> ApiResult<D1Database> {
    Ok(env.d1("DB")?)
}

fn text(value: &str) -> JsValue {
    JsValue::from_str(value)
}

fn optional_text(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, JsValue::from_str)
}

fn number(value: i64) -> JsValue {
    // Timestamps in ms stay far below 2^53, so they are exact as JS numbers.
    JsValue::from_f64(value as f64)
}

async fn run(statement: D1PreparedStatement) -> ApiResult<()> {
    with_timeout(D1_TIMEOUT, statement.run())
        .await
        .map_err(|timed_out| ApiError::internal(format!("D1: {timed_out}")))??;
    Ok(())
}

pub async fn insert(env: &Env, session: &Session) -> ApiResult<()> {
    let statement = db(env)?
        .prepare(format!(
            "INSERT INTO sessions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&[
            text(&session.id),
            text(&session.owner_id),
            text(&session.title),
            text(session.status.as_str()),
            text(session.agent.as_str()),
            optional_text(session.model.as_deref()),
            optional_text(session.sandbox_id.as_deref()),
            optional_text(session.error.as_deref()),
            number(session.created_at),
            number(session.updated_at),
            text(session.permission_mode.as_str()),
            unsigned(session.usage.input_tokens),
            unsigned(session.usage.output_tokens),
            unsigned(session.usage.turns),
            unsigned(session.usage.duration_ms),
        ])?;
    run(statement).await
}

fn unsigned(value: u64) -> JsValue {
    // Token counts and milliseconds stay far below 2^53.
    JsValue::from_f64(value as f64)
}

/// The agent columns of a session that its `SessionAgent` keeps current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUpdate {
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
    pub usage: UsageTotals,
}

/// Writes the agent settings and usage totals the `SessionAgent` of `id` holds.
pub async fn update_agent(env: &Env, id: &str, update: &AgentUpdate) -> ApiResult<()> {
    let statement = db(env)?
        .prepare(
            "UPDATE sessions SET agent = ?, model = ?, permission_mode = ?, input_tokens = ?, \
             output_tokens = ?, turns = ?, duration_ms = ? WHERE id = ?",
        )
        .bind(&[
            text(update.agent.as_str()),
            optional_text(update.model.as_deref()),
            text(update.permission_mode.as_str()),
            unsigned(update.usage.input_tokens),
            unsigned(update.usage.output_tokens),
            unsigned(update.usage.turns),
            unsigned(update.usage.duration_ms),
            text(id),
        ])?;
    run(statement).await
}

/// A session's columns as seen by the user `?1`: its owner's name, which key its
/// latest turn used, and `my_role` (NULL when the session is invisible to them:
/// neither theirs, nor shared with them, nor are they a team admin).
fn visible_select() -> String {
    format!(
        "SELECT * FROM (SELECT {COLUMNS}, rowid AS row_order, llm_source, \
         (SELECT display_name FROM users WHERE users.id = sessions.owner_id) AS owner_name, \
         CASE WHEN owner_id = ?1 THEN 'owner' \
         WHEN EXISTS (SELECT 1 FROM memberships WHERE memberships.user_id = ?1 \
         AND memberships.role = 'admin') THEN 'admin' \
         ELSE (SELECT role FROM session_shares WHERE session_shares.session_id = sessions.id \
         AND session_shares.user_id = ?1) END AS my_role FROM sessions) \
         WHERE my_role IS NOT NULL"
    )
}

/// The session `id` if it exists and `viewer_id` may see it (its owner, someone it
/// is shared with, or a team admin), with `my_role` set for them.
pub async fn get(env: &Env, id: &str, viewer_id: &str) -> ApiResult<Option<Session>> {
    let statement = db(env)?
        .prepare(format!("{} AND id = ?2", visible_select()))
        .bind(&[text(viewer_id), text(id)])?;
    let row = with_timeout(D1_TIMEOUT, statement.first::<SessionRow>(None))
        .await
        .map_err(|timed_out| ApiError::internal(format!("D1: {timed_out}")))??;
    Ok(row.map(Session::from))
}

/// [`get`], answering `not_found` when there is no such session (or it is not
/// visible to `viewer_id`: its existence does not leak).
pub async fn require(env: &Env, id: &str, viewer_id: &str) -> ApiResult<Session> {
    get(env, id, viewer_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session {id}")))
}

/// The sessions `viewer_id` owns or that are shared with them (for team admins also
/// those the team owns, from removed members), newest first.
pub async fn list(env: &Env, viewer_id: &str) -> ApiResult<Vec<Session>> {
    let statement = db(env)?
        .prepare(format!(
            "{} AND (my_role <> 'admin' OR owner_id = 'team') \
             ORDER BY created_at DESC, row_order DESC LIMIT {LIST_LIMIT}",
            visible_select()
        ))
        .bind(&[text(viewer_id)])?;
    let result = with_timeout(D1_TIMEOUT, statement.all())
        .await
        .map_err(|timed_out| ApiError::internal(format!("D1: {timed_out}")))??;
    let rows: Vec<SessionRow> = result.results()?;
    Ok(rows.into_iter().map(Session::from).collect())
}

/// Records which key (`user`, `team` or `environment`) the latest turn of session
/// `id` used.
pub async fn set_llm_source(env: &Env, id: &str, source: LlmSource) -> ApiResult<()> {
    let statement = db(env)?
        .prepare("UPDATE sessions SET llm_source = ? WHERE id = ?")
        .bind(&[text(source.as_str()), text(id)])?;
    run(statement).await
}

/// Writes what the `SessionAgent` of session `id` currently says.
pub async fn update(env: &Env, id: &str, update: &SessionUpdate) -> ApiResult<()> {
    let statement = db(env)?
        .prepare(
            "UPDATE sessions SET status = ?, title = ?, sandbox_id = ?, error = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(&[
            text(update.status.as_str()),
            text(&update.title),
            optional_text(update.sandbox_id.as_deref()),
            optional_text(update.error.as_deref()),
            number(update.updated_at),
            text(id),
        ])?;
    run(statement).await
}

/// The owner of session `id`, if it exists (for callers that are not a user).
pub async fn get_owner(env: &Env, id: &str) -> ApiResult<Option<String>> {
    let statement = db(env)?
        .prepare("SELECT owner_id FROM sessions WHERE id = ?")
        .bind(&[text(id)])?;
    let owner = with_timeout(D1_TIMEOUT, statement.first::<String>(Some("owner_id")))
        .await
        .map_err(|timed_out| ApiError::internal(format!("D1: {timed_out}")))??;
    Ok(owner)
}
