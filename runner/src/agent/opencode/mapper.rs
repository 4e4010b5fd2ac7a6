//! Maps OpenCode's server events (`GET /event`, one JSON object per SSE `data:`)
//! onto Nightshift's events for one turn. Pure: no I/O, so recorded streams can be
//! fed through it in tests.
//!
//! | OpenCode | Nightshift |
//! | --- | --- |
//! | `message.part.delta` (field `text`) of an assistant text part | `text_delta` |
//! | `message.part.updated`, text part with more text than was streamed | `text_delta` (the rest) |
//! | `message.part.updated`, tool part `running` | `tool_call_started` |
//! | `message.part.updated`, tool part `completed` / `error` | `tool_call_finished` (started first if missed) |
//! | `session.status` `retry` | `retrying` |
//! | `session.status` `idle` (after `busy`), `session.idle` | the turn's end |
//! | `session.error`, an assistant message's `error` | the turn fails with that message (an abort is not an error) |
//! | `message.updated` (assistant) `tokens` | the turn's usage (latest per message, summed) |
//! | `permission.asked`, `question.asked` | a question to the user (see [`Ask`]) |
//!
//! Events of other OpenCode sessions (sub-agents) are ignored, except their
//! permission requests and questions, which would otherwise block the turn.

use std::collections::{HashMap, HashSet};

use nightshift_protocol::events::{
    EventBody, PERMISSION_ALLOW, PERMISSION_ALWAYS, PERMISSION_DENY, TokenUsage,
};
use nightshift_protocol::limits::MAX_TOOL_OUTPUT_BYTES;
use serde_json::Value;

use crate::tools::truncate_output;

/// Something OpenCode wants from the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// `permission.asked`: answered with [`permission_reply`] of the user's answer.
    Permission {
        request_id: String,
        text: String,
        options: Vec<String>,
    },
    /// `question.asked`: one or more questions, answered together.
    Question {
        request_id: String,
        questions: Vec<AskedQuestion>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedQuestion {
    pub text: String,
    pub options: Vec<String>,
}

/// What one OpenCode event means for the turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    Emit(EventBody),
    Ask(Ask),
    /// The OpenCode session went idle: the turn's work is over.
    Idle,
}

/// OpenCode's permission reply for a Nightshift answer: anything but an explicit
/// allow is a refusal.
pub fn permission_reply(answer: &str) -> &'static str {
    match answer.trim().to_ascii_lowercase().as_str() {
        PERMISSION_ALLOW | "once" | "yes" => "once",
        PERMISSION_ALWAYS => "always",
        _ => "reject",
    }
}

/// The state of one turn's mapping.
#[derive(Debug)]
pub struct TurnMapper {
    session_id: String,
    assistant_messages: HashSet<String>,
    /// Part id -> part type, for the parts of assistant messages.
    part_types: HashMap<String, String>,
    /// Text part id -> how much of it was shown.
    streamed: HashMap<String, String>,
    tools_started: HashSet<String>,
    tools_finished: HashSet<String>,
    /// Call ids in the order they started, to close the unfinished ones at the end.
    tool_order: Vec<String>,
    usage: HashMap<String, TokenUsage>,
    busy_seen: bool,
    error: Option<String>,
    aborted: bool,
}

impl TurnMapper {
    pub fn new(session_id: &str) -> TurnMapper {
        TurnMapper {
            session_id: session_id.to_string(),
            assistant_messages: HashSet::new(),
            part_types: HashMap::new(),
            streamed: HashMap::new(),
            tools_started: HashSet::new(),
            tools_finished: HashSet::new(),
            tool_order: Vec::new(),
            usage: HashMap::new(),
            busy_seen: false,
            error: None,
            aborted: false,
        }
    }

    /// Tokens of the turn's assistant messages so far.
    pub fn usage(&self) -> TokenUsage {
        let mut total = TokenUsage::default();
        for usage in self.usage.values() {
            total.add(*usage);
        }
        total
    }

    /// Why the turn failed, if OpenCode said so.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// OpenCode reported the turn aborted.
    pub fn aborted(&self) -> bool {
        self.aborted
    }

    /// The session was seen working (so an idle status means "done", not "not
    /// started yet").
    pub fn busy_seen(&self) -> bool {
        self.busy_seen
    }

    pub fn note_busy(&mut self) {
        self.busy_seen = true;
    }

