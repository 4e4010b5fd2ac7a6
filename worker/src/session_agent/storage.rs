//! The `SessionAgent`'s SQLite storage (`state.storage().sql()`): one schema, and
//! the reads and writes the object needs, all synchronous.
//!
//! Tables:
//! - `meta`: key-value; `session` holds the [`SessionRecord`] as JSON, `access` the
//!   session's [`AccessFacts`] (owner and shares).
//! - `prompts`: the queue, one row per prompt, in creation order (`rowid`).
//! - `events`: the event log; `seq` is the per-session sequence number, and
//!   `(epoch, local_seq)` identifies a runner event so a resend is never stored twice.
//! - `runner_epochs`: per runner epoch, the highest `local_seq` taken in.
//!
//! Columns added after the first release (`mode`, `usage_*`, `duration_ms`,
//! `collect_until`, `sent_by` on `prompts`, all nullable or defaulted) are added by [`UPGRADES`] to objects created before
//! them; each statement fails harmlessly once its column exists.
//!
//! Because every call here is synchronous, a handler that does its reads and writes
//! without an `.await` in between sees and leaves a consistent state, and the runtime
//! commits those writes together.

use nightshift_protocol::api::{
    AgentKind, Message, MessageState, PermissionMode, QueueMode, SessionStatus, UsageTotals,
};
use nightshift_protocol::events::{EventBody, SessionEvent, TokenUsage};
use nightshift_session::access_facts::AccessFacts;
use nightshift_session::event_log::{ReplyText, Sequencer};
use nightshift_session::lifecycle::SandboxState;
use nightshift_session::queue::{Prompt, PromptQueue};
use serde::{Deserialize, Serialize};
use worker::{Result, SqlStorage, SqlStorageValue};

/// The states of a prompt that is still in the queue.
const OPEN_STATES: &str = "('queued', 'processing')";
/// How many of the newest prompts `GET /messages` shows besides the open ones.
const HISTORY: i64 = 200;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS prompts (
        id TEXT PRIMARY KEY,
        content TEXT NOT NULL,
        state TEXT NOT NULL,
        queue_order INTEGER NOT NULL,
        turn_id TEXT,
        runner_epoch TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        reply TEXT,
        error TEXT,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
    )",
    "CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY,
        turn_id TEXT,
        epoch TEXT,
        local_seq INTEGER,
        body TEXT NOT NULL,
        at INTEGER NOT NULL,
        UNIQUE (epoch, local_seq)
    )",
    "CREATE INDEX IF NOT EXISTS events_by_turn ON events (turn_id, seq)",
    "CREATE INDEX IF NOT EXISTS prompts_by_state ON prompts (state)",
    "CREATE TABLE IF NOT EXISTS runner_epochs (epoch TEXT PRIMARY KEY, acked INTEGER NOT NULL)",
];

/// Columns added later; run after [`SCHEMA`], ignoring "duplicate column" failures.
const UPGRADES: &[&str] = &[
    "ALTER TABLE prompts ADD COLUMN mode TEXT NOT NULL DEFAULT 'followup'",
    "ALTER TABLE prompts ADD COLUMN usage_input INTEGER",
    "ALTER TABLE prompts ADD COLUMN usage_output INTEGER",
    "ALTER TABLE prompts ADD COLUMN duration_ms INTEGER",
    "ALTER TABLE prompts ADD COLUMN collect_until INTEGER",
    "ALTER TABLE prompts ADD COLUMN sent_by TEXT",
];

