//! Turns as the object applies them: the steps themselves (queueing, starting,
//! taking in events, finishing, interrupting) are `nightshift_session::turns`' over
//! the store; this file runs them at the current time with the runner's connection
//! state, fans the events they stored out to live streams, and sends the frames they
//! return.
//!
//! Everything here is synchronous except [`SessionAgent::dispatch`], which first asks
//! `llm_config` for the turn's LLM (by the user who sent the prompt about to start,
//! else the session owner) and only then reads and changes state, and ends by setting
//! the alarm for a collect window that holds the queue. In a session with a
//! repository it also resolves the turn's commit author (the prompting user), which
//! the `prompt` frame carries.

use nightshift_protocol::events::{EventBody, SessionEvent};
use nightshift_protocol::repo::{GitAuthor, SessionRepo};
use nightshift_protocol::runner_link::{LlmConfig, SessionFrame};
use nightshift_session::event_log::sse_frame;
use nightshift_session::repo_rules;
use nightshift_session::turns::{TurnSteps, UNSENT_REASON};
use worker::Result;

use super::SessionAgent;
use super::storage::{DurableSql, SessionRecord};
use crate::{clock, config, ids, llm_config};

/// How often a dispatch resolves the LLM again because another user's prompt moved
/// to the front of the queue while it was resolving; after that it gives up until
/// the next dispatch.
const MAX_LLM_RESOLVES: usize = 4;

impl SessionAgent {
    /// Turn steps now, over the object's store, knowing whether `record`'s runner is
    /// connected.
    pub(super) fn turn_steps(&self, record: &SessionRecord) -> TurnSteps<'_, DurableSql> {
        TurnSteps::new(
            &self.store,
            clock::now_ms(),
            self.current_runner(record).is_some(),
        )
        .compacting(config::event_log_compaction(&self.env))
    }

    /// Runs `step` and sends the events it stored to every live stream (also those
    /// stored before a step failed: they are in the log).
    pub(super) fn steps<T>(
        &self,
        step: impl FnOnce(&mut TurnSteps<'_, DurableSql>) -> Result<T>,
    ) -> Result<T> {
        let record = self.store.record()?;
        let mut steps = self.turn_steps(&record);
        let result = step(&mut steps);
        for event in &steps.events {
            self.broadcast(event);
        }
        // A turn's end and the agent's questions are told to whoever they concern.
        self.notify(&steps.events);
        result
    }

    /// Stores an event written by the `SessionAgent` itself and sends it to every
    /// live stream.
    pub(super) fn record_event(
        &self,
        turn_id: Option<&str>,
        body: EventBody,
    ) -> Result<SessionEvent> {
        let event = self
            .store
            .append_event(turn_id, None, body, clock::now_ms())?;
        self.broadcast(&event);
        Ok(event)
    }

    fn broadcast(&self, event: &SessionEvent) {
        match sse_frame(event) {
            Ok(frame) => self.subscribers.broadcast_event(event.seq, &frame),
            Err(error) => {
                worker::console_error!("event {} could not be encoded: {error}", event.seq)
            }
        }
    }

    /// Re-derives the status; when it changed, stores it and a `status_changed`
    /// event. Returns whether it changed.
    pub(super) fn refresh_status(&self) -> Result<bool> {
        self.steps(|steps| steps.refresh_status())
    }

    /// Starts the next queued prompt when a runner is ready and nothing is running,
    /// then sets the alarm for any deadline still ahead.
    pub(super) async fn dispatch(&self) -> Result<()> {
        // The turn that ended last is checkpointed before the next prompt starts.
        if self.settle_checkpoints().await? {
            self.dispatch_now().await?;
        }
        if let Err(error) = self.schedule_alarm().await {
            worker::console_warn!("setting the alarm failed: {}", error.message);
        }
        Ok(())
    }

    async fn dispatch_now(&self) -> Result<()> {
        // The turn uses the LLM key of whoever sent the prompt about to start. Resolving
        // awaits, so the queue is read again afterwards; when another sender's prompt
        // is at the front by then, the LLM is resolved again for them.
        let mut resolved: Option<(String, Option<LlmConfig>)> = None;
        let mut attempts = 0;
        let (sender, llm) = loop {
            let record = self.store.record()?;
            if self.current_runner(&record).is_none() {
                return Ok(());
            }
            let queue = self.store.queue()?;
            let Some(next) = queue.next_to_dispatch(clock::now_ms()) else {
                return Ok(());
            };
            let sender = next
                .message
                .sent_by
                .clone()
                .unwrap_or_else(|| record.owner_id.clone());
            if let Some((user, llm)) = resolved.take()
                && user == sender
            {
                break (sender, llm);
            }
            if attempts == MAX_LLM_RESOLVES {
                worker::console_warn!("the next prompt's sender kept changing; not dispatching");
                return Ok(());
            }
            attempts += 1;
            let llm = llm_config::resolve_model(&self.env, &sender, record.model.as_deref()).await;
            resolved = Some((sender, llm));
        };

        // Who commits this turn's work: the user who sent the prompt.
        let author = match &self.store.record()?.repo {
            Some(repo) => Some(git_author(&self.env, repo, &sender).await),
            None => None,
        };
        // Read again: other events may have been handled while the LLM and the
        // author were resolved.
        let record = self.store.record()?;
        let Some((socket, attachment)) = self.current_runner(&record) else {
            return Ok(());
        };
        let Some(epoch) = attachment.epoch else {
            return Ok(());
        };
        let turn_id = ids::new_id()?;
        let source = llm.clone();
        let model = llm
            .as_ref()
            .map(|llm| llm.model.clone())
            .or_else(|| record.model.clone())
            .unwrap_or_default();
        let started = self.steps(|steps| {
            let Some(mut frame) = steps.start_next(&turn_id, epoch, llm)? else {
                return Ok(false);
            };
            if let SessionFrame::Prompt { author: slot, .. } = &mut frame {
                slot.clone_from(&author);
            }
            if let Err(error) = socket.send(&frame) {
                worker::console_warn!("sending turn {turn_id} failed: {error}");
                steps.interrupt_turn(&turn_id, UNSENT_REASON)?;
            }
            steps.refresh_status()?;
            Ok(true)
        })?;
        if started {
            self.spend_turn_started(&turn_id, &sender, &model).await;
        }
        if started && let Some(llm) = source {
            let (env, session_id) = (self.env.clone(), record.session_id.clone());
            self.state.wait_until(async move {
                llm_config::record_source(env, session_id, &llm).await;
            });
        }
        Ok(())
    }
}

/// The commit author for a turn `sender` prompted: their connected GitHub account's
/// name and no-reply email, else their name and email here, else the session's
/// author (its owner at creation).
async fn git_author(env: &worker::Env, repo: &SessionRepo, sender: &str) -> GitAuthor {
    if let Ok(Some(account)) = crate::github::tokens::account(env, sender).await {
        return repo_rules::github_author(
            account.github_id,
            &account.login,
            account.name.as_deref(),
        );
    }
    #[derive(serde::Deserialize)]
    struct Person {
        display_name: String,
        email: Option<String>,
    }
    let person: Option<Person> = crate::auth::d1::first(
        env,
        "SELECT display_name, email FROM users WHERE id = ?",
        &[crate::auth::d1::Arg::Text(sender)],
    )
    .await
    .ok()
    .flatten();
    match person {
        Some(Person {
            display_name,
            email: Some(email),
        }) => GitAuthor {
            name: display_name,
            email,
        },
        _ => repo.author.clone(),
    }
}
