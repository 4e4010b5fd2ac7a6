//! A scripted LLM: a real HTTP server speaking the OpenAI streaming chat-completions
//! wire format (`POST /v1/chat/completions` with `stream: true`), playing back
//! scripts of text and tool calls.
//!
//! A test registers a [`Script`] for a prompt marker: when a request's last user
//! message contains the marker, the server answers the request with the script's step
//! for this point of the turn (step N = the N-th call after the user's prompt, counted
//! by the tool results that follow it). Unscripted prompts get the reply
//! `"echo: <prompt>"`. Every request body is recorded for assertions.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

/// One piece of a scripted answer.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// A text delta.
    Text(String),
    /// A complete tool call; its arguments are streamed in a few pieces, as real
    /// APIs do.
    ToolCall { name: String, args: Value },
    /// A pause before the next chunk.
    Pause(Duration),
    /// The tokens the call reports in its `usage` chunk (by default 10 prompt
    /// tokens and one completion token per other chunk).
    Usage { input: u64, output: u64 },
}

/// The answer to one LLM call.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub chunks: Vec<Chunk>,
}

impl Step {
    pub fn text(text: &str) -> Step {
        Step {
            chunks: vec![Chunk::Text(text.to_string())],
        }
    }

    pub fn tool(name: &str, args: Value) -> Step {
        Step {
            chunks: vec![Chunk::ToolCall {
                name: name.to_string(),
                args,
            }],
        }
    }

    /// `count` text deltas `"{prefix}{i} "`, each after `pause`.
    pub fn slow_text(prefix: &str, count: usize, pause: Duration) -> Step {
        let mut chunks = Vec::new();
        for i in 0..count {
            chunks.push(Chunk::Pause(pause));
            chunks.push(Chunk::Text(format!("{prefix}{i} ")));
        }
        Step { chunks }
    }

    /// This step, reporting `input` prompt and `output` completion tokens.
    pub fn with_usage(mut self, input: u64, output: u64) -> Step {
        self.chunks.push(Chunk::Usage { input, output });
        self
    }

