//! An agent's conversation kept by the session as well as in the runner's memory, so
//! a runner that starts without it (after a crash, in a replaced or woken sandbox)
//! continues with every earlier turn. The built-in agent keeps its whole conversation
//! here; the OpenCode adapter keeps each turn's prompt, tool steps and reply, and
//! seeds a fresh OpenCode session with them (`opencode::seed`). Both agents write one
//! list, so a session that switches agents continues with every turn of both.
//!
//! - At the start of a turn, a runner that has not read it yet reads the session's
//!   copy (`GET /api/sessions/{id}/conversation`, page by page). A turn that is run
//!   again (its first attempt was cut short by a crash) is cut from the
//!   conversation, so it runs once; tool calls left without a result by the crash
//!   get one saying so, as both LLM APIs require.
//! - As the turn goes (the prompt, each reply, each tool result) and at its end, what
//!   is new is written from the first entry the session does not have
//!   (`POST .../conversation`, bounded pages), so a crash loses at most the step in
//!   flight.
//!
//! A read that fails leaves the runner writing nothing (it would overwrite what it
//! could not read) and is tried again at the next turn; a write that fails is tried
//! again at the next step. When the other agent ran the turns since, the copy is read
//! again ([`ConversationMemory::forget`]).

use nightshift_protocol::conversation::{
    ConversationEntry, ConversationWrite, MAX_CONVERSATION_WRITE_BYTES,
    MAX_CONVERSATION_WRITE_ENTRIES,
};

use crate::llm::ConversationItem;
use crate::repo::worker_api::WorkerApi;

/// Pages read before giving up on a conversation that will not end.
const MAX_PAGES: usize = 10_000;
/// What a tool call cut short by a crash is answered with.
const CUT_SHORT: &str = "Not run to the end: the runner stopped while this call was running.";

/// The session's copy of the conversation, as far as this runner knows it.
pub struct ConversationMemory {
    api: WorkerApi,
    /// The session's copy has been read (or found empty) in this runner's life.
    restored: bool,
    /// Entries the session keeps, as far as they agree with the conversation.
    stored: u64,
    /// The prompt (message id) whose turn made each item, up to the last write.
    message_ids: Vec<String>,
}

impl ConversationMemory {
    pub fn new(api: WorkerApi) -> ConversationMemory {
        ConversationMemory {
            api,
            restored: false,
            stored: 0,
            message_ids: Vec::new(),
        }
    }

    /// The other agent wrote to the session's copy since this memory last read or
    /// wrote it: what this runner holds is stale, and the next [`Self::begin_turn`]
    /// reads the copy again (into an emptied conversation).
    pub fn forget(&mut self, conversation: &mut Vec<ConversationItem>) {
        if self.restored {
            conversation.clear();
            self.message_ids.clear();
            self.stored = 0;
            self.restored = false;
        }
    }

    /// Before `message_id` starts: reads the session's copy (once; before what this
    /// runner has, if it ran turns while the copy could not be read), and cuts an
    /// earlier attempt of this same prompt (a prompt run again gets a new turn id).
    pub async fn begin_turn(&mut self, conversation: &mut Vec<ConversationItem>, message_id: &str) {
        if !self.restored {
            match self.read_all().await {
                Ok(entries) => {
                    // Turns this runner ran while the copy could not be read follow it.
                    self.stored = entries.len() as u64;
                    let mut message_ids: Vec<String> =
                        entries.iter().map(|e| e.message_id.clone()).collect();
                    let mut items: Vec<ConversationItem> =
                        entries.into_iter().map(|e| e.item).collect();
                    if !items.is_empty() {
                        tracing::info!(
                            items = items.len(),
                            "the conversation was read back from the session"
                        );
                    }
                    message_ids.append(&mut self.message_ids);
                    items.append(conversation);
                    self.message_ids = message_ids;
                    *conversation = items;
                    self.restored = true;
                }
                Err(error) => {
                    tracing::warn!(%error, "the session's copy of the conversation cannot be read; turns are not kept until it can");
                }
            }
        }
        // Items since the last write belong to the prompt that made them; a restored
        // conversation has them all named.
        if let Some(first) = self.message_ids.iter().position(|id| id == message_id) {
            conversation.truncate(first);
            self.message_ids.truncate(first);
            self.stored = self.stored.min(first as u64);
        }
        if let Some(changed_at) = answer_cut_calls(conversation, &mut self.message_ids) {
            self.stored = self.stored.min(changed_at as u64);
        }
    }

