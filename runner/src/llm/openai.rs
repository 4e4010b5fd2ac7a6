//! OpenAI-compatible chat completions: `POST {base_url}/chat/completions` with
//! `stream: true`. `base_url` is used as given and must include the API's version
//! path when the provider has one (`https://api.openai.com/v1`,
//! `https://openrouter.ai/api/v1`, `http://localhost:11434/v1` for Ollama).
//!
//! The stream is a series of `data: {chat.completion.chunk}` events ended by
//! `data: [DONE]`. Text arrives in `choices[0].delta.content`; tool calls arrive in
//! `choices[0].delta.tool_calls[]`, keyed by `index`: the first piece of a call
//! carries its `id` and `function.name`, later pieces append to
//! `function.arguments`. With `stream_options.include_usage` the last chunk before
//! `[DONE]` has empty `choices` and the token `usage`.

use std::collections::BTreeMap;

use nightshift_protocol::events::TokenUsage;
use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{ConversationItem, LlmError, LlmRequest, LlmResponse, StreamParser, ToolCall};

pub(super) fn url(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim().trim_end_matches('/'))
}

pub(super) fn request_body(model: &str, request: &LlmRequest<'_>) -> Value {
    let mut messages = vec![json!({"role": "system", "content": request.system})];
    for item in request.conversation {
        messages.push(match item {
            ConversationItem::User { text } => json!({"role": "user", "content": text}),
            ConversationItem::Assistant { text, tool_calls } => {
                let mut message = json!({"role": "assistant", "content": text});
                if !tool_calls.is_empty() {
                    let calls: Vec<Value> = tool_calls
                        .iter()
                        .map(|call| {
                            json!({
                                "id": call.id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": call.arguments},
                            })
                        })
                        .collect();
                    message["tool_calls"] = Value::Array(calls);
                }
                message
            }
            ConversationItem::ToolResult {
                call_id, content, ..
            } => {
                json!({"role": "tool", "tool_call_id": call_id, "content": content})
            }
        });
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
pub(super) struct OpenAiParser {
    text: String,
    calls: BTreeMap<u64, PartialCall>,
    usage: TokenUsage,
    finish_reason: Option<String>,
    done: bool,
}

impl StreamParser for OpenAiParser {
    fn on_event(&mut self, event: &SseEvent, text: &mut Vec<String>) -> Result<(), LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data).map_err(|error| {
            LlmError::Protocol(format!("a stream chunk is not JSON ({error}): {data:.200}"))
        })?;
        if let Some(error) = chunk.get("error") {
            return Err(api_error(error));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            // Some providers repeat a growing usage on every chunk; the last one wins.
            // `prompt_tokens` includes the cached ones, which are billed at a discount.
            self.usage = TokenUsage {
                input_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
                output_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
                cache_read_tokens: usage["prompt_tokens_details"]["cached_tokens"]
                    .as_u64()
                    .unwrap_or(0),
                cache_write_tokens: 0,
            };
        }
        let Some(choice) = chunk["choices"]
            .as_array()
            .and_then(|choices| choices.first())
        else {
            return Ok(());
        };
        let delta = &choice["delta"];
        if let Some(piece) = delta["content"].as_str().filter(|piece| !piece.is_empty()) {
            self.text.push_str(piece);
            text.push(piece.to_string());
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for (position, call) in calls.iter().enumerate() {
                self.add_call_piece(position, call);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_string());
        }
        Ok(())
    }

    fn is_finished(&self) -> bool {
        self.done
    }

    fn finish(self: Box<Self>) -> Result<LlmResponse, LlmError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(LlmError::Stream(
                "the response ended before it was complete".to_string(),
            ));
        }
        let tool_calls = self
            .calls
            .into_iter()
            .map(|(index, call)| ToolCall {
                id: if call.id.is_empty() {
                    format!("call_{index}")
                } else {
                    call.id
                },
                name: call.name,
                arguments: call.arguments,
            })
            .collect();
        Ok(LlmResponse {
            text: self.text,
            tool_calls,
            usage: self.usage,
            stop_reason: self.finish_reason,
        })
    }
}

