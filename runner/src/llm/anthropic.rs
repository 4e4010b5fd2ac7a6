//! Anthropic's Messages API: `POST {base_url}/v1/messages` with `stream: true`,
//! headers `x-api-key` and `anthropic-version: 2023-06-01`. `base_url` is the API's
//! origin (`https://api.anthropic.com`); a base URL that already ends in `/v1` is
//! accepted too.
//!
//! The stream: `message_start` (the message, with `usage.input_tokens`), then per
//! content block `content_block_start` (a `text` block, or a `tool_use` block with
//! `id` and `name`), `content_block_delta`s (`text_delta` with `text`,
//! `input_json_delta` with `partial_json`), `content_block_stop`; then
//! `message_delta` (`delta.stop_reason`, cumulative `usage.output_tokens`) and
//! `message_stop`. `ping` events may come at any time; an `error` event reports a
//! failure mid-stream. Unknown events and block kinds (thinking, for example) are
//! ignored, as the API's versioning policy asks.

use std::collections::BTreeMap;

use nightshift_protocol::events::TokenUsage;
use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{ConversationItem, LlmError, LlmRequest, LlmResponse, StreamParser, ToolCall};

pub(super) const API_VERSION: &str = "2023-06-01";

pub(super) fn url(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/messages")
}

pub(super) fn request_body(model: &str, request: &LlmRequest<'_>) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": request.max_tokens,
        "system": request.system,
        "messages": messages(request.conversation),
        "stream": true,
    });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}))
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body
}

/// The conversation as Messages API turns. Consecutive items of one role become one
/// message (tool results and a following prompt are one `user` message, with the
/// results first), and empty text blocks are left out: the API refuses both
/// consecutive same-role messages with tool results split off and empty text.
fn messages(conversation: &[ConversationItem]) -> Vec<Value> {
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for item in conversation {
        let (role, blocks) = match item {
            ConversationItem::User { text } => {
                ("user", text_block(text).into_iter().collect::<Vec<_>>())
            }
            ConversationItem::Assistant { text, tool_calls } => {
                let mut blocks: Vec<Value> = text_block(text).into_iter().collect();
                for call in tool_calls {
                    // The API wants the input as an object; arguments the model got
                    // wrong were already answered with an error result.
                    let input = call
                        .parsed_arguments()
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                ("assistant", blocks)
            }
            ConversationItem::ToolResult {
                call_id,
                content,
                is_error,
            } => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error}),
                ],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }
    messages
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

#[derive(Debug)]
enum Block {
    Text,
    ToolUse {
        id: String,
        name: String,
        input_json: String,
    },
    Other,
}

#[derive(Debug, Default)]
pub(super) struct AnthropicParser {
    started: bool,
    blocks: BTreeMap<u64, Block>,
    text: String,
    usage: TokenUsage,
    stop_reason: Option<String>,
    stopped: bool,
}