    /// Writes what the session does not have yet; the items past the last write are
    /// `message_id`'s.
    pub async fn save(&mut self, conversation: &[ConversationItem], message_id: &str) {
        while self.message_ids.len() < conversation.len() {
            self.message_ids.push(message_id.to_owned());
        }
        self.message_ids.truncate(conversation.len());
        if !self.restored {
            return;
        }
        while (self.stored as usize) < conversation.len() {
            let from = self.stored as usize;
            let mut entries = Vec::new();
            let mut bytes = 0usize;
            for (item, turn) in conversation[from..].iter().zip(&self.message_ids[from..]) {
                let entry = ConversationEntry {
                    message_id: turn.clone(),
                    item: item.clone(),
                };
                let size = serde_json::to_vec(&entry).map_or(0, |json| json.len());
                if !entries.is_empty()
                    && (bytes + size > MAX_CONVERSATION_WRITE_BYTES / 2
                        || entries.len() >= MAX_CONVERSATION_WRITE_ENTRIES)
                {
                    break;
                }
                bytes += size;
                entries.push(entry);
            }
            let write = ConversationWrite {
                from: self.stored,
                entries,
            };
            match self.api.write_conversation(&write).await {
                Ok(answer) => self.stored = answer.stored.min(conversation.len() as u64),
                Err(error) if error.status == Some(409) => {
                    // The session has fewer than assumed: learn how many, then go on.
                    match self.api.conversation(u64::MAX).await {
                        Ok(page) => self.stored = self.stored.min(page.stored),
                        Err(_) => return,
                    }
                }
                Err(error) => {
                    tracing::warn!(message = %error.message, "the conversation was not saved; trying again at the next step");
                    return;
                }
            }
        }
    }

    async fn read_all(&self) -> Result<Vec<ConversationEntry>, String> {
        let mut entries = Vec::new();
        let mut from = 0;
        for _ in 0..MAX_PAGES {
            let page = self
                .api
                .conversation(from)
                .await
                .map_err(|error| error.message)?;
            entries.extend(page.entries);
            match page.next {
                Some(next) if next > from => from = next,
                _ => return Ok(entries),
            }
        }
        Err("the conversation has too many pages".into())
    }
}

/// Gives every tool call that has no result one saying it was cut short, right
/// after the results it has; answers the first index that changed.
fn answer_cut_calls(
    conversation: &mut Vec<ConversationItem>,
    message_ids: &mut Vec<String>,
) -> Option<usize> {
    let mut first_change = None;
    let mut index = 0;
    while index < conversation.len() {
        let ConversationItem::Assistant { tool_calls, .. } = &conversation[index] else {
            index += 1;
            continue;
        };
        let mut missing: Vec<String> = tool_calls.iter().map(|call| call.id.clone()).collect();
        let turn = message_ids.get(index).cloned().unwrap_or_default();
        index += 1;
        while let Some(ConversationItem::ToolResult { call_id, .. }) = conversation.get(index) {
            missing.retain(|id| id != call_id);
            index += 1;
        }
        for call_id in missing {
            conversation.insert(
                index,
                ConversationItem::ToolResult {
                    call_id,
                    content: CUT_SHORT.to_owned(),
                    is_error: true,
                },
            );
            if message_ids.len() >= index {
                message_ids.insert(index, turn.clone());
            }
            first_change.get_or_insert(index);
            index += 1;
        }
    }
    first_change
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "bash".into(),
            arguments: "{}".into(),
        }
    }

    fn result(id: &str) -> ConversationItem {
        ConversationItem::ToolResult {
            call_id: id.into(),
            content: "ok".into(),
            is_error: false,
        }
    }

    #[test]
    fn calls_cut_short_by_a_crash_get_a_result_after_the_ones_they_have() {
        let mut conversation = vec![
            ConversationItem::User { text: "go".into() },
            ConversationItem::Assistant {
                text: String::new(),
                tool_calls: vec![call("a"), call("b")],
            },
            result("a"),
        ];
        let mut turns = vec!["t1".to_string(); 3];
        assert_eq!(answer_cut_calls(&mut conversation, &mut turns), Some(3));
        assert_eq!(conversation.len(), 4);
        assert!(matches!(
            &conversation[3],
            ConversationItem::ToolResult { call_id, is_error: true, .. } if call_id == "b"
        ));
        assert_eq!(turns, vec!["t1".to_string(); 4]);
        // A whole conversation is left alone.
        assert_eq!(answer_cut_calls(&mut conversation, &mut turns), None);
    }
}