impl OpenAiParser {
    fn add_call_piece(&mut self, position: usize, piece: &Value) {
        // `index` is required by the API; a few compatible servers leave it out and
        // send each call whole, so fall back to the position in the array.
        let index = piece["index"].as_u64().unwrap_or(position as u64);
        let call = self.calls.entry(index).or_default();
        if let Some(id) = piece["id"].as_str().filter(|id| !id.is_empty()) {
            call.id = id.to_string();
        }
        let function = &piece["function"];
        // Names arrive whole (some servers repeat them on every piece); arguments
        // arrive in pieces to be joined.
        if let Some(name) = function["name"].as_str().filter(|name| !name.is_empty()) {
            call.name = name.to_string();
        }
        if let Some(arguments) = function["arguments"].as_str() {
            call.arguments.push_str(arguments);
        }
    }
}

fn api_error(error: &Value) -> LlmError {
    let message = error["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| error.to_string());
    let kind = error["type"]
        .as_str()
        .or_else(|| error["code"].as_str())
        .unwrap_or("error")
        .to_string();
    LlmError::Api { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::sse::SseDecoder;
    use crate::llm::{ToolDefinition, parse_all};

    /// A real-format stream: text, two parallel tool calls with arguments split
    /// mid-token, the finish chunk, the usage chunk and `[DONE]`.
    pub(crate) const STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me l\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ook — ü.\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"bash\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"comm\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"arguments\":\"{\\\"path\\\":\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"and\\\":\\\"ls\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"\\\"a.txt\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":34,\"total_tokens\":154}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn parses_text_parallel_tool_calls_and_usage_at_any_split() {
        for piece in [1, 2, 3, 7, 13, 64, STREAM.len()] {
            let (texts, response) =
                parse_all(Box::new(OpenAiParser::default()), STREAM.as_bytes(), piece).unwrap();
            assert_eq!(texts.concat(), "Let me look — ü.", "piece size {piece}");
            assert_eq!(response.text, "Let me look — ü.");
            assert_eq!(
                response.tool_calls,
                vec![
                    ToolCall {
                        id: "call_a".into(),
                        name: "bash".into(),
                        arguments: "{\"command\":\"ls\"}".into()
                    },
                    ToolCall {
                        id: "call_b".into(),
                        name: "read_file".into(),
                        arguments: "{\"path\":\"a.txt\"}".into()
                    },
                ]
            );
            assert_eq!(
                response.usage,
                TokenUsage {
                    input_tokens: 120,
                    output_tokens: 34,
                    ..TokenUsage::default()
                }
            );
            assert_eq!(response.stop_reason.as_deref(), Some("tool_calls"));
        }
    }

    #[test]
    fn text_deltas_come_out_as_they_arrive() {
        let mut decoder = SseDecoder::new();
        let mut parser = OpenAiParser::default();
        let mut texts = Vec::new();
        let first_two_events: String = STREAM.split_inclusive("\n\n").take(2).collect();
        for event in decoder.feed(first_two_events.as_bytes()).unwrap() {
            parser.on_event(&event, &mut texts).unwrap();
        }
        assert_eq!(texts, vec!["Let me l".to_string()]);
    }

    #[test]
    fn an_error_chunk_is_an_api_error() {
        let stream = "data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"rate_limit_exceeded\"}}\n\n";
        let error = parse_all(Box::new(OpenAiParser::default()), stream.as_bytes(), 5).unwrap_err();
        assert!(
            matches!(&error, LlmError::Api { kind, message } if kind == "rate_limit_exceeded" && message == "Rate limit reached")
        );
    }

    #[test]
    fn a_cut_off_stream_is_an_error() {
        let cut: String = STREAM.split_inclusive("\n\n").take(4).collect();
        let error = parse_all(Box::new(OpenAiParser::default()), cut.as_bytes(), 10).unwrap_err();
        assert!(matches!(error, LlmError::Stream(_)), "{error:?}");
    }

    #[test]
    fn request_carries_system_history_tools_and_usage_option() {
        let conversation = vec![
            ConversationItem::User { text: "hi".into() },
            ConversationItem::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "bash".into(),
                    arguments: "{}".into(),
                }],
            },
            ConversationItem::ToolResult {
                call_id: "c1".into(),
                content: "ok".into(),
                is_error: false,
            },
        ];
        let tools = vec![ToolDefinition {
            name: "bash".into(),
            description: "run".into(),
            parameters: json!({"type": "object"}),
        }];
        let request = LlmRequest {
            system: "sys",
            conversation: &conversation,
            tools: &tools,
            max_tokens: 100,
        };
        let body = request_body("gpt-x", &request);
        assert_eq!(body["model"], "gpt-x");
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["name"],
            "bash"
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "ok"})
        );
        assert_eq!(
            body["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(url("http://h/v1/"), "http://h/v1/chat/completions");
    }
}
