//! The conversation as the agent keeps it, in one provider-neutral shape that each
//! LLM client translates into its own wire format.

use serde_json::Value;

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq, Eq)]
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
