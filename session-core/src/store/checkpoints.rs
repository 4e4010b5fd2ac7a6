//! The checkpoint kept after each turn (table `turn_checkpoints`) and the
//! conversation entries a rewind set aside (table `conversation_rewound`).
//!
//! A finished turn gets a `pending` row in the same step that finishes it, with the
//! conversation's length at that moment (the runner writes a turn's entries before
//! it reports the turn finished); the `SessionAgent` then asks the sandbox backend
//! for the checkpoint and records it `kept` (with the sandbox it belongs to) or
//! `failed`. The next prompt waits while a row is pending.

use serde::Deserialize;

use super::{SessionStore, Sql, SqlValue};

/// What is known of one finished turn's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TurnCheckpoint {
    pub turn_id: String,
    pub message_id: String,
    /// How many conversation entries the session kept when the turn ended.
    pub conversation_len: u64,
    /// `pending`, `kept` or `failed`.
    pub state: String,
    pub checkpoint_id: Option<String>,
    pub sandbox_id: Option<String>,
    pub error: Option<String>,
    pub finished_at: i64,
    /// Set when a rewind went back past this turn.
    pub rewound: bool,
}

pub const PENDING: &str = "pending";
pub const KEPT: &str = "kept";
pub const FAILED: &str = "failed";

#[derive(Deserialize)]
struct Row {
    turn_id: String,
    message_id: String,
    conversation_len: i64,
    state: String,
    checkpoint_id: Option<String>,
    sandbox_id: Option<String>,
    error: Option<String>,
    finished_at: i64,
    rewound: i64,
}

impl From<Row> for TurnCheckpoint {
    fn from(row: Row) -> TurnCheckpoint {
        TurnCheckpoint {
            turn_id: row.turn_id,
            message_id: row.message_id,
            conversation_len: u64::try_from(row.conversation_len).unwrap_or(0),
            state: row.state,
            checkpoint_id: row.checkpoint_id,
            sandbox_id: row.sandbox_id,
            error: row.error,
            finished_at: row.finished_at,
            rewound: row.rewound != 0,
        }
    }
}

const COLUMNS: &str = "turn_id, message_id, conversation_len, state, checkpoint_id, sandbox_id, \
                       error, finished_at, rewound";

impl<S: Sql> SessionStore<S> {
    /// Records that `turn_id` ended and waits for its checkpoint (once per turn).
    pub fn checkpoint_pending(
        &self,
        turn_id: &str,
        message_id: &str,
        now: i64,
    ) -> Result<(), S::Error> {
        let conversation_len = self.conversation_len()?;
        self.run(
            "INSERT OR IGNORE INTO turn_checkpoints \
             (turn_id, message_id, conversation_len, state, finished_at, rewound) \
             VALUES (?, ?, ?, 'pending', ?, 0)",
            &[
                SqlValue::text(turn_id),
                SqlValue::text(message_id),
                SqlValue::unsigned(conversation_len),
                SqlValue::Integer(now),
            ],
        )
    }

    /// The oldest turn still waiting for its checkpoint.
    pub fn pending_checkpoint(&self) -> Result<Option<TurnCheckpoint>, S::Error> {
        let rows: Vec<Row> = self.rows(
            &format!(
                "SELECT {COLUMNS} FROM turn_checkpoints WHERE state = 'pending' \
                 ORDER BY finished_at, rowid LIMIT 1"
            ),
            &[],
        )?;
        Ok(rows.into_iter().next().map(TurnCheckpoint::from))
    }

    pub fn checkpoint_kept(
        &self,
        turn_id: &str,
        sandbox_id: &str,
        checkpoint_id: &str,
    ) -> Result<(), S::Error> {
        self.run(
            "UPDATE turn_checkpoints SET state = 'kept', sandbox_id = ?, checkpoint_id = ?, \
             error = NULL WHERE turn_id = ?",
            &[
                SqlValue::text(sandbox_id),
                SqlValue::text(checkpoint_id),
                SqlValue::text(turn_id),
            ],
        )
    }

    pub fn checkpoint_failed(&self, turn_id: &str, error: &str) -> Result<(), S::Error> {
        self.run(
            "UPDATE turn_checkpoints SET state = 'failed', error = ? WHERE turn_id = ?",
            &[SqlValue::text(error), SqlValue::text(turn_id)],
        )
    }

    pub fn turn_checkpoint(&self, turn_id: &str) -> Result<Option<TurnCheckpoint>, S::Error> {
        let rows: Vec<Row> = self.rows(
            &format!("SELECT {COLUMNS} FROM turn_checkpoints WHERE turn_id = ?"),
            &[SqlValue::text(turn_id)],
        )?;
        Ok(rows.into_iter().next().map(TurnCheckpoint::from))
    }

    /// The turns that ended after `turn` and are not rewound yet, oldest first.
    pub fn turns_after(&self, turn: &TurnCheckpoint) -> Result<Vec<TurnCheckpoint>, S::Error> {
        let rows: Vec<Row> = self.rows(
            &format!(
                "SELECT {COLUMNS} FROM turn_checkpoints \
                 WHERE rewound = 0 AND rowid > (SELECT rowid FROM turn_checkpoints WHERE turn_id = ?) \
                 ORDER BY rowid"
            ),
            &[SqlValue::text(&turn.turn_id)],
        )?;
        Ok(rows.into_iter().map(TurnCheckpoint::from).collect())
    }

    pub fn mark_rewound(&self, turn_id: &str) -> Result<(), S::Error> {
        self.run(
            "UPDATE turn_checkpoints SET rewound = 1 WHERE turn_id = ?",
            &[SqlValue::text(turn_id)],
        )
    }

    /// Sets the conversation's entries from `position` on aside (kept, under the
    /// time of the rewind, but no longer part of what the runner reads).
    pub fn rewind_conversation(&self, position: u64, now: i64) -> Result<(), S::Error> {
        let position = SqlValue::unsigned(position);
        self.run(
            "INSERT INTO conversation_rewound (rewound_at, idx, entry) \
             SELECT ?, idx, entry FROM conversation WHERE idx >= ?",
            &[SqlValue::Integer(now), position.clone()],
        )?;
        self.run("DELETE FROM conversation WHERE idx >= ?", &[position])
    }

    /// How many entries rewinds have set aside.
    pub fn rewound_conversation_len(&self) -> Result<u64, S::Error> {
        #[derive(Deserialize)]
        struct Count {
            n: i64,
        }
        let rows: Vec<Count> = self.rows("SELECT COUNT(*) AS n FROM conversation_rewound", &[])?;
        Ok(rows.first().map_or(0, |c| u64::try_from(c.n).unwrap_or(0)))
    }
}
