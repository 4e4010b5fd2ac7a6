//! Keeping the world outside the object current: the session's D1 row (status,
//! title, sandbox id, error) and the session-list stream (`EventBus`).
//!
//! Publishing happens after the answer: a handler takes a snapshot of what the world
//! should show ([`SessionAgent::publish`], synchronous) and the object's
//! [`Publisher`] writes it in the background (kept alive by `waitUntil`), so no
//! request waits on D1 or the bus. Writes are serialized through one loop: whoever
//! finds it idle starts it; a snapshot taken while it runs replaces any snapshot
//! still waiting, and the loop goes round once more. So the newest state is always
//! written last, and a burst of changes costs one write. What was last written is
//! stored, so after an eviction the next change catches up, and a snapshot with
//! nothing new does no I/O.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use nightshift_protocol::events::SessionListEvent;
use nightshift_session::lifecycle::visible_error;
use worker::Env;

use super::SessionAgent;
use super::storage::{Published, PublishedAgent, Store};
use crate::api_error::ApiError;
use crate::sessions_table::{self, AgentUpdate, SessionUpdate};
use crate::{clock, internal};

/// The background writer of a session's published state.
pub(super) struct Publisher {
    env: Env,
    store: Store,
    running: Cell<bool>,
    /// The newest snapshot not written yet: the session id and what to show.
    pending: RefCell<Option<(String, Published)>>,
}

impl Publisher {
    pub(super) fn new(env: Env, store: Store) -> Self {
        Self {
            env,
            store,
            running: Cell::new(false),
            pending: RefCell::new(None),
        }
    }

    /// Takes `snapshot` to write; answers whether the caller must start the loop.
    fn submit(&self, session_id: String, snapshot: Published) -> bool {
        *self.pending.borrow_mut() = Some((session_id, snapshot));
        !self.running.replace(true)
    }

    async fn run(self: Rc<Self>) {
        loop {
            let next = self.pending.borrow_mut().take();
            let Some((session_id, snapshot)) = next else {
                self.running.set(false);
                return;
            };
            if let Err(error) = self.write(&session_id, snapshot).await {
                worker::console_warn!("publishing the session's state failed: {}", error.message);
            }
        }
    }

    async fn write(&self, session_id: &str, current: Published) -> Result<(), ApiError> {
        let record = self.store.record()?;
        if record.deleted || record.published.as_ref() == Some(&current) {
            return Ok(());
        }
        let previous = record.published;
        let previous_agent = previous.as_ref().and_then(|p| p.agent.clone());
        if let Some(agent) = &current.agent
            && previous_agent.as_ref() != Some(agent)
        {
            let update = AgentUpdate {
                agent: agent.agent,
                model: agent.model.clone(),
                permission_mode: agent.permission_mode,
                usage: agent.usage,
            };
            sessions_table::update_agent(&self.env, session_id, &update).await?;
        }
        let update = SessionUpdate {
            status: current.status,
            title: current.title.clone(),
            sandbox_id: current.sandbox_id.clone(),
            error: current.error.clone(),
            archived_at: current.archived_at,
            updated_at: clock::now_ms(),
        };
        sessions_table::update(&self.env, session_id, &update).await?;

        if previous.as_ref().map(|p| p.status) != Some(current.status) {
            let event = SessionListEvent::SessionStatusChanged {
                session_id: session_id.to_owned(),
                status: current.status,
            };
            internal::publish(&self.env, &event).await;
        }
        if previous.as_ref().map(|p| p.title.as_str()) != Some(current.title.as_str()) {
            let event = SessionListEvent::SessionTitleChanged {
                session_id: session_id.to_owned(),
                title: current.title.clone(),
            };
            internal::publish(&self.env, &event).await;
        }

        // Read again before writing: the record changed during the awaits.
        let mut record = self.store.record()?;
        if !record.deleted {
            record.published = Some(current);
            self.store.save_record(&record)?;
        }
        Ok(())
    }
}

impl SessionAgent {
    /// Has D1 and the session-list stream brought up to date in the background.
    /// Failures are logged: the next change retries.
    pub(super) fn publish(&self) {
        let snapshot = match self.snapshot() {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return,
            Err(error) => {
                worker::console_warn!("reading the session's state failed: {error}");
                return;
            }
        };
        let (session_id, snapshot) = snapshot;
        if self.publisher.submit(session_id, snapshot) {
            let publisher = self.publisher.clone();
            self.state.wait_until(publisher.run());
        }
    }

    /// What the world should show now, unless it already does.
    fn snapshot(&self) -> worker::Result<Option<(String, Published)>> {
        let record = self.store.record()?;
        if !record.initialized || record.session_id.is_empty() || record.deleted {
            return Ok(None);
        }
        let current = Published {
            status: record.status,
            title: record.title.clone(),
            sandbox_id: record.sandbox.sandbox_id().map(str::to_owned),
            error: visible_error(record.machine.phase, &record.sandbox),
            archived_at: record.archived_at,
            agent: Some(PublishedAgent {
                agent: record.agent,
                model: record.model.clone(),
                permission_mode: record.permission_mode,
                usage: self.store.usage_totals()?,
            }),
        };
        if record.published.as_ref() == Some(&current) {
            return Ok(None);
        }
        Ok(Some((record.session_id, current)))
    }
}
