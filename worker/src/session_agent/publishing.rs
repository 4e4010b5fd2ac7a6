//! Keeping the world outside the object current: the session's D1 row (status,
//! title, sandbox id, error) and the session-list stream (`EventBus`).
//!
//! Writes are serialized through one loop per object: whoever finds it idle runs it;
//! whoever finds it running asks it to go round once more. Each round writes the
//! state as it is *then*, so concurrent changes can never leave an older value in
//! D1 last. What was last written is stored, so after an eviction the next round
//! catches up, and a round with nothing new does no I/O.

use nightshift_protocol::events::SessionListEvent;
use nightshift_session::lifecycle::visible_error;

use super::SessionAgent;
use super::storage::{Published, PublishedAgent};
use crate::sessions_table::{self, AgentUpdate, SessionUpdate};
use crate::{clock, internal};

impl SessionAgent {
    /// Brings D1 and the session-list stream up to date. Failures are logged: the
    /// next change retries.
    pub(super) async fn publish(&self) {
        if self.publishing.replace(true) {
            self.publish_again.set(true);
            return;
        }
        loop {
            self.publish_again.set(false);
            if let Err(error) = self.publish_once().await {
                worker::console_warn!("publishing the session's state failed: {}", error.message);
                break;
            }
            if !self.publish_again.get() {
                break;
            }
        }
        self.publishing.set(false);
    }

    async fn publish_once(&self) -> Result<(), crate::api_error::ApiError> {
        let record = self.store.record()?;
        if !record.initialized || record.session_id.is_empty() {
            return Ok(());
        }
        let queue = self.store.queue()?;
        let current = Published {
            status: record.status,
            title: record.title.clone(),
            sandbox_id: record.sandbox.sandbox_id().map(str::to_owned),
            error: visible_error(&self.facts(&record, &queue)),
            agent: Some(PublishedAgent {
                agent: record.agent,
                model: record.model.clone(),
                permission_mode: record.permission_mode,
                usage: self.store.usage_totals()?,
            }),
        };
        if record.published.as_ref() == Some(&current) {
            return Ok(());
        }
        let previous_agent = record.published.as_ref().and_then(|p| p.agent.clone());
        if let Some(agent) = &current.agent
            && previous_agent.as_ref() != Some(agent)
        {
            let update = AgentUpdate {
                agent: agent.agent,
                model: agent.model.clone(),
                permission_mode: agent.permission_mode,
                usage: agent.usage,
            };
            sessions_table::update_agent(&self.env, &record.session_id, &update).await?;
        }
        let update = SessionUpdate {
            status: current.status,
            title: current.title.clone(),
            sandbox_id: current.sandbox_id.clone(),
            error: current.error.clone(),
            updated_at: clock::now_ms(),
        };
        sessions_table::update(&self.env, &record.session_id, &update).await?;

        let previous = record.published.clone();
        if previous.as_ref().map(|p| p.status) != Some(current.status) {
            let event = SessionListEvent::SessionStatusChanged {
                session_id: record.session_id.clone(),
                status: current.status,
            };
            internal::publish(&self.env, &event).await;
        }
        if previous.as_ref().map(|p| p.title.as_str()) != Some(current.title.as_str()) {
            let event = SessionListEvent::SessionTitleChanged {
                session_id: record.session_id.clone(),
                title: current.title.clone(),
            };
            internal::publish(&self.env, &event).await;
        }

        // Read again before writing: the record may have changed during the awaits.
        let mut record = self.store.record()?;
        record.published = Some(current);
        self.store.save_record(&record)?;
        Ok(())
    }
}
