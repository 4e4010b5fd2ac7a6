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
use nightshift_protocol::repo::{PullRequestSummary, SessionRepoSummary};
use nightshift_protocol::session_list::{ArchivedFilter, ListFilter, ListScope};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::api_error::{ApiError, ApiResult};
use crate::timeout::with_timeout;

/// A D1 query answers within this.
pub const D1_TIMEOUT: Duration = Duration::from_secs(10);

/// Sessions per page of `GET /api/sessions` unless `limit` says otherwise.
pub const PAGE_DEFAULT: u32 = 50;
/// The largest page `limit` asks for.
pub const PAGE_MAX: u32 = 200;

/// The columns of a session that its `SessionAgent` keeps current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUpdate {
    pub status: SessionStatus,
    pub title: String,
    pub sandbox_id: Option<String>,
    pub error: Option<String>,
    pub archived_at: Option<i64>,
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
    #[serde(default)]
    repo_full_name: Option<String>,
    #[serde(default)]
    repo_branch: Option<String>,
    #[serde(default)]
    repo_base_branch: Option<String>,
    #[serde(default)]
    pr_number: Option<u64>,
    #[serde(default)]
    pr_state: Option<String>,
    #[serde(default)]
    pr_url: Option<String>,
    #[serde(default)]
    archived_at: Option<i64>,
}

impl SessionRow {
    fn repo(&self) -> Option<SessionRepoSummary> {
        let pull_request = match (self.pr_number, &self.pr_state) {
            (Some(number), Some(state)) => Some(PullRequestSummary {
                number,
                state: serde_json::from_value(serde_json::Value::String(state.clone())).ok()?,
                url: self.pr_url.clone().unwrap_or_default(),
            }),
            _ => None,
        };
        Some(SessionRepoSummary {
            full_name: self.repo_full_name.clone()?,
            branch: self.repo_branch.clone().unwrap_or_default(),
            base_branch: self.repo_base_branch.clone().unwrap_or_default(),
            pull_request,
        })
    }
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        let repo = row.repo();
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
            repo,
            archived_at: row.archived_at,
        }
    }
}

const COLUMNS: &str = "id, owner_id, title, status, agent, model, sandbox_id, error, created_at, \
     updated_at, permission_mode, input_tokens, output_tokens, turns, duration_ms";

/// The columns of later migrations (0007: the repository; 0008: archiving), read
/// beside the others.
const REPO_COLUMNS: &str = "repo_full_name, repo_branch, repo_base_branch, pr_number, pr_state, \
     pr_url, archived_at";

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

/// Inserts `session` unless its owner already has `max_live` sessions that are not
/// in `error` or archived (one statement, so two requests at once cannot both slip under the
/// cap). Answers whether it was inserted.
pub async fn insert_within(env: &Env, session: &Session, max_live: u32) -> ApiResult<bool> {
    let statement = db(env)?
        .prepare(format!(
            "INSERT INTO sessions ({COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15 WHERE (SELECT COUNT(*) FROM sessions WHERE owner_id = ?2 \
             AND status NOT IN ('error', 'archived')) < ?16"
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
            JsValue::from_f64(f64::from(max_live)),
        ])?;
    let result = with_timeout(D1_TIMEOUT, statement.run())
        .await
        .map_err(|timed_out| ApiError::internal(format!("D1: {timed_out}")))??;
    Ok(result.meta()?.and_then(|meta| meta.changes).unwrap_or(0) > 0)
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
        "SELECT * FROM (SELECT {COLUMNS}, rowid AS row_order, llm_source, {REPO_COLUMNS}, \
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

/// Where a page of the session list starts: after the session created at
/// `created_at` with id `id` (the list is ordered by both, newest first), in the list
/// whose filter has the fingerprint `filter` ([`ListFilter::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
    pub filter: String,
}