    /// The text the step streams, concatenated.
    pub fn full_text(&self) -> String {
        self.chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// The answers of one turn, call by call.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub steps: Vec<Step>,
}

impl Script {
    pub fn new(steps: Vec<Step>) -> Script {
        Script { steps }
    }
}

#[derive(Default)]
struct Book {
    scripts: Vec<(String, Script)>,
    requests: Vec<Value>,
    /// The `Authorization` header of each request (the key the caller used).
    authorizations: Vec<String>,
    calls_per_marker: HashMap<String, usize>,
    /// Per marker: how many more calls are refused with 429 before the script plays.
    refusals: HashMap<String, usize>,
}

/// A running scripted LLM server. Dropping it stops the server.
pub struct ScriptedLlm {
    addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedLlm {
    pub async fn start() -> anyhow::Result<ScriptedLlm> {
        let book = Arc::new(Mutex::new(Book::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(book.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ScriptedLlm { addr, book, task })
    }

    /// The base URL to configure as `LLM_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Refuse the next `count` calls for prompts containing `marker` with
    /// `429 Too Many Requests` (`retry-after-ms: 200`), as a rate-limited API does.
    pub fn refuse_next(&self, marker: &str, count: usize) {
        lock(&self.book).refusals.insert(marker.to_string(), count);
    }

    /// Answer prompts containing `marker` with `script`.
    pub fn on(&self, marker: &str, script: Script) {
        lock(&self.book).scripts.push((marker.to_string(), script));
    }

    /// How many LLM calls prompts with `marker` received.
    pub fn calls_for(&self, marker: &str) -> usize {
        lock(&self.book)
            .calls_per_marker
            .get(marker)
            .copied()
            .unwrap_or(0)
    }

    /// The `Authorization` header of every request so far, in order.
    pub fn authorizations(&self) -> Vec<String> {
        lock(&self.book).authorizations.clone()
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.book).requests.clone()
    }
}

fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    // A panicking test thread must not wedge the server for the others.
    book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last user message, and how many tool results follow it (= which step).
fn turn_position(body: &Value) -> (String, usize) {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last_user = messages.iter().rposition(|m| m["role"] == "user");
    let Some(index) = last_user else {
        return (String::new(), 0);
    };
    let prompt = match &messages[index]["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    };
    // Each assistant message after the prompt is one earlier step of this turn.
    let step = messages[index + 1..]
        .iter()
        .filter(|m| m["role"] == "assistant")
        .count();
    (prompt, step)
}

async fn chat_completions(
    State(book): State<Arc<Mutex<Book>>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid json").into_response();
    };
    let (prompt, step_index) = turn_position(&body);
    let model = body["model"].as_str().unwrap_or("scripted").to_string();
    let step = {
        let mut book = lock(&book);
        book.requests.push(body.clone());
        book.authorizations.push(authorization);
        let refused = book
            .refusals
            .iter_mut()
            .find(|(marker, left)| **left > 0 && prompt.contains(marker.as_str()));
        if let Some((_, left)) = refused {
            *left -= 1;
            return Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("retry-after-ms", "200")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    r#"{"error":{"message":"Rate limit reached (scripted)","type":"rate_limit_error"}}"#,
                ))
                .unwrap_or_else(|_| StatusCode::TOO_MANY_REQUESTS.into_response());
        }
        let found = book
            .scripts
            .iter()
            .find(|(marker, _)| prompt.contains(marker.as_str()))
            .cloned();
        match found {
            Some((marker, script)) => {
                *book.calls_per_marker.entry(marker).or_default() += 1;
                script
                    .steps
                    .get(step_index)
                    .cloned()
                    .unwrap_or_else(|| Step::text("done"))
            }
            None => Step::text(&format!("echo: {prompt}")),
        }
    };
    if body["stream"] != Value::Bool(true) {
        return (StatusCode::BAD_REQUEST, "the scripted LLM only streams").into_response();
    }
    let frames = sse_frames(&model, &step);
    let stream = stream::iter(frames).then(|frame| async move {
        match frame {
            Frame::Pause(d) => {
                tokio::time::sleep(d).await;
                Ok::<_, Infallible>(String::new())
            }
            Frame::Data(data) => Ok(format!("data: {data}\n\n")),
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

enum Frame {
    Pause(Duration),
    Data(String),
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
    .to_string()
}

fn sse_frames(model: &str, step: &Step) -> Vec<Frame> {
    let mut frames = vec![Frame::Data(chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    ))];
    let mut tool_index = 0;
    let mut output_tokens = 0;
    let mut reported = None;
    for piece in &step.chunks {
        match piece {
            Chunk::Pause(d) => frames.push(Frame::Pause(*d)),
            Chunk::Usage { input, output } => reported = Some((*input, *output)),
            Chunk::Text(text) => {
                output_tokens += 1;
                frames.push(Frame::Data(chunk(model, json!({"content": text}), None)));
            }
            Chunk::ToolCall { name, args } => {
                output_tokens += 1;
                let id = format!("call_{}", uuid::Uuid::new_v4().simple());
                frames.push(Frame::Data(chunk(
                    model,
                    json!({"tool_calls": [{"index": tool_index, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    None,
                )));
                // Split the arguments at awkward places, as real streams do.
                let args = args.to_string();
                let mid = args
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(args.chars().count() / 2)
                    .unwrap_or(0);
                for part in [&args[..mid], &args[mid..]] {
                    frames.push(Frame::Data(chunk(
                        model,
                        json!({"tool_calls": [{"index": tool_index, "function": {"arguments": part}}]}),
                        None,
                    )));
                }
                tool_index += 1;
            }
        }
    }
    let finish = if tool_index > 0 { "tool_calls" } else { "stop" };
    frames.push(Frame::Data(chunk(model, json!({}), Some(finish))));
    let (input_tokens, output_tokens) = reported.unwrap_or((10, output_tokens));
    frames.push(Frame::Data(
        json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0,
               "model": model, "choices": [],
               "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                         "total_tokens": input_tokens + output_tokens}})
        .to_string(),
    ));
    frames.push(Frame::Data("[DONE]".to_string()));
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_counts_assistant_messages_after_the_prompt() {
        let body = json!({"messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "second MARK"},
            {"role": "assistant", "tool_calls": []},
            {"role": "tool", "content": "r"},
        ]});
        assert_eq!(turn_position(&body), ("second MARK".to_string(), 1));
    }

    #[test]
    fn tool_call_arguments_reassemble() {
        let step = Step::tool("write_file", json!({"path": "a.txt", "content": "héllo"}));
        let frames = sse_frames("m", &step);
        let mut args = String::new();
        for frame in frames {
            if let Frame::Data(d) = frame {
                if d == "[DONE]" {
                    continue;
                }
                let v: Value = serde_json::from_str(&d).unwrap();
                if let Some(a) =
                    v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
                {
                    args.push_str(a);
                }
            }
        }
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(parsed["content"], "héllo");
    }
}