    /// `tool_call_finished` for every call that started and never finished, so the
    /// turn's timeline is complete (after an abort or a crash).
    pub fn close_open_tools(&mut self, why: &str) -> Vec<EventBody> {
        let open: Vec<String> = self
            .tool_order
            .iter()
            .filter(|id| !self.tools_finished.contains(*id))
            .cloned()
            .collect();
        open.into_iter()
            .map(|call_id| {
                self.tools_finished.insert(call_id.clone());
                EventBody::ToolCallFinished {
                    call_id,
                    output: why.to_string(),
                    is_error: true,
                    truncated_bytes: 0,
                }
            })
            .collect()
    }

    /// Maps one event (the JSON of one SSE `data:`).
    pub fn map(&mut self, event: &Value, now_ms: i64) -> Vec<Mapped> {
        let kind = event["type"].as_str().unwrap_or_default();
        let props = &event["properties"];
        let ours = props["sessionID"].as_str() == Some(self.session_id.as_str());
        match kind {
            "message.updated" if ours => self.message_updated(&props["info"]),
            "message.part.updated" if ours => self.part_updated(&props["part"]),
            "message.part.delta" if ours => self.part_delta(props),
            "session.status" if ours => self.status(&props["status"], now_ms),
            "session.idle" if ours => self.idle(),
            "session.error" if ours || props["sessionID"].is_null() => {
                self.note_error(&props["error"]);
                Vec::new()
            }
            "permission.asked" => permission_asked(props).into_iter().collect(),
            "question.asked" => question_asked(props).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn message_updated(&mut self, info: &Value) -> Vec<Mapped> {
        if info["role"] != "assistant" {
            return Vec::new();
        }
        let Some(id) = info["id"].as_str() else {
            return Vec::new();
        };
        self.assistant_messages.insert(id.to_string());
        let tokens = &info["tokens"];
        let usage = TokenUsage {
            input_tokens: count(&tokens["input"]) + count(&tokens["cache"]["read"]),
            output_tokens: count(&tokens["output"]) + count(&tokens["reasoning"]),
            ..TokenUsage::default()
        };
        self.usage.insert(id.to_string(), usage);
        if !info["error"].is_null() {
            self.note_error(&info["error"]);
        }
        Vec::new()
    }

    fn note_error(&mut self, error: &Value) {
        if error.is_null() {
            return;
        }
        let name = error["name"].as_str().unwrap_or("Error");
        if name == "MessageAbortedError" {
            self.aborted = true;
            return;
        }
        if self.error.is_none() {
            let message = error["data"]["message"]
                .as_str()
                .or_else(|| error["message"].as_str())
                .unwrap_or(name);
            self.error = Some(format!("OpenCode: {message}"));
        }
    }

    fn part_updated(&mut self, part: &Value) -> Vec<Mapped> {
        let (Some(part_id), Some(message_id), Some(part_type)) = (
            part["id"].as_str(),
            part["messageID"].as_str(),
            part["type"].as_str(),
        ) else {
            return Vec::new();
        };
        if !self.assistant_messages.contains(message_id) {
            return Vec::new();
        }
        self.part_types
            .insert(part_id.to_string(), part_type.to_string());
        match part_type {
            "text" if part["synthetic"] != true => {
                // The whole text so far: show what the deltas did not.
                let text = part["text"].as_str().unwrap_or_default();
                let shown = self.streamed.entry(part_id.to_string()).or_default();
                match text.strip_prefix(shown.as_str()) {
                    Some(rest) if !rest.is_empty() => {
                        let rest = rest.to_string();
                        shown.push_str(&rest);
                        vec![Mapped::Emit(EventBody::TextDelta { text: rest })]
                    }
                    _ => Vec::new(),
                }
            }
            "tool" => self.tool_part(part),
            _ => Vec::new(),
        }
    }

    fn part_delta(&mut self, props: &Value) -> Vec<Mapped> {
        let (Some(part_id), Some(delta)) = (props["partID"].as_str(), props["delta"].as_str())
        else {
            return Vec::new();
        };
        if props["field"] != "text" || delta.is_empty() {
            return Vec::new();
        }
        if self.part_types.get(part_id).map(String::as_str) != Some("text") {
            return Vec::new();
        }
        self.streamed
            .entry(part_id.to_string())
            .or_default()
            .push_str(delta);
        vec![Mapped::Emit(EventBody::TextDelta {
            text: delta.to_string(),
        })]
    }

    fn tool_part(&mut self, part: &Value) -> Vec<Mapped> {
        let Some(call_id) = part["callID"].as_str() else {
            return Vec::new();
        };
        let tool = part["tool"].as_str().unwrap_or("tool");
        let state = &part["state"];
        let status = state["status"].as_str().unwrap_or_default();
        let mut out = Vec::new();
        let start = |this: &mut TurnMapper, out: &mut Vec<Mapped>| {
            if this.tools_started.insert(call_id.to_string()) {
                this.tool_order.push(call_id.to_string());
                out.push(Mapped::Emit(EventBody::ToolCallStarted {
                    call_id: call_id.to_string(),
                    tool: tool.to_string(),
                    args: state["input"].clone(),
                }));
            }
        };
        match status {
            "running" => start(self, &mut out),
            "completed" | "error" => {
                start(self, &mut out);
                if self.tools_finished.insert(call_id.to_string()) {
                    let is_error = status == "error";
                    let text = if is_error {
                        state["error"].as_str().unwrap_or("the tool failed")
                    } else {
                        state["output"].as_str().unwrap_or_default()
                    };
                    let (output, truncated_bytes) = truncate_output(text, MAX_TOOL_OUTPUT_BYTES);
                    out.push(Mapped::Emit(EventBody::ToolCallFinished {
                        call_id: call_id.to_string(),
                        output,
                        is_error,
                        truncated_bytes,
                    }));
                }
            }
            _ => {}
        }
        out
    }

    fn status(&mut self, status: &Value, now_ms: i64) -> Vec<Mapped> {
        match status["type"].as_str().unwrap_or_default() {
            "busy" => {
                self.busy_seen = true;
                Vec::new()
            }
            "retry" => {
                self.busy_seen = true;
                let next = status["next"].as_i64().unwrap_or(now_ms);
                vec![Mapped::Emit(EventBody::Retrying {
                    attempt: u32::try_from(count(&status["attempt"])).unwrap_or(u32::MAX),
                    // OpenCode does not say how many tries it makes.
                    max_attempts: 0,
                    delay_ms: u64::try_from(next.saturating_sub(now_ms)).unwrap_or(0),
                    reason: status["message"]
                        .as_str()
                        .unwrap_or("the LLM call failed")
                        .to_string(),
                })]
            }
            "idle" => self.idle(),
            _ => Vec::new(),
        }
    }

    fn idle(&mut self) -> Vec<Mapped> {
        if self.busy_seen {
            vec![Mapped::Idle]
        } else {
            Vec::new()
        }
    }
}

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_f64().map(|f| f.max(0.0) as u64))
        .unwrap_or(0)
}