impl Cursor {
    /// The opaque text a client passes back: `<created_at>.<id>.<filter>`.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.created_at, self.id, self.filter)
    }

    pub fn parse(text: &str) -> Option<Cursor> {
        let mut parts = text.split('.');
        let (created_at, id, filter) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let filter_ok = filter.len() == 8 && filter.chars().all(|c| c.is_ascii_hexdigit());
        Some(Cursor {
            created_at: created_at.parse().ok()?,
            id: id_ok.then(|| id.to_owned())?,
            filter: filter_ok.then(|| filter.to_owned())?,
        })
    }
}

/// `word` as a `LIKE` pattern matching titles that contain it: `%`, `_` and the
/// escape character itself stand for themselves (`ESCAPE '\'`).
pub fn like_pattern(word: &str) -> String {
    let mut pattern = String::with_capacity(word.len() + 2);
    pattern.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Which of the list's sources a page reads, for a viewer who is (or is not) a team
/// admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sources {
    /// The viewer's own sessions.
    own: bool,
    /// Sessions shared with the viewer by someone else.
    shared: bool,
    /// Sessions owned by the team (those of removed members).
    team_owned: bool,
    /// Every session of the team (an admin's `team` scope).
    everything: bool,
}

fn sources(scope: Option<ListScope>, admin: bool) -> Sources {
    let none = Sources {
        own: false,
        shared: false,
        team_owned: false,
        everything: false,
    };
    match (scope, admin) {
        // Everything the viewer can see: their own, and the shares (which a team
        // admin's role outranks: for them, the sessions the team owns instead).
        (None, _) => Sources {
            own: true,
            shared: !admin,
            team_owned: admin,
            ..none
        },
        (Some(ListScope::Mine), _) => Sources { own: true, ..none },
        (Some(ListScope::Shared), _) | (Some(ListScope::Team), false) => Sources {
            shared: true,
            ..none
        },
        (Some(ListScope::Team), true) => Sources {
            everything: true,
            ..none
        },
    }
}