/// What the `SessionAgent` knows about its session besides the queue and the log.
/// The status is derived from these facts by `nightshift_session::lifecycle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRecord {
    pub session_id: String,
    pub owner_id: String,
    /// `/init` has run.
    pub initialized: bool,
    /// Empty while untitled.
    pub title: String,
    /// The URL the runner dials, for (re)requesting the sandbox.
    pub worker_url: Option<String>,
    pub sandbox: SandboxState,
    /// Connection numbers: the newest runner socket gets `last_connection + 1`.
    pub last_connection: u64,
    /// The newest runner socket; older ones are closed.
    pub runner_connection: Option<u64>,
    /// The epoch the newest runner socket said hello with.
    pub runner_epoch: Option<String>,
    pub runner_ever_connected: bool,
    /// The sandbox generation: bumped every time a sandbox is requested, so runner
    /// tokens issued for an earlier sandbox are refused.
    pub sandbox_generation: u64,
    /// The status as last derived.
    pub status: SessionStatus,
    /// What D1 and the session-list stream were last told.
    pub published: Option<Published>,
    /// The agent, model and permission mode the next turn runs with.
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
    /// The runner was told to abort this turn at this time (ms); if it has not
    /// finished the turn by the abort deadline, the `SessionAgent` ends it itself.
    pub abort_requested: Option<AbortRequest>,
    /// The session was deleted: everything else was wiped, and nothing is provisioned
    /// or accepted any more (a sandbox that was being created is destroyed as soon as
    /// the backend answers).
    pub deleted: bool,
}

/// An abort the runner has not confirmed yet (kept in the record as JSON).
pub use nightshift_session::abort::AbortRequest;

impl Default for SessionRecord {
    fn default() -> Self {
        Self {
            session_id: String::new(),
            owner_id: String::new(),
            initialized: false,
            title: String::new(),
            worker_url: None,
            sandbox: SandboxState::default(),
            last_connection: 0,
            runner_connection: None,
            runner_epoch: None,
            runner_ever_connected: false,
            sandbox_generation: 0,
            status: SessionStatus::Provisioning,
            published: None,
            agent: AgentKind::default(),
            model: None,
            permission_mode: PermissionMode::default(),
            abort_requested: None,
            deleted: false,
        }
    }
}

/// The columns of the D1 row the `SessionAgent` keeps current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub status: SessionStatus,
    pub title: String,
    pub sandbox_id: Option<String>,
    pub error: Option<String>,
    /// Agent settings and usage totals, as last written to D1.
    #[serde(default)]
    pub agent: Option<PublishedAgent>,
}

/// The agent columns of the D1 row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedAgent {
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
    pub usage: UsageTotals,
}

#[derive(Deserialize)]
struct MetaRow {
    value: String,
}

#[derive(Deserialize)]
struct PromptRow {
    id: String,
    content: String,
    state: String,
    queue_order: i64,
    turn_id: Option<String>,
    runner_epoch: Option<String>,
    attempts: u32,
    reply: Option<String>,
    error: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    usage_input: Option<u64>,
    #[serde(default)]
    usage_output: Option<u64>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    collect_until: Option<i64>,
    /// NULL for prompts stored before senders were recorded.
    #[serde(default)]
    sent_by: Option<String>,
}

#[derive(Deserialize)]
struct EventRow {
    seq: u64,
    turn_id: Option<String>,
    body: String,
    at: i64,
}

#[derive(Deserialize)]
struct Count {
    value: u64,
}

/// The object's storage.
#[derive(Debug, Clone)]
pub struct Store {
    sql: SqlStorage,
}

fn text(value: &str) -> SqlStorageValue {
    SqlStorageValue::String(value.to_owned())
}

fn optional_text(value: Option<&str>) -> SqlStorageValue {
    value.map_or(SqlStorageValue::Null, text)
}

fn integer(value: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(value)
}