impl StreamParser for AnthropicParser {
    fn on_event(&mut self, event: &SseEvent, text: &mut Vec<String>) -> Result<(), LlmError> {
        let data: Value = serde_json::from_str(&event.data).map_err(|error| {
            LlmError::Protocol(format!(
                "a stream event is not JSON ({error}): {:.200}",
                event.data
            ))
        })?;
        let index = data["index"].as_u64().unwrap_or(0);
        match data["type"].as_str().unwrap_or_default() {
            "message_start" => {
                self.started = true;
                let usage = &data["message"]["usage"];
                self.usage.input_tokens = input_tokens(usage);
                self.usage.output_tokens = usage["output_tokens"].as_u64().unwrap_or(0);
                self.usage.cache_read_tokens =
                    usage["cache_read_input_tokens"].as_u64().unwrap_or(0);
                self.usage.cache_write_tokens =
                    usage["cache_creation_input_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                let block = &data["content_block"];
                let started = match block["type"].as_str().unwrap_or_default() {
                    "text" => {
                        self.push_text(block["text"].as_str().unwrap_or_default(), text);
                        Block::Text
                    }
                    "tool_use" => Block::ToolUse {
                        id: block["id"].as_str().unwrap_or_default().to_string(),
                        name: block["name"].as_str().unwrap_or_default().to_string(),
                        input_json: String::new(),
                    },
                    _ => Block::Other,
                };
                self.blocks.insert(index, started);
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                match (
                    delta["type"].as_str().unwrap_or_default(),
                    self.blocks.get_mut(&index),
                ) {
                    ("text_delta", _) => {
                        self.push_text(delta["text"].as_str().unwrap_or_default(), text)
                    }
                    ("input_json_delta", Some(Block::ToolUse { input_json, .. })) => {
                        input_json.push_str(delta["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(reason.to_string());
                }
                let usage = &data["usage"];
                // `output_tokens` here is the total so far, not an increment.
                if let Some(output) = usage["output_tokens"].as_u64() {
                    self.usage.output_tokens = output;
                }
                let input = input_tokens(usage);
                if input > 0 {
                    self.usage.input_tokens = input;
                    self.usage.cache_read_tokens =
                        usage["cache_read_input_tokens"].as_u64().unwrap_or(0);
                    self.usage.cache_write_tokens =
                        usage["cache_creation_input_tokens"].as_u64().unwrap_or(0);
                }
            }
            "message_stop" => self.stopped = true,
            "error" => {
                let error = &data["error"];
                return Err(LlmError::Api {
                    kind: error["type"].as_str().unwrap_or("error").to_string(),
                    message: error["message"]
                        .as_str()
                        .unwrap_or("no message")
                        .to_string(),
                });
            }
            // `ping`, `content_block_stop` and event kinds added later need nothing.
            _ => {}
        }
        Ok(())
    }

    fn is_finished(&self) -> bool {
        self.stopped
    }

    fn finish(self: Box<Self>) -> Result<LlmResponse, LlmError> {
        if !self.started || (!self.stopped && self.stop_reason.is_none()) {
            return Err(LlmError::Stream(
                "the response ended before it was complete".to_string(),
            ));
        }
        let tool_calls = self
            .blocks
            .into_values()
            .filter_map(|block| match block {
                Block::ToolUse {
                    id,
                    name,
                    input_json,
                } => Some(ToolCall {
                    id,
                    name,
                    arguments: input_json,
                }),
                Block::Text | Block::Other => None,
            })
            .collect();
        Ok(LlmResponse {
            text: self.text,
            tool_calls,
            usage: self.usage,
            stop_reason: self.stop_reason,
        })
    }
}

impl AnthropicParser {
    fn push_text(&mut self, piece: &str, text: &mut Vec<String>) {
        if !piece.is_empty() {
            self.text.push_str(piece);
            text.push(piece.to_string());
        }
    }
}

/// Input tokens including those read from or written to the prompt cache, which the
/// API counts separately.
fn input_tokens(usage: &Value) -> u64 {
    [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ]
    .iter()
    .map(|field| usage[*field].as_u64().unwrap_or(0))
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ToolDefinition, parse_all};

    /// A real-format stream: text block, ping, tool_use block with its JSON split
    /// mid-string, message_delta with the stop reason and usage, message_stop.
    const STREAM: &str = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":8,\"output_tokens\":2}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\n",
        "data: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay, \"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"writing — ✓\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"write_file\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"path\\\": \\\"a.t\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"xt\\\", \\\"content\\\": \\\"hi\\\"}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn parses_text_tool_use_and_usage_at_any_split() {
        for piece in [1, 2, 5, 11, 100, STREAM.len()] {
            let (texts, response) = parse_all(
                Box::new(AnthropicParser::default()),
                STREAM.as_bytes(),
                piece,
            )
            .unwrap();
            assert_eq!(
                texts,
                vec!["Okay, ".to_string(), "writing — ✓".to_string()],
                "piece size {piece}"
            );
            assert_eq!(response.text, "Okay, writing — ✓");
            assert_eq!(
                response.tool_calls,
                vec![ToolCall {
                    id: "toolu_01".into(),
                    name: "write_file".into(),
                    arguments: "{\"path\": \"a.txt\", \"content\": \"hi\"}".into(),
                }]
            );
            assert_eq!(
                response.usage,
                TokenUsage {
                    input_tokens: 480,
                    output_tokens: 89,
                    // Counted in the input, and said apart for pricing.
                    cache_read_tokens: 8,
                    cache_write_tokens: 0,
                }
            );
            assert_eq!(response.stop_reason.as_deref(), Some("tool_use"));
        }
    }

    #[test]
    fn an_error_event_is_an_api_error() {
        let stream = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
            "event: error\n",
            "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        let error =
            parse_all(Box::new(AnthropicParser::default()), stream.as_bytes(), 4).unwrap_err();
        assert!(
            matches!(&error, LlmError::Api { kind, .. } if kind == "overloaded_error"),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }

    #[test]
    fn a_stream_without_message_stop_is_an_error() {
        let cut: String = STREAM.split_inclusive("\n\n").take(5).collect();
        let error = parse_all(Box::new(AnthropicParser::default()), cut.as_bytes(), 9).unwrap_err();
        assert!(matches!(error, LlmError::Stream(_)), "{error:?}");
    }

    #[test]
    fn request_merges_roles_and_puts_tool_results_first() {
        let conversation = vec![
            ConversationItem::User {
                text: "first".into(),
            },
            ConversationItem::Assistant {
                text: "sure".into(),
                tool_calls: vec![ToolCall {
                    id: "t1".into(),
                    name: "bash".into(),
                    arguments: "{\"command\":\"ls\"}".into(),
                }],
            },
            ConversationItem::ToolResult {
                call_id: "t1".into(),
                content: "a.txt".into(),
                is_error: false,
            },
            // The turn was aborted here; the next prompt follows the tool result.
            ConversationItem::User {
                text: "second".into(),
            },
            ConversationItem::Assistant {
                text: String::new(),
                tool_calls: vec![],
            },
        ];
        let tools = vec![ToolDefinition {
            name: "bash".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        }];
        let request = LlmRequest {
            system: "sys",
            conversation: &conversation,
            tools: &tools,
            max_tokens: 4096,
        };
        let body = request_body("claude", &request);
        assert_eq!(body["system"], "sys");
        assert_eq!(body["max_tokens"], 4096);
        assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert_eq!(
            messages[1]["content"][1],
            json!({"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "ls"}})
        );
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(messages[2]["content"][0]["type"], "tool_result");
        assert_eq!(
            messages[2]["content"][1],
            json!({"type": "text", "text": "second"})
        );
    }

    #[test]
    fn url_accepts_a_base_with_or_without_v1() {
        assert_eq!(
            url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            url("https://api.anthropic.com/"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            url("https://proxy.example/v1/"),
            "https://proxy.example/v1/messages"
        );
    }
}
