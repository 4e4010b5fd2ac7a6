//! The agents' conversation (the built-in agent's, and OpenCode's turns as far as
//! these items hold them), as the runner keeps it and as the session keeps a copy of
//! it (`GET`/`POST /api/sessions/{id}/conversation`, runner token only), so a runner
//! that crashed, a sandbox that was replaced and a session that woke all continue
//! with every earlier turn. Provider-neutral: each LLM client translates it into its
//! own wire format.
//!
//! The copy is a list of [`ConversationEntry`]s indexed from 0. The runner writes from
//! an index on ([`ConversationWrite`]): everything from there is replaced, so a
//! prompt run again after a crash takes the place of its cut-short first attempt.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest entry (its JSON) the session keeps.
pub const MAX_CONVERSATION_ENTRY_BYTES: usize = 1024 * 1024;
/// Most bytes one write's body carries.
pub const MAX_CONVERSATION_WRITE_BYTES: usize = 4 * 1024 * 1024;
/// Most entries one write carries.
pub const MAX_CONVERSATION_WRITE_ENTRIES: usize = 512;
/// Most entries a session keeps.
pub const MAX_CONVERSATION_ENTRIES: u64 = 100_000;
/// Most bytes (of entries' JSON) one page of a read carries, beyond its first entry.
pub const CONVERSATION_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments exactly as the model streamed them (JSON text, possibly
    /// invalid when the model made a mistake or its output was cut).
    pub arguments: String,
}

impl ToolCall {
    /// The arguments as JSON; no arguments at all count as `{}`.
    pub fn parsed_arguments(&self) -> Result<Value, serde_json::Error> {
        if self.arguments.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(&self.arguments)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConversationItem {
    /// A prompt from the user.
    User { text: String },
    /// What the model answered: text, tool calls, or both.
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, fed back to the model.
    ToolResult {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

/// One item with the prompt (message) whose turn made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationEntry {
    pub message_id: String,
    pub item: ConversationItem,
}

/// `POST /api/sessions/{id}/conversation`: `entries` replace everything from index
/// `from` on (`from` at most the number kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationWrite {
    pub from: u64,
    pub entries: Vec<ConversationEntry>,
}

/// The answer to a write, and the head of a read: how many entries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationStored {
    pub stored: u64,
}

/// `GET /api/sessions/{id}/conversation?from=N`: entries from `from` on, as many as
/// fit a page; `next` is where the next page starts, if there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationPage {
    pub stored: u64,
    pub entries: Vec<ConversationEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}
