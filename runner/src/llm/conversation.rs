//! The conversation as the agent keeps it, in one provider-neutral shape that each
//! LLM client translates into its own wire format.

pub use nightshift_protocol::conversation::{ConversationItem, ToolCall};
