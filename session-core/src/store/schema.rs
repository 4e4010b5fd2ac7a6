//! The SQL that creates the session's tables, and the upgrades that bring a
//! database made by an earlier version up to date.
//!
//! Columns added after the first release (`mode`, `usage_*`, `duration_ms`,
//! `collect_until`, `sent_by` on `prompts`, all nullable or defaulted) are added by
//! [`UPGRADES`] to databases created before them; each statement fails harmlessly
//! once its column exists.

pub(super) const SCHEMA: &[&str] = &[
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
    "CREATE TABLE IF NOT EXISTS conversation (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS turn_checkpoints (
        turn_id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        conversation_len INTEGER NOT NULL,
        state TEXT NOT NULL,
        checkpoint_id TEXT,
        sandbox_id TEXT,
        error TEXT,
        finished_at INTEGER NOT NULL,
        rewound INTEGER NOT NULL DEFAULT 0
    )",
    "CREATE TABLE IF NOT EXISTS conversation_rewound (
        rewound_at INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        entry TEXT NOT NULL
    )",
];

/// Columns added later; run after [`SCHEMA`], ignoring "duplicate column" failures.
pub(super) const UPGRADES: &[&str] = &[
    "ALTER TABLE prompts ADD COLUMN mode TEXT NOT NULL DEFAULT 'followup'",
    "ALTER TABLE prompts ADD COLUMN usage_input INTEGER",
    "ALTER TABLE prompts ADD COLUMN usage_output INTEGER",
    "ALTER TABLE prompts ADD COLUMN duration_ms INTEGER",
    "ALTER TABLE prompts ADD COLUMN collect_until INTEGER",
    "ALTER TABLE prompts ADD COLUMN sent_by TEXT",
];
