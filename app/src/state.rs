//! The app's view state as plain data, built by pure reducers from the wire types.
//!
//! Everything here is ordinary Rust with no Leptos or DOM types, so it is unit-tested
//! natively (`cargo test -p nightshift-app`). Components keep one of these values in a
//! signal and call the reducers from their event handlers; they hold no logic of their
//! own about what an event means.

pub mod bulk_actions;
pub mod diff_view;
pub mod inbox;
pub mod panels;
pub mod prompt_queue;
pub mod repo_panel;
pub mod repo_picker;
pub mod session_list;
pub mod session_phase;
pub mod spend_form;
pub mod timeline;
pub mod usage_chart;

pub use panels::{PanelId, PanelLayout, TerminalTabs};
pub use prompt_queue::{PromptQueue, QueuedPrompt};
pub use session_list::SessionList;
pub use timeline::{
    AgentSettings, Entry, Image, Notice, Question, QuestionState, Retry, Timeline, ToolCall,
    ToolResult, Turn, TurnEnd, TurnItem,
};
