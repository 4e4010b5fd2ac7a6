//! The session's storage: one SQLite schema and every read and write the
//! `SessionAgent` makes, over a small [`Sql`] trait so the same SQL text runs in the
//! Durable Object (its SQLite storage, through a thin adapter in the Worker) and
//! natively (real SQLite in this crate's tests).
//!
//! Tables:
//! - `meta`: key-value; `session` holds the [`SessionRecord`] as JSON, `access` the
//!   session's [`AccessFacts`](crate::access_facts::AccessFacts) (owner and shares).
//! - `prompts`: the queue, one row per prompt, in creation order (`rowid`).
//! - `events`: the event log; `seq` is the per-session sequence number, and
//!   `(epoch, local_seq)` identifies a runner event so a resend is never stored twice.
//! - `runner_epochs`: per runner epoch, the highest `local_seq` taken in.
//! - `turn_checkpoints`: per finished turn, its checkpoint (pending, kept in which
//!   sandbox, or failed), the conversation's length then, and whether it was rewound;
//!   `conversation_rewound`: conversation entries a rewind set aside.
//!
//! Because every call here is synchronous, a caller that does its reads and writes
//! without an `.await` in between sees and leaves a consistent state, and the
//! Durable Object runtime commits those writes together.
//!
//! Invariant: nothing here knows which SQLite it talks to; an implementation of
//! [`Sql`] only runs a statement and hands back its rows.

use serde::de::DeserializeOwned;

pub mod checkpoints;
mod conversation;
mod events;
mod prompts;
mod record;
mod repo_state;
mod schema;

pub use checkpoints::TurnCheckpoint;
pub use conversation::ConversationRefusal;
pub use events::Compaction;
pub use record::{Published, PublishedAgent, SessionRecord};

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Text(String),
}

impl SqlValue {
    pub fn text(value: &str) -> Self {
        Self::Text(value.to_owned())
    }

    pub fn optional_text(value: Option<&str>) -> Self {
        value.map_or(Self::Null, Self::text)
    }

    /// An unsigned number; SQLite integers are signed, so one past `i64::MAX` is
    /// stored as `i64::MAX` (no count here comes near it).
    pub fn unsigned(value: u64) -> Self {
        Self::Integer(i64::try_from(value).unwrap_or(i64::MAX))
    }

    pub fn optional_integer(value: Option<i64>) -> Self {
        value.map_or(Self::Null, Self::Integer)
    }

    pub fn optional_unsigned(value: Option<u64>) -> Self {
        value.map_or(Self::Null, Self::unsigned)
    }
}

/// One result row: column name to value (integers as JSON integers, text as
/// strings, NULL as `null`), decoded into typed rows with serde.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// The synchronous SQL the session's storage needs: run one statement with its
/// positional parameters and return every row it yields (none for a write).
pub trait Sql {
    /// How the storage reports a failure. It also carries the JSON errors of
    /// values this store cannot decode, so a caller sees one error type.
    type Error: From<serde_json::Error>;

    fn exec(&self, query: &str, params: &[SqlValue]) -> Result<Vec<Row>, Self::Error>;
}

/// The session's storage over one SQLite database.
#[derive(Debug, Clone)]
pub struct SessionStore<S> {
    sql: S,
}

impl<S: Sql> SessionStore<S> {
    /// Opens the storage, creating the schema if it is new and adding the columns
    /// of later versions to a database made before them.
    pub fn open(sql: S) -> Result<Self, S::Error> {
        for statement in schema::SCHEMA {
            sql.exec(statement, &[])?;
        }
        for statement in schema::UPGRADES {
            // Fails with "duplicate column name" once the column exists.
            let _ = sql.exec(statement, &[]);
        }
        Ok(Self { sql })
    }

    /// Runs a write (or any statement whose rows are not needed).
    fn run(&self, query: &str, params: &[SqlValue]) -> Result<(), S::Error> {
        self.sql.exec(query, params).map(drop)
    }

    /// Runs a query and decodes each row into `T`.
    fn rows<T: DeserializeOwned>(
        &self,
        query: &str,
        params: &[SqlValue],
    ) -> Result<Vec<T>, S::Error> {
        self.sql
            .exec(query, params)?
            .into_iter()
            .map(|row| Ok(serde_json::from_value(serde_json::Value::Object(row))?))
            .collect()
    }
}
