//! The prompts of one session that wait to run, as the composer shows them.
//!
//! Two sources feed it: the session's event stream (`prompt_queued`, `turn_started`,
//! `prompt_cancelled`, `turn_interrupted`, `prompt_edited`, `prompts_merged`) and
//! snapshots (`GET .../messages`, the answer
//! to `POST .../messages`). The stream is the full, ordered history, so whatever it says
//! about a prompt wins; a snapshot only decides about prompts the stream has not
//! mentioned yet. That keeps the list right whichever of the two arrives first.

use std::collections::HashMap;

use nightshift_protocol::api::{Message, MessageState};

/// A prompt waiting in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPrompt {
    pub message_id: String,
    pub content: String,
}

/// What the event stream last said about a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamFact {
    Queued,
    Started,
    Cancelled,
}

/// The queued prompts of one session, in the order they will run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptQueue {
    prompts: Vec<QueuedPrompt>,
    stream_facts: HashMap<String, StreamFact>,
}

impl PromptQueue {
    /// The queued prompts, the one that runs next first.
    pub fn prompts(&self) -> &[QueuedPrompt] {
        &self.prompts
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// `prompt_queued`: the prompt joins the back of the queue.
    ///
    /// A prompt cancelled here first stays out: the stream can lag behind a
    /// `DELETE` this tab already saw succeed, and its `prompt_cancelled` follows.
    pub fn on_queued(&mut self, message_id: &str, content: &str) {
        self.on_queued_at(message_id, content, None);
    }

    /// `prompt_queued` with the position the server gave it (a `steer` prompt is
    /// queued at the front); `None` means the back.
    pub fn on_queued_at(&mut self, message_id: &str, content: &str, position: Option<u32>) {
        if self.stream_facts.get(message_id) == Some(&StreamFact::Cancelled) {
            return;
        }
        self.stream_facts
            .insert(message_id.to_owned(), StreamFact::Queued);
        if !self.contains(message_id) {
            let at = position
                .map(|position| (position as usize).min(self.prompts.len()))
                .unwrap_or(self.prompts.len());
            self.prompts.insert(
                at,
                QueuedPrompt {
                    message_id: message_id.to_owned(),
                    content: content.to_owned(),
                },
            );
        }
    }

    /// `prompt_edited` (and `prompts_merged`): the queued prompt's content is now
    /// `content`.
    pub fn on_edited(&mut self, message_id: &str, content: &str) {
        if let Some(prompt) = self
            .prompts
            .iter_mut()
            .find(|prompt| prompt.message_id == message_id)
        {
            prompt.content = content.to_owned();
        }
    }

    /// `turn_started`: the prompt leaves the queue.
    pub fn on_started(&mut self, message_id: &str) {
        self.stream_facts
            .insert(message_id.to_owned(), StreamFact::Started);
        self.remove(message_id);
    }

    /// `prompt_cancelled`: the prompt leaves the queue for good.
    pub fn on_cancelled(&mut self, message_id: &str) {
        self.stream_facts
            .insert(message_id.to_owned(), StreamFact::Cancelled);
        self.remove(message_id);
    }

    /// `turn_interrupted`: the prompt goes back to the front of the queue, because
    /// the session runs it again first once a runner is back.
    pub fn on_interrupted(&mut self, message_id: &str, content: &str) {
        self.stream_facts
            .insert(message_id.to_owned(), StreamFact::Queued);
        self.remove(message_id);
        self.prompts.insert(
            0,
            QueuedPrompt {
                message_id: message_id.to_owned(),
                content: content.to_owned(),
            },
        );
    }

    /// A successful `DELETE .../messages/{id}`: drop the prompt at once instead of
    /// waiting for its `prompt_cancelled` event.
    pub fn on_cancel_accepted(&mut self, message_id: &str) {
        self.on_cancelled(message_id);
    }

    /// Merges a snapshot of messages (oldest first, as `GET .../messages` returns them,
    /// or the single message a `POST` answered with). Prompts the event stream already
    /// described are left as the stream says.
    pub fn merge_snapshot(&mut self, messages: &[Message]) {
        let mut queued: Vec<&Message> = Vec::new();
        for message in messages {
            if self.stream_facts.contains_key(&message.id) {
                // The stream said where it is; a snapshot may still carry newer text
                // (an edit answered before its event arrived).
                if message.state == MessageState::Queued {
                    self.on_edited(&message.id, &message.content);
                }
                continue;
            }
            if message.state == MessageState::Queued {
                queued.push(message);
            } else {
                self.remove(&message.id);
            }
        }
        // A snapshot's queued prompts run in `position` order; a prompt without a
        // position keeps its place in the list.
        queued.sort_by_key(|message| message.position.unwrap_or(u32::MAX));
        for message in queued {
            if self.contains(&message.id) {
                continue;
            }
            let at = message
                .position
                .map(|position| (position as usize).min(self.prompts.len()))
                .unwrap_or(self.prompts.len());
            self.prompts.insert(
                at,
                QueuedPrompt {
                    message_id: message.id.clone(),
                    content: message.content.clone(),
                },
            );
        }
    }

    fn contains(&self, message_id: &str) -> bool {
        self.prompts
            .iter()
            .any(|prompt| prompt.message_id == message_id)
    }

    fn remove(&mut self, message_id: &str) {
        self.prompts
            .retain(|prompt| prompt.message_id != message_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, state: MessageState, position: Option<u32>) -> Message {
        Message {
            id: id.into(),
            content: format!("prompt {id}"),
            state,
            position,
            turn_id: None,
            attempts: 0,
            reply: None,
            error: None,
            created_at: 0,
            started_at: None,
            finished_at: None,
            mode: Default::default(),
            usage: None,
            duration_ms: None,
            sent_by: None,
        }
    }

    fn ids(queue: &PromptQueue) -> Vec<&str> {
        queue
            .prompts()
            .iter()
            .map(|prompt| prompt.message_id.as_str())
            .collect()
    }

    #[test]
    fn stream_events_move_prompts_in_and_out() {
        let mut queue = PromptQueue::default();
        queue.on_queued("a", "first");
        queue.on_queued("b", "second");
        queue.on_queued("a", "first");
        assert_eq!(ids(&queue), ["a", "b"]);
        queue.on_started("a");
        assert_eq!(ids(&queue), ["b"]);
        queue.on_cancelled("b");
        assert!(queue.is_empty());
    }

    #[test]
    fn an_interrupted_prompt_goes_back_to_the_front() {
        let mut queue = PromptQueue::default();
        queue.on_queued("a", "first");
        queue.on_queued("b", "second");
        queue.on_started("a");
        queue.on_interrupted("a", "first");
        assert_eq!(ids(&queue), ["a", "b"]);
        assert_eq!(queue.prompts()[0].content, "first");
    }

    #[test]
    fn a_snapshot_fills_in_what_the_stream_has_not_said() {
        let mut queue = PromptQueue::default();
        queue.merge_snapshot(&[
            message("done", MessageState::Done, None),
            message("b", MessageState::Queued, Some(1)),
            message("a", MessageState::Queued, Some(0)),
        ]);
        assert_eq!(ids(&queue), ["a", "b"]);
    }

    #[test]
    fn the_stream_wins_over_a_stale_snapshot() {
        let mut queue = PromptQueue::default();
        queue.on_queued("a", "first");
        queue.on_started("a");
        // The snapshot was taken before the turn started; it must not bring "a" back.
        queue.merge_snapshot(&[message("a", MessageState::Queued, Some(0))]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_newer_snapshot_removes_a_prompt_the_stream_has_not_described() {
        let mut queue = PromptQueue::default();
        queue.merge_snapshot(&[message("a", MessageState::Queued, Some(0))]);
        queue.merge_snapshot(&[message("a", MessageState::Processing, None)]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_post_answer_and_its_event_do_not_duplicate() {
        let mut queue = PromptQueue::default();
        queue.merge_snapshot(&[message("a", MessageState::Queued, Some(0))]);
        queue.on_queued("a", "prompt a");
        assert_eq!(ids(&queue), ["a"]);
        queue.on_cancel_accepted("a");
        queue.on_queued("x", "later");
        assert_eq!(ids(&queue), ["x"]);
    }

    #[test]
    fn a_steer_goes_to_the_front_and_edits_change_the_text() {
        let mut queue = PromptQueue::default();
        queue.on_queued_at("a", "first", Some(0));
        queue.on_queued_at("b", "second", Some(1));
        queue.on_queued_at("s", "steer", Some(0));
        assert_eq!(ids(&queue), ["s", "a", "b"]);
        queue.on_edited("b", "second, better");
        assert_eq!(queue.prompts()[2].content, "second, better");
        // A snapshot answering an edit updates the text of a prompt the stream knows.
        let mut edited = message("a", MessageState::Queued, Some(1));
        edited.content = "first, edited".into();
        queue.merge_snapshot(&[edited]);
        assert_eq!(queue.prompts()[1].content, "first, edited");
        assert_eq!(ids(&queue), ["s", "a", "b"]);
    }

    #[test]
    fn a_lagging_stream_does_not_bring_back_a_cancelled_prompt() {
        let mut queue = PromptQueue::default();
        queue.merge_snapshot(&[message("a", MessageState::Queued, Some(0))]);
        queue.on_cancel_accepted("a");
        queue.on_queued("a", "prompt a");
        assert!(queue.is_empty());
    }
}
