//! The `SessionAgent`'s storage: [`nightshift_session::store::SessionStore`] (the
//! schema and every read and write, all synchronous) over the object's SQLite
//! storage (`state.storage().sql()`). This file is only the adapter that runs the
//! store's SQL on `worker::SqlStorage`; the same SQL runs natively over real SQLite
//! in `session-core`'s tests.

use nightshift_session::store::{Row, SessionStore, Sql, SqlValue};
use worker::{SqlStorage, SqlStorageValue};

pub use nightshift_session::store::{Published, PublishedAgent, SessionRecord};

/// The object's storage.
pub type Store = SessionStore<DurableSql>;

/// The Durable Object's SQLite storage, as the store's [`Sql`].
#[derive(Debug, Clone)]
pub struct DurableSql(pub SqlStorage);

impl Sql for DurableSql {
    type Error = worker::Error;

    fn exec(&self, query: &str, params: &[SqlValue]) -> worker::Result<Vec<Row>> {
        let bindings = params
            .iter()
            .map(|value| match value {
                SqlValue::Null => SqlStorageValue::Null,
                SqlValue::Integer(number) => SqlStorageValue::Integer(*number),
                SqlValue::Text(text) => SqlStorageValue::String(text.clone()),
            })
            .collect::<Vec<_>>();
        self.0.exec(query, bindings)?.to_array()
    }
}
