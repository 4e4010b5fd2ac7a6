//! Queueing a prompt in its mode (`followup`, `steer`, `collect`): the queue's cap,
//! where the prompt goes or what it merges into, its event, and the session's
//! first title.

use nightshift_protocol::api::QueueMode;
use nightshift_protocol::events::EventBody;

use super::TurnSteps;
use crate::queue::Enqueued;
use crate::store::Sql;
use crate::title::title_from_prompt;

/// A prompt as the caller received it (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrompt {
    pub id: String,
    pub content: String,
    pub mode: QueueMode,
    /// The user who sent it; `None` for the owner's prompts from before senders
    /// were recorded.
    pub sent_by: Option<String>,
    /// The URL the runner dials, kept for (re)requesting the sandbox.
    pub worker_url: String,
}

/// Where an admitted prompt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPrompt {
    /// The prompt that holds the new content (itself, or the `collect` prompt it
    /// was merged into).
    pub message_id: String,
    /// Prompts ahead of it.
    pub position: u32,
}

impl<S: Sql> TurnSteps<'_, S> {
    /// Queues `prompt` where its mode puts it. Returns `None`, storing nothing, when
    /// the queue already holds `max_queued` waiting prompts. A `steer` prompt is
    /// queued first; stopping the running turn is the caller's next step.
    pub fn enqueue(
        &mut self,
        prompt: NewPrompt,
        collect_window_ms: i64,
        max_queued: usize,
    ) -> Result<Option<QueuedPrompt>, S::Error> {
        let NewPrompt {
            id,
            content,
            mode,
            sent_by,
            worker_url,
        } = prompt;
        let mut queue = self.store.queue()?;
        if !queue.admits(mode, sent_by.as_deref(), self.now, max_queued) {
            return Ok(None);
        }
        let enqueued = queue.enqueue_sent_by(
            id,
            content.clone(),
            mode,
            sent_by,
            self.now,
            collect_window_ms,
        );
        self.store.save_prompt(enqueued.prompt())?;
        let queued = QueuedPrompt {
            message_id: enqueued.prompt().message.id.clone(),
            position: enqueued.position(),
        };
        let event = match enqueued {
            Enqueued::Added { prompt, position } => EventBody::PromptQueued {
                message_id: prompt.message.id,
                content: content.clone(),
                position,
            },
            Enqueued::Merged {
                prompt, merged_id, ..
            } => EventBody::PromptsMerged {
                message_id: prompt.message.id,
                merged_ids: vec![merged_id],
                content: prompt.message.content,
            },
        };
        self.record_event(None, event)?;

        let mut record = self.store.record()?;
        if record.title.is_empty()
            && let Some(title) = title_from_prompt(&content)
        {
            record.title = title;
        }
        record.worker_url = Some(worker_url);
        self.store.save_record(&record)?;
        Ok(Some(queued))
    }
}
