//! The `SessionAgent` Durable Object: one per chat session (named by the session
//! id), the single owner of that session's prompt queue, event log and runner link.
//!
//! This file is the shell: the object's fields and the runtime's entry points. The
//! work is split by feature into the `session_agent/` modules, and the rules they
//! apply live in `nightshift_session`:
//! - [`storage`]: the object's SQLite storage as `nightshift_session::store`'s `Sql`
//!   (the schema and every read and write live there, all synchronous);
//! - [`requests`]: the internal routes the Worker calls (init, prompts, the event
//!   stream);
//! - [`control`]: control of turns (queue modes, edits, abort and its deadline,
//!   agent settings, answers to questions) and the alarm;
//! - [`runner_link`]: the runner's hibernatable WebSocket (hello, events, pings);
//! - [`turns`]: applying `nightshift_session::turns`' steps (fanning out their events,
//!   sending their frames) and dispatching the next prompt;
//! - [`provisioning`]: requesting the sandbox from the backend;
//! - [`sleep`]: sleep at the idle time and wake (the machine's effects that reach
//!   the backend);
//! - [`panels`]: the grants panel capabilities name, and re-checking them;
//! - [`publishing`]: keeping the D1 row and the session-list stream current;
//! - [`conversation`]: the copy of the agent's conversation its runner keeps here;
//! - [`git`]: the session's repository and whose GitHub access a git credential
//!   uses, and the `github_reconnect_required` event;
//! - [`spend`]: the turn's tokens and cost in the ledger, the spend caps, the
//!   sandbox's time;
//! - [`checkpoints`]: the checkpoint kept after each turn, and rewinds;
//! - [`access`]: admitting calls against the session's owner and shares;
//! - [`stream_access`]: ending the streams of viewers who lost access;
//! - [`notify`]: inbox entries and webhook posts for a turn's end and the agent's
//!   questions.
//!
//! Invariants: all state lives in SQLite, so the object can be evicted or hibernate
//! at any time and rebuilds nothing but its list of live SSE subscribers (which only
//! exist while it is awake). State changes happen in synchronous stretches (no
//! `.await` between reading and writing) and no `RefCell` borrow is held across an
//! `.await`.

use std::cell::{Cell, RefCell};

use worker::{
    DurableObject, Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage,
    durable_object,
};

use crate::sse::Subscribers;

mod access;
mod checkpoints;
mod control;
mod conversation;
mod git;
mod notify;
mod panels;
pub mod presence;
mod provisioning;
mod publishing;
mod repo_view;
mod requests;
mod runner_link;
mod sleep;
mod spend;
mod storage;
mod stream_access;
mod turns;

use storage::Store;

#[durable_object]
pub struct SessionAgent {
    state: State,
    env: Env,
    store: Store,
    /// Open `GET /events` streams of this session.
    subscribers: std::rc::Rc<Subscribers>,
    /// Who is watching the session: heartbeat leases (see [`presence`]).
    presence: std::rc::Rc<presence::Presence>,
    /// Writes the session's D1 row and list events in the background (see
    /// [`publishing`]).
    publisher: std::rc::Rc<publishing::Publisher>,
    /// The runner's intake budget (see `runner_link`); in memory only, since the
    /// object only hibernates while no events flow, which refills it anyway.
    intake: Cell<Option<nightshift_session::runner_intake::IntakeBucket>>,
    /// When the open streams' viewers are next checked for access (see
    /// [`stream_access`]); `None` while no stream is open.
    stream_access_check_at: Cell<Option<i64>>,
    /// Orders reloads of the access facts (see [`access`]).
    access_reloads: RefCell<nightshift_session::access_facts::Reloads>,
    /// A checkpoint is being taken or restored: no prompt starts meanwhile (see
    /// [`checkpoints`]). In memory: a restarted object takes a pending one again.
    files_busy: Cell<bool>,
}

impl DurableObject for SessionAgent {
    fn new(state: State, env: Env) -> Self {
        let store = Store::open(storage::DurableSql(state.storage().sql()))
            .expect("the SessionAgent schema is valid SQL and its storage is SQLite-backed");
        let publisher = std::rc::Rc::new(publishing::Publisher::new(env.clone(), store.clone()));
        Self {
            state,
            env,
            store,
            subscribers: std::rc::Rc::new(Subscribers::new()),
            presence: std::rc::Rc::default(),
            publisher,
            intake: Cell::new(None),
            stream_access_check_at: Cell::new(None),
            access_reloads: RefCell::default(),
            files_busy: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        Ok(match self.route(req).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        })
    }

    async fn alarm(&self) -> Result<Response> {
        // Presence leases that ran out; `on_alarm` sets the alarm again for the rest.
        self.presence
            .expire(crate::clock::now_ms(), &self.subscribers);
        self.check_stream_access().await;
        if let Err(error) = self.on_alarm().await {
            worker::console_error!("alarm: {}", error.message);
        }
        Response::empty()
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        if let Err(error) = self.on_runner_message(&ws, message).await {
            worker::console_error!("runner link: {error}");
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        if let Err(error) = self.on_runner_gone(&ws).await {
            worker::console_error!("runner link close: {error}");
        }
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        if let Err(error) = self.on_runner_gone(&ws).await {
            worker::console_error!("runner link error: {error}");
        }
        Ok(())
    }
}