/// The SQL of one page: parameters `?1` viewer, `?2`/`?3` the cursor's created_at and
/// id, `?4` how many rows, `?5...` one `LIKE` pattern per search word.
fn list_sql(filter: &ListFilter, admin: bool) -> String {
    let mut conditions = String::new();
    match filter.archived {
        ArchivedFilter::Hide => conditions.push_str(" AND s.archived_at IS NULL"),
        ArchivedFilter::Only => conditions.push_str(" AND s.archived_at IS NOT NULL"),
        ArchivedFilter::Any => {}
    }
    for index in 0..filter.words.len() {
        conditions.push_str(&format!(
            " AND lower(s.title) LIKE ?{} ESCAPE '\\'",
            index + 5
        ));
    }
    let page = format!(
        "{conditions} AND (s.created_at < ?2 OR (s.created_at = ?2 AND s.id < ?3)) \
         ORDER BY s.created_at DESC, s.id DESC LIMIT ?4"
    );
    let prefixed = |list: &str| {
        list.split(", ")
            .map(|column| format!("s.{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let columns = prefixed(COLUMNS);
    let sources = sources(filter.scope, admin);
    let mut branches = Vec::new();
    if sources.own {
        branches.push(format!(
            "SELECT * FROM (SELECT {columns}, 'owner' AS my_role FROM sessions s \
             WHERE s.owner_id = ?1{page})"
        ));
    }
    if sources.shared {
        branches.push(format!(
            "SELECT * FROM (SELECT {columns}, sh.role AS my_role \
             FROM session_shares sh JOIN sessions s ON s.id = sh.session_id \
             WHERE sh.user_id = ?1 AND s.owner_id <> ?1{page})"
        ));
    }
    if sources.team_owned {
        branches.push(format!(
            "SELECT * FROM (SELECT {columns}, 'admin' AS my_role FROM sessions s \
             WHERE s.owner_id = 'team'{page})"
        ));
    }
    if sources.everything {
        branches.push(format!(
            "SELECT * FROM (SELECT {columns}, CASE WHEN s.owner_id = ?1 THEN 'owner' \
             ELSE 'admin' END AS my_role FROM sessions s WHERE 1{page})"
        ));
    }
    format!(
        "SELECT p.*, s.llm_source AS llm_source, {}, u.display_name AS owner_name \
         FROM ({}) p JOIN sessions s ON s.id = p.id LEFT JOIN users u ON u.id = p.owner_id \
         ORDER BY p.created_at DESC, p.id DESC LIMIT ?4",
        prefixed(REPO_COLUMNS),
        branches.join(" UNION ALL ")
    )
}

/// One page of the sessions `viewer_id` may see that `filter` keeps, newest first,
/// and the cursor of the next page if there is one. Without a scope: their own and
/// those shared with them (for team admins instead of shares, which their role
/// outranks: those the team owns, from removed members); see [`ListScope`] for the
/// scopes.
///
/// Each source is read through an index (`sessions_by_owner_archived`,
/// `session_shares_by_user`) and cut at the page size before they are merged, so a
/// page costs the same however many sessions exist (an admin's `team` scope reads
/// the whole table in order).
pub async fn list_page(
    env: &Env,
    viewer_id: &str,
    admin: bool,
    filter: &ListFilter,
    after: Option<&Cursor>,
    limit: u32,
) -> ApiResult<(Vec<Session>, Option<Cursor>)> {
    // One more than the page, to know whether another follows.
    let fetch = limit + 1;
    let (created_at, id) = match after {
        Some(cursor) => (cursor.created_at, cursor.id.clone()),
        // Past every real session: ids are never empty, and "~" sorts after them.
        None => (i64::MAX / 2, "~".to_owned()),
    };
    let mut args = vec![
        text(viewer_id),
        number(created_at),
        text(&id),
        JsValue::from_f64(f64::from(fetch)),
    ];
    args.extend(filter.words.iter().map(|word| text(&like_pattern(word))));
    let statement = db(env)?.prepare(list_sql(filter, admin)).bind(&args)?;
    let result = with_timeout(D1_TIMEOUT, statement.all())
        .await
        .map_err(|timed_out| ApiError::internal(format!("D1: {timed_out}")))??;
    let mut rows: Vec<SessionRow> = result.results()?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last()).flatten().map(|row| Cursor {
        created_at: row.created_at,
        id: row.id.clone(),
        filter: filter.fingerprint(),
    });
    Ok((rows.into_iter().map(Session::from).collect(), next))
}

/// Records the repository a new session works on (and the pull request it
/// continues), for the list.
pub async fn set_repo(env: &Env, id: &str, repo: &SessionRepoSummary) -> ApiResult<()> {
    let statement = db(env)?
        .prepare(
            "UPDATE sessions SET repo_full_name = ?, repo_branch = ?, repo_base_branch = ? \
             WHERE id = ?",
        )
        .bind(&[
            text(&repo.full_name),
            text(&repo.branch),
            text(&repo.base_branch),
            text(id),
        ])?;
    run(statement).await?;
    set_pull_request(env, id, repo.pull_request.as_ref()).await
}

/// Records the session's pull request as last seen, for the list.
pub async fn set_pull_request(
    env: &Env,
    id: &str,
    pull: Option<&PullRequestSummary>,
) -> ApiResult<()> {
    let state = pull.and_then(|pull| {
        serde_json::to_value(pull.state)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
    });
    let statement = db(env)?
        .prepare("UPDATE sessions SET pr_number = ?, pr_state = ?, pr_url = ? WHERE id = ?")
        .bind(&[
            pull.map_or(JsValue::NULL, |pull| unsigned(pull.number)),
            optional_text(state.as_deref()),
            optional_text(pull.map(|pull| pull.url.as_str())),
            text(id),
        ])?;
    run(statement).await
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
            "UPDATE sessions SET status = ?, title = ?, sandbox_id = ?, error = ?, \
             archived_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&[
            text(update.status.as_str()),
            text(&update.title),
            optional_text(update.sandbox_id.as_deref()),
            optional_text(update.error.as_deref()),
            update.archived_at.map_or(JsValue::NULL, number),
            number(update.updated_at),
            text(id),
        ])?;
    run(statement).await
}

