//! The enqueue -> dispatch -> runner events -> finish cycle of a session, run with
//! the `SessionAgent`'s own store and turn steps over real SQLite (a file that
//! outlives each store, as Durable Object storage outlives the object): queue modes,
//! exactly-once intake of runner events, aborts, and a restart in the middle.

mod abort;
mod archive;
mod compaction;
mod conversation;
mod harness;
mod notices;
mod queue;
mod rewind;
mod runner;
mod sleep;
mod sqlite;