fn unsigned(value: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

impl Store {
    /// Opens the storage, creating the schema if it is new.
    pub fn open(sql: SqlStorage) -> Result<Self> {
        for statement in SCHEMA {
            sql.exec(statement, None)?;
        }
        for statement in UPGRADES {
            // Fails with "duplicate column name" once the column exists.
            let _ = sql.exec(statement, None);
        }
        Ok(Self { sql })
    }

    pub fn record(&self) -> Result<SessionRecord> {
        let rows: Vec<MetaRow> = self
            .sql
            .exec("SELECT value FROM meta WHERE key = 'session'", None)?
            .to_array()?;
        match rows.into_iter().next() {
            Some(row) => Ok(serde_json::from_str(&row.value)?),
            None => Ok(SessionRecord::default()),
        }
    }

    pub fn save_record(&self, record: &SessionRecord) -> Result<()> {
        let value = serde_json::to_string(record)?;
        self.sql.exec(
            "INSERT INTO meta (key, value) VALUES ('session', ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![text(&value)],
        )?;
        Ok(())
    }

    /// The session's access facts (`meta` key `access`); `None` for a session
    /// created before the object kept them, until they are first loaded from D1.
    pub fn access_facts(&self) -> Result<Option<AccessFacts>> {
        let rows: Vec<MetaRow> = self
            .sql
            .exec("SELECT value FROM meta WHERE key = 'access'", None)?
            .to_array()?;
        rows.into_iter()
            .next()
            .map(|row| serde_json::from_str(&row.value).map_err(worker::Error::from))
            .transpose()
    }

    pub fn save_access_facts(&self, facts: &AccessFacts) -> Result<()> {
        let value = serde_json::to_string(facts)?;
        self.sql.exec(
            "INSERT INTO meta (key, value) VALUES ('access', ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![text(&value)],
        )?;
        Ok(())
    }

    /// A value of the `meta` table (`None` when absent).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        let rows: Vec<MetaRow> = self
            .sql
            .exec("SELECT value FROM meta WHERE key = ?", vec![text(key)])?
            .to_array()?;
        Ok(rows.into_iter().next().map(|row| row.value))
    }

    pub fn save_meta(&self, key: &str, value: &str) -> Result<()> {
        self.sql.exec(
            "INSERT INTO meta (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![text(key), text(value)],
        )?;
        Ok(())
    }

    /// Deletes the `meta` rows whose key starts with `prefix` and whose JSON value's
    /// `expires_at_secs` is before `now_secs`.
    pub fn delete_expired_meta(&self, prefix: &str, now_secs: u64) -> Result<()> {
        self.sql.exec(
            "DELETE FROM meta WHERE key LIKE ? AND json_extract(value, '$.expires_at_secs') <= ?",
            vec![text(&format!("{prefix}%")), unsigned(now_secs)],
        )?;
        Ok(())
    }

    /// Forgets everything (prompts, events, runner epochs) and leaves a tombstone
    /// record: deleted, with a sandbox generation past every token issued.
    pub fn wipe(&self, generation: u64) -> Result<()> {
        for table in ["prompts", "events", "runner_epochs", "meta"] {
            self.sql.exec(&format!("DELETE FROM {table}"), None)?;
        }
        self.save_record(&SessionRecord {
            deleted: true,
            sandbox_generation: generation,
            ..SessionRecord::default()
        })
    }

    /// The open part of the queue (prompts waiting or running), in creation order:
    /// what every queue operation works on. Finished prompts are never loaded for
    /// them, so a session's long history costs nothing per prompt.
    pub fn queue(&self) -> Result<PromptQueue> {
        self.prompts_where(&format!("state IN {OPEN_STATES}"), Vec::new())
    }

    /// The open queue and the prompt `id` whatever its state (so that editing or
    /// cancelling a finished prompt is told why it cannot be, not that it is
    /// unknown).
    pub fn queue_with(&self, id: &str) -> Result<PromptQueue> {
        self.prompts_where(&format!("state IN {OPEN_STATES} OR id = ?"), vec![text(id)])
    }

    /// What `GET /messages` shows: the open queue and the newest [`HISTORY`]
    /// prompts, oldest first.
    pub fn recent_queue(&self) -> Result<PromptQueue> {
        self.prompts_where(
            &format!(
                "state IN {OPEN_STATES} OR rowid > (SELECT COALESCE(MAX(rowid), 0) FROM prompts) - {HISTORY}"
            ),
            Vec::new(),
        )
    }

    /// Token usage and time of every finished turn, added up in SQL.
    pub fn usage_totals(&self) -> Result<UsageTotals> {
        #[derive(Deserialize)]
        struct Totals {
            input: Option<i64>,
            output: Option<i64>,
            duration: Option<i64>,
            turns: i64,
        }
        let rows: Vec<Totals> = self
            .sql
            .exec(
                "SELECT SUM(usage_input) AS input, SUM(usage_output) AS output, \
                 SUM(duration_ms) AS duration, COUNT(*) AS turns FROM prompts \
                 WHERE state IN ('done', 'failed', 'aborted')",
                None,
            )?
            .to_array()?;
        let totals = rows.into_iter().next();
        let count = |value: Option<i64>| u64::try_from(value.unwrap_or(0)).unwrap_or(0);
        Ok(
            totals.map_or_else(UsageTotals::default, |totals| UsageTotals {
                input_tokens: count(totals.input),
                output_tokens: count(totals.output),
                duration_ms: count(totals.duration),
                turns: count(Some(totals.turns)),
            }),
        )
    }

    fn prompts_where(&self, condition: &str, args: Vec<SqlStorageValue>) -> Result<PromptQueue> {
        let rows: Vec<PromptRow> = self
            .sql
            .exec(
                &format!("SELECT * FROM prompts WHERE {condition} ORDER BY rowid"),
                args,
            )?
            .to_array()?;
        let prompts = rows
            .into_iter()
            .map(|row| Prompt {
                message: Message {
                    id: row.id,
                    content: row.content,
                    // A state this version does not know cannot run; treat it as failed.
                    state: MessageState::parse(&row.state).unwrap_or(MessageState::Failed),
                    position: None,
                    turn_id: row.turn_id,
                    attempts: row.attempts,
                    reply: row.reply,
                    error: row.error,
                    created_at: row.created_at,
                    started_at: row.started_at,
                    finished_at: row.finished_at,
                    mode: row
                        .mode
                        .as_deref()
                        .and_then(QueueMode::parse)
                        .unwrap_or_default(),
                    usage: match (row.usage_input, row.usage_output) {
                        (None, None) => None,
                        (input, output) => Some(TokenUsage {
                            input_tokens: input.unwrap_or(0),
                            output_tokens: output.unwrap_or(0),
                        }),
                    },
                    duration_ms: row.duration_ms,
                    sent_by: row.sent_by,
                },
                queue_order: row.queue_order,
                runner_epoch: row.runner_epoch,
                collect_until: row.collect_until,
            })
            .collect();
        Ok(PromptQueue::from_prompts(prompts))
    }

    /// Inserts or updates one prompt; an update keeps its place in creation order.
    pub fn save_prompt(&self, prompt: &Prompt) -> Result<()> {
        let m = &prompt.message;
        self.sql.exec(
            "INSERT INTO prompts (id, content, state, queue_order, turn_id, runner_epoch, attempts, \
                                  reply, error, created_at, started_at, finished_at, mode, \
                                  usage_input, usage_output, duration_ms, collect_until, sent_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET content = excluded.content, state = excluded.state, \
                queue_order = excluded.queue_order, \
                turn_id = excluded.turn_id, runner_epoch = excluded.runner_epoch, \
                attempts = excluded.attempts, reply = excluded.reply, error = excluded.error, \
                started_at = excluded.started_at, finished_at = excluded.finished_at, \
                usage_input = excluded.usage_input, usage_output = excluded.usage_output, \
                duration_ms = excluded.duration_ms, collect_until = excluded.collect_until, \
                sent_by = excluded.sent_by",
            vec![
                text(&m.id),
                text(&m.content),
                text(m.state.as_str()),
                integer(prompt.queue_order),
                optional_text(m.turn_id.as_deref()),
                optional_text(prompt.runner_epoch.as_deref()),
                integer(i64::from(m.attempts)),
                optional_text(m.reply.as_deref()),
                optional_text(m.error.as_deref()),
                integer(m.created_at),
                m.started_at.map_or(SqlStorageValue::Null, integer),
                m.finished_at.map_or(SqlStorageValue::Null, integer),
                text(m.mode.as_str()),
                m.usage
                    .map_or(SqlStorageValue::Null, |u| unsigned(u.input_tokens)),
                m.usage
                    .map_or(SqlStorageValue::Null, |u| unsigned(u.output_tokens)),
                m.duration_ms.map_or(SqlStorageValue::Null, unsigned),
                prompt.collect_until.map_or(SqlStorageValue::Null, integer),
                optional_text(m.sent_by.as_deref()),
            ],
        )?;
        Ok(())
    }

    /// Stores an event with the next `seq`. `runner` is the `(epoch, local_seq)` of an
    /// event that came from a runner.
    pub fn append_event(
        &self,
        turn_id: Option<&str>,
        runner: Option<(&str, u64)>,
        body: EventBody,
        at: i64,
    ) -> Result<SessionEvent> {
        let last: Vec<Count> = self
            .sql
            .exec("SELECT COALESCE(MAX(seq), 0) AS value FROM events", None)?
            .to_array()?;
        let seq = Sequencer::after(last.first().map_or(0, |row| row.value)).next_seq();
        let json = serde_json::to_string(&body)?;
        self.sql.exec(
            "INSERT INTO events (seq, turn_id, epoch, local_seq, body, at) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                unsigned(seq),
                optional_text(turn_id),
                optional_text(runner.map(|(epoch, _)| epoch)),
                runner.map_or(SqlStorageValue::Null, |(_, local_seq)| unsigned(local_seq)),
                text(&json),
                integer(at),
            ],
        )?;
        Ok(SessionEvent {
            seq,
            turn_id: turn_id.map(str::to_owned),
            at,
            body,
        })
    }

    /// At most `limit` events after `after`, in order (one page of a replay).
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<SessionEvent>> {
        let rows: Vec<EventRow> = self
            .sql
            .exec(
                "SELECT seq, turn_id, body, at FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![
                    unsigned(after),
                    unsigned(u64::try_from(limit).unwrap_or(u64::MAX)),
                ],
            )?
            .to_array()?;
        rows.into_iter()
            .map(|row| {
                Ok(SessionEvent {
                    seq: row.seq,
                    turn_id: row.turn_id,
                    at: row.at,
                    body: serde_json::from_str(&row.body)?,
                })
            })
            .collect()
    }

    /// The reply text of a turn: its text deltas, concatenated in order.
    pub fn turn_reply(&self, turn_id: &str) -> Result<Option<String>> {
        let rows: Vec<EventRow> = self
            .sql
            .exec(
                "SELECT seq, turn_id, body, at FROM events \
                 WHERE turn_id = ? AND body LIKE '{\"type\":\"text_delta\"%' ORDER BY seq",
                vec![text(turn_id)],
            )?
            .to_array()?;
        let mut reply = ReplyText::new();
        for row in rows {
            reply.push(&serde_json::from_str(&row.body)?);
        }
        Ok(reply.finish())
    }

    /// Whether turn `turn_id` already has its `turn_finished` event.
    pub fn turn_finished(&self, turn_id: &str) -> Result<bool> {
        let rows: Vec<Count> = self
            .sql
            .exec(
                "SELECT COUNT(*) AS value FROM events \
                 WHERE turn_id = ? AND body LIKE '{\"type\":\"turn_finished\"%'",
                vec![text(turn_id)],
            )?
            .to_array()?;
        Ok(rows.first().is_some_and(|row| row.value > 0))
    }

    /// The events that open or close questions, in order.
    pub fn question_events(&self) -> Result<Vec<SessionEvent>> {
        let rows: Vec<EventRow> = self
            .sql
            .exec(
                "SELECT seq, turn_id, body, at FROM events \
                 WHERE body LIKE '{\"type\":\"question_%' \
                    OR body LIKE '{\"type\":\"turn_finished\"%' \
                    OR body LIKE '{\"type\":\"turn_interrupted\"%' \
                 ORDER BY seq",
                None,
            )?
            .to_array()?;
        rows.into_iter()
            .map(|row| {
                Ok(SessionEvent {
                    seq: row.seq,
                    turn_id: row.turn_id,
                    at: row.at,
                    body: serde_json::from_str(&row.body)?,
                })
            })
            .collect()
    }

    /// The highest `local_seq` taken in from runner `epoch`, if any.
    pub fn epoch_acked(&self, epoch: &str) -> Result<Option<u64>> {
        let rows: Vec<Count> = self
            .sql
            .exec(
                "SELECT acked AS value FROM runner_epochs WHERE epoch = ?",
                vec![text(epoch)],
            )?
            .to_array()?;
        Ok(rows.first().map(|row| row.value))
    }

    pub fn set_epoch_acked(&self, epoch: &str, acked: u64) -> Result<()> {
        self.sql.exec(
            "INSERT INTO runner_epochs (epoch, acked) VALUES (?, ?) \
             ON CONFLICT (epoch) DO UPDATE SET acked = excluded.acked",
            vec![text(epoch), unsigned(acked)],
        )?;
        Ok(())
    }
}