fn permission_asked(props: &Value) -> Option<Mapped> {
    let request_id = props["id"].as_str()?;
    let permission = props["permission"].as_str().unwrap_or("do something");
    let patterns: Vec<&str> = props["patterns"]
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let subject = props["metadata"]["command"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| patterns.join(", "));
    let text = if subject.is_empty() {
        format!("OpenCode asks for permission: {permission}")
    } else {
        format!("OpenCode asks for permission: {permission} {subject}")
    };
    Some(Mapped::Ask(Ask::Permission {
        request_id: request_id.to_string(),
        text,
        options: vec![
            PERMISSION_ALLOW.to_string(),
            PERMISSION_ALWAYS.to_string(),
            PERMISSION_DENY.to_string(),
        ],
    }))
}

fn question_asked(props: &Value) -> Option<Mapped> {
    let request_id = props["id"].as_str()?;
    let questions = props["questions"]
        .as_array()?
        .iter()
        .map(|question| {
            let text = question["question"].as_str().unwrap_or_default();
            let header = question["header"].as_str().unwrap_or_default();
            AskedQuestion {
                text: if header.is_empty() || text.contains(header) {
                    text.to_string()
                } else {
                    format!("{header}: {text}")
                },
                options: question["options"]
                    .as_array()
                    .map(|options| {
                        options
                            .iter()
                            .filter_map(|option| option["label"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect::<Vec<_>>();
    if questions.is_empty() {
        return None;
    }
    Some(Mapped::Ask(Ask::Question {
        request_id: request_id.to_string(),
        questions,
    }))
}

#[cfg(test)]
mod tests;
