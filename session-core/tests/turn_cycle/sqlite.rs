//! The store's [`Sql`] over real SQLite (rusqlite, bundled), the engine Durable
//! Object storage is built on: the same SQL text the `SessionAgent` runs, run
//! natively, against a database file that outlives the store.

use std::path::Path;

use nightshift_session::store::{Row, Sql, SqlValue};
use rusqlite::types::{Value as SqliteValue, ValueRef};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

pub struct Sqlite {
    connection: rusqlite::Connection,
}

impl Sqlite {
    pub fn open(path: &Path) -> Self {
        Self {
            connection: rusqlite::Connection::open(path).expect("a test database opens"),
        }
    }

    /// Runs SQL outside the store (to lay out an older schema).
    pub fn execute_batch(&self, sql: &str) {
        self.connection.execute_batch(sql).expect("the SQL runs");
    }
}

impl Sql for Sqlite {
    type Error = SqliteError;

    fn exec(&self, query: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqliteError> {
        let mut statement = self.connection.prepare(query)?;
        let names: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let bindings = params.iter().map(|value| match value {
            SqlValue::Null => SqliteValue::Null,
            SqlValue::Integer(number) => SqliteValue::Integer(*number),
            SqlValue::Text(text) => SqliteValue::Text(text.clone()),
        });
        let mut rows = statement.query(rusqlite::params_from_iter(bindings))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut columns = Row::new();
            for (index, name) in names.iter().enumerate() {
                // The shapes the Durable Object's cursor gives: integers, floats,
                // strings and null.
                let value = match row.get_ref(index)? {
                    ValueRef::Null | ValueRef::Blob(_) => Value::Null,
                    ValueRef::Integer(number) => Value::from(number),
                    ValueRef::Real(number) => Value::from(number),
                    ValueRef::Text(text) => Value::String(String::from_utf8_lossy(text).into()),
                };
                columns.insert(name.clone(), value);
            }
            out.push(columns);
        }
        Ok(out)
    }
}
