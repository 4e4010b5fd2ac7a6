//! A real HTTP server, started inside a test, that plays back LLM API answers in the
//! OpenAI streaming and Anthropic streaming wire formats and records every request.
//! Compiled for tests only.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;
use futures::stream;
use nightshift_protocol::runner_link::{LlmApi, LlmConfig};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200 text/event-stream` with these body chunks, `pause` before each; with
    /// `hang`, the body then stays open without sending anything.
    Stream {
        chunks: Vec<String>,
        pause: Duration,
        hang: bool,
    },
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
}

impl Reply {
    pub fn stream(chunks: Vec<String>) -> Reply {
        Reply::Stream {
            chunks,
            pause: Duration::ZERO,
            hang: false,
        }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Status {
            status,
            body: body.to_string(),
            retry_after: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    requests: Vec<RecordedRequest>,
}

pub struct TestLlm {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestLlm {
    pub async fn start(replies: Vec<Reply>) -> TestLlm {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            requests: Vec::new(),
        }));
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestLlm { addr, script, task }
    }

    /// An endpoint configuration pointing here (`/v1` included for OpenAI, as real
    /// providers' base URLs do).
    pub fn config(&self, api: LlmApi) -> LlmConfig {
        let base_url = match api {
            LlmApi::OpenAiCompatible => format!("http://{}/v1/", self.addr),
            LlmApi::Anthropic => format!("http://{}", self.addr),
        };
        LlmConfig {
            api,
            base_url,
            api_key: "test-key".into(),
            model: "test-model".into(),
            source: "test".into(),
        }
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.script.lock().unwrap().requests.clone()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let reply = {
        let mut script = script.lock().unwrap();
        script.requests.push(RecordedRequest {
            path: uri.path().to_string(),
            headers,
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
        });
        script.replies.pop_front()
    };
    match reply {
        None => Response::builder()
            .status(500)
            .body(Body::from("no scripted reply left"))
            .unwrap(),
        Some(Reply::Status {
            status,
            body,
            retry_after,
        }) => {
            let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
            if let Some(seconds) = retry_after {
                response = response.header("retry-after", seconds.to_string());
            }
            response
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap()
        }
        Some(Reply::Stream {
            chunks,
            pause,
            hang,
        }) => {
            let sent = stream::iter(chunks).then(move |chunk| async move {
                tokio::time::sleep(pause).await;
                Ok::<_, Infallible>(chunk)
            });
            let body = if hang {
                sent.chain(stream::pending()).boxed()
            } else {
                sent.boxed()
            };
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(body))
                .unwrap()
        }
    }
}

// --- OpenAI-format answers -------------------------------------------------------

fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

fn openai_end(prompt_tokens: u64, completion_tokens: u64) -> Vec<String> {
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
                       "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                                "total_tokens": prompt_tokens + completion_tokens}});
    vec![format!("data: {usage}\n\n"), "data: [DONE]\n\n".to_string()]
}

/// A text answer streamed in the given pieces.
pub fn openai_text(pieces: &[&str], prompt_tokens: u64, completion_tokens: u64) -> Vec<String> {
    let mut chunks = vec![openai_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    chunks.extend(
        pieces
            .iter()
            .map(|piece| openai_chunk(json!({"content": piece}), None)),
    );
    chunks.push(openai_chunk(json!({}), Some("stop")));
    chunks.extend(openai_end(prompt_tokens, completion_tokens));
    chunks
}

/// An answer calling one tool, its arguments split in two.
pub fn openai_tool_call(
    id: &str,
    name: &str,
    args: &Value,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> Vec<String> {
    let args = args.to_string();
    let middle = args
        .char_indices()
        .nth(args.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let mut chunks = vec![
        openai_chunk(
            json!({"role": "assistant", "content": null,
                             "tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
        ),
        openai_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": &args[..middle]}}]}),
            None,
        ),
        openai_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": &args[middle..]}}]}),
            None,
        ),
        openai_chunk(json!({}), Some("tool_calls")),
    ];
    chunks.extend(openai_end(prompt_tokens, completion_tokens));
    chunks
}

// --- Anthropic-format answers ----------------------------------------------------

fn anthropic_event(kind: &str, data: Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

fn anthropic_start(input_tokens: u64) -> String {
    anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
               "model": "test-model", "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
    )
}

fn anthropic_stop(stop_reason: &str, output_tokens: u64) -> Vec<String> {
    vec![
        anthropic_event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                                                "usage": {"output_tokens": output_tokens}}),
        ),
        anthropic_event("message_stop", json!({"type": "message_stop"})),
    ]
}

pub fn anthropic_text(pieces: &[&str], input_tokens: u64, output_tokens: u64) -> Vec<String> {
    let mut chunks = vec![
        anthropic_start(input_tokens),
        anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        anthropic_event("ping", json!({"type": "ping"})),
    ];
    chunks.extend(pieces.iter().map(|piece| {
        anthropic_event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}))
    }));
    chunks.push(anthropic_event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    chunks.extend(anthropic_stop("end_turn", output_tokens));
    chunks
}

pub fn anthropic_tool_call(
    id: &str,
    name: &str,
    args: &Value,
    input_tokens: u64,
    output_tokens: u64,
) -> Vec<String> {
    let args = args.to_string();
    let middle = args
        .char_indices()
        .nth(args.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let mut chunks = vec![
        anthropic_start(input_tokens),
        anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                                                      "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ),
    ];
    for part in [&args[..middle], &args[middle..]] {
        chunks.push(anthropic_event("content_block_delta", json!({"type": "content_block_delta", "index": 0,
                                                                 "delta": {"type": "input_json_delta", "partial_json": part}})));
    }
    chunks.push(anthropic_event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    chunks.extend(anthropic_stop("tool_use", output_tokens));
    chunks
}
