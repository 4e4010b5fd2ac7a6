//! The plain logic of one Nightshift session, shared by the Worker's `SessionAgent`
//! Durable Object and by any native code that needs the same rules.
//!
//! It owns the decisions and the storage's SQL, not the SQLite engine or the
//! sockets: which status a session is in ([`lifecycle`]), the session's life as
//! one table of phases, inputs and effects ([`session_machine`]), when an unconfirmed abort
//! ends its turn ([`abort`]), when the session's one alarm rings ([`alarm`]), who is watching it ([`presence`]), how
//! prompts move through the queue ([`queue`]), how runner events are numbered and
//! deduplicated so each is stored exactly once ([`event_log`]), whether an agent's
//! question can still be answered ([`questions`]), what to do when a runner says hello
//! ([`runner_link`]), who may hold the runner link and how much a runner may send
//! ([`runner_intake`]), how runner tokens are issued and checked ([`runner_token`]), how gateway
//! keys are derived and gateway tokens minted and checked ([`gateway_token`]), how panel
//! capabilities are minted and checked ([`panel_capability`]) and the signing steps
//! all three share (`signing`),
//! the rules of repo-aware sessions (branch names, commit authors, the team's
//! allow-list, which git credentials a session may ask for: [`repo_rules`]),
//! what a settings request changes ([`settings`]), how long an idle session waits before it sleeps ([`sleep_time`]), what a turn costs and which spend cap is reached ([`spend`]), who is told what when a turn ends or the agent asks ([`notices`]), how the session's SQLite storage
//! is laid out and read ([`store`], over any synchronous [`store::Sql`]), the steps
//! of a turn over that store ([`turns`]), how an event stream replays and
//! buffers in bounded memory ([`streams`]) and how a session is titled ([`title`]).
//!
//! Invariant: this crate never depends on `worker`, `tokio` or any other platform crate,
//! and it reads no clock of its own (callers pass the time in). That keeps it building
//! for `wasm32-unknown-unknown` and native targets and makes every rule unit-testable.

pub mod abort;
pub mod access_facts;
pub mod alarm;
pub mod diff_view;
pub mod event_log;
pub mod gateway_token;
pub mod lifecycle;
pub mod notices;
pub mod panel_capability;
pub mod presence;
pub mod questions;
pub mod queue;
pub mod repo_intake;
pub mod repo_rules;
pub mod runner_intake;
pub mod runner_link;
pub mod runner_token;
pub mod session_machine;
pub mod settings;
mod signing;
pub mod sleep_time;
pub mod spend;
pub mod store;
pub mod streams;
pub mod title;
pub mod turns;
