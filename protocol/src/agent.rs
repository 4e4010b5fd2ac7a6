//! What an agent is and how it is run, shared by the REST bodies ([`crate::api`]),
//! the events ([`crate::events`]) and the runner link ([`crate::runner_link`]): a
//! leaf the three import, so none of them imports another for these.

use serde::{Deserialize, Serialize};

/// Which agent works in a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Nightshift's own agent loop (`runner/src/agent/builtin.rs`).
    #[default]
    Builtin,
    /// OpenCode (`opencode serve`), driven by the runner over its HTTP API.
    Opencode,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Builtin => "builtin",
            AgentKind::Opencode => "opencode",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "builtin" => AgentKind::Builtin,
            "opencode" => AgentKind::Opencode,
            _ => return None,
        })
    }
}

/// How the agent's requests for permission (to run a command, edit a file, ...) are
/// handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionMode {
    /// Each request becomes a question to the user; no answer in time denies it.
    #[default]
    Ask,
    /// Everything is allowed without asking.
    Allow,
}

impl PermissionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Ask => "ask",
            PermissionMode::Allow => "allow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ask" => PermissionMode::Ask,
            "allow" => PermissionMode::Allow,
            _ => return None,
        })
    }
}

/// Which wire format an LLM endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmApi {
    /// `POST {base_url}/chat/completions` with streaming and tool calls.
    OpenAiCompatible,
    /// Anthropic's Messages API, `POST {base_url}/v1/messages`.
    Anthropic,
}

/// Tokens an LLM reported for one call or one turn.
///
/// `input_tokens` counts every input token, those read from or written to the
/// provider's prompt cache included; `cache_read_tokens` and `cache_write_tokens` say
/// how many of them were, when the API reports it (they are priced apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
}

impl TokenUsage {
    pub fn add(&mut self, other: TokenUsage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }

    /// Input and output tokens together (what a token cap counts).
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}
