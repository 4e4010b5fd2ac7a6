//! Changes to prompts that have not started: cancelling one and editing its
//! content. A prompt in any other state is refused with the queue's reason.

use nightshift_protocol::api::Message;
use nightshift_protocol::events::EventBody;

use super::TurnSteps;
use crate::queue::QueueError;
use crate::store::Sql;

impl<S: Sql> TurnSteps<'_, S> {
    /// Cancels the queued prompt `id`; returns it as clients now see it, or why it
    /// cannot be cancelled (nothing is stored then). A cancelled `collect` prompt may
    /// have been what the queue waited for, so the caller dispatches next.
    pub fn cancel(&mut self, id: &str) -> Result<Result<Message, QueueError>, S::Error> {
        let mut queue = self.store.queue_with(id)?;
        let prompt = match queue.cancel(id, self.now) {
            Ok(prompt) => prompt,
            Err(error) => return Ok(Err(error)),
        };
        self.store.save_prompt(&prompt)?;
        self.record_event(
            None,
            EventBody::PromptCancelled {
                message_id: id.to_owned(),
            },
        )?;
        Ok(Ok(queue.message(id).unwrap_or(prompt.message)))
    }

    /// Replaces the content of the queued prompt `id`; it becomes `edited_by`'s when
    /// known (whose LLM key its turn then uses). Returns the prompt as clients now see
    /// it, or why it cannot be edited (nothing is stored then).
    pub fn edit(
        &mut self,
        id: &str,
        content: String,
        edited_by: Option<String>,
    ) -> Result<Result<Message, QueueError>, S::Error> {
        let mut queue = self.store.queue_with(id)?;
        let prompt = match queue.edit(id, content.clone(), edited_by) {
            Ok(prompt) => prompt,
            Err(error) => return Ok(Err(error)),
        };
        self.store.save_prompt(&prompt)?;
        self.record_event(
            None,
            EventBody::PromptEdited {
                message_id: id.to_owned(),
                content,
            },
        )?;
        Ok(Ok(queue.message(id).unwrap_or(prompt.message)))
    }
}