/// Records that session `id` was archived at `archived_at` (ms), as its
/// `SessionAgent` answered, so the list knows before the object's own write lands.
pub async fn set_archived(env: &Env, id: &str, archived_at: i64) -> ApiResult<()> {
    let statement = db(env)?
        .prepare(
            "UPDATE sessions SET status = ?, archived_at = ?, sandbox_id = NULL, error = NULL \
             WHERE id = ?",
        )
        .bind(&[
            text(SessionStatus::Archived.as_str()),
            number(archived_at),
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

/// Deletes session `id` and everything D1 keeps about it (shares, share links,
/// removals; its spend rows lose its id), in one batch: all of it or none.
pub async fn delete(env: &Env, id: &str) -> ApiResult<()> {
    let db = db(env)?;
    let statements = [
        "DELETE FROM share_links WHERE session_id = ?",
        "DELETE FROM session_shares WHERE session_id = ?",
        "DELETE FROM share_removals WHERE session_id = ?",
        "DELETE FROM inbox WHERE session_id = ?",
        "DELETE FROM sessions WHERE id = ?",
    ]
    .into_iter()
    .map(|sql| db.prepare(sql).bind(&[text(id)]))
    .collect::<Result<Vec<_>, _>>()?;
    // Its spend stays in its user's and team's sums, without the session's id.
    let mut statements = statements;
    statements.extend(crate::spend::ledger::forget_session(env, id)?);
    with_timeout(D1_TIMEOUT, db.batch(statements))
        .await
        .map_err(|timed_out| ApiError::internal(format!("D1: {timed_out}")))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_junk_is_refused() {
        let cursor = Cursor {
            created_at: 1_796_596_977_454,
            id: "c88cd97f-c6d7-44a5-8cab-113a88116a0d".into(),
            filter: ListFilter::default().fingerprint(),
        };
        assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        for junk in [
            "",
            "12",
            "x.abc.0000aaaa",
            "12.abc",
            "12.",
            "12.a'b.0000aaaa",
            "12.a b.0000aaaa",
            "12.abc.xyz",
            "12.abc.0000aaaa.1",
            &format!("1.{}.0000aaaa", "a".repeat(65)),
        ] {
            assert_eq!(Cursor::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn search_words_match_themselves_only() {
        assert_eq!(like_pattern("fix"), "%fix%");
        assert_eq!(like_pattern("100%_done"), "%100\\%\\_done%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn each_scope_reads_its_own_sources() {
        let all = |admin| sources(None, admin);
        assert!(all(false).own && all(false).shared && !all(false).team_owned);
        assert!(all(true).own && !all(true).shared && all(true).team_owned);
        for admin in [false, true] {
            let mine = sources(Some(ListScope::Mine), admin);
            assert!(mine.own && !mine.shared && !mine.team_owned && !mine.everything);
            let shared = sources(Some(ListScope::Shared), admin);
            assert!(!shared.own && shared.shared && !shared.everything);
        }
        assert!(sources(Some(ListScope::Team), true).everything);
        let team = sources(Some(ListScope::Team), false);
        assert!(team.shared && !team.everything && !team.own);
    }

    #[test]
    fn the_page_sql_binds_one_pattern_per_word_and_filters_archived() {
        let filter = ListFilter::parse(None, Some("a b"), None).unwrap();
        let sql = list_sql(&filter, false);
        assert!(sql.contains("LIKE ?5 ESCAPE") && sql.contains("LIKE ?6 ESCAPE"));
        assert!(!sql.contains("?7"));
        assert!(sql.contains("archived_at IS NULL"));
        let any = ListFilter::parse(None, None, Some("any")).unwrap();
        assert!(!list_sql(&any, true).contains("s.archived_at IS"));
        let only = ListFilter::parse(None, None, Some("true")).unwrap();
        assert!(list_sql(&only, true).contains("archived_at IS NOT NULL"));
    }
}
