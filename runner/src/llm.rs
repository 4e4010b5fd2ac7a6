//! LLM clients: one streaming chat call with tools, for OpenAI-compatible chat
//! completions ([`openai`]) and Anthropic Messages ([`anthropic`]).
//!
//! A call is [`LlmClient::start`] (send the request, check the status) followed by
//! [`LlmStream::next_text`] until it returns `None` (the reply text as it arrives),
//! then [`LlmStream::finish`] for the whole reply: text, tool calls and token usage.
//! Every wait has a limit: connecting (10 s), the response headers, and the gap
//! between two chunks of the stream (120 s by default). Retrying is the caller's
//! choice; [`LlmError::is_retryable`] says which failures are worth another try.
//!
//! Knows reqwest and the two wire formats; knows nothing about tools or events. The
//! API key goes into request headers only, never into an error or a log line.

mod anthropic;
mod conversation;
mod openai;
mod sse;

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use nightshift_protocol::events::TokenUsage;
use nightshift_protocol::runner_link::{LlmApi, LlmConfig};
use serde_json::Value;

pub use conversation::{ConversationItem, ToolCall};
pub use sse::{SseDecoder, SseEvent};

/// A tool as the model is told about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// One call: the system prompt, the conversation so far and the tools on offer.
#[derive(Debug, Clone, Copy)]
pub struct LlmRequest<'a> {
    pub system: &'a str,
    pub conversation: &'a [ConversationItem],
    pub tools: &'a [ToolDefinition],
    /// The reply's length limit (required by Anthropic, not sent to OpenAI-compatible
    /// servers, whose models disagree on the field's name).
    pub max_tokens: u32,
}

/// A whole reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: TokenUsage,
    /// The provider's own word for why it stopped (`stop`, `tool_calls`, `end_turn`, ...).
    pub stop_reason: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct LlmTimeouts {
    pub connect: Duration,
    /// From sending the request to the response headers.
    pub response: Duration,
    /// Between two chunks of the streamed body.
    pub chunk_gap: Duration,
}

impl Default for LlmTimeouts {
    fn default() -> LlmTimeouts {
        LlmTimeouts {
            connect: Duration::from_secs(10),
            response: Duration::from_secs(120),
            chunk_gap: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("cannot reach the LLM at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the LLM at {url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("the LLM answered HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("the LLM reported an error ({kind}): {message}")]
    Api { kind: String, message: String },
    #[error("the LLM's response stream broke: {0}")]
    Stream(String),
    #[error("the LLM's response stream stalled: nothing arrived for {0} s")]
    Stalled(u64),
    #[error("the LLM sent something unexpected: {0}")]
    Protocol(String),
}

impl LlmError {
    /// Worth another try: the endpoint was unreachable, slow, rate-limited or
    /// overloaded, or the stream broke. Refusals (4xx other than 429) and malformed
    /// answers are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Connect { .. }
            | LlmError::Timeout { .. }
            | LlmError::Stream(_)
            | LlmError::Stalled(_) => true,
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::Api { kind, .. } => {
                matches!(
                    kind.as_str(),
                    "overloaded_error" | "api_error" | "rate_limit_error" | "server_error"
                )
            }
            LlmError::Protocol(_) => false,
        }
    }

    /// The wait the server asked for, when it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Turns the events of one wire format into reply text and, at the end, the reply.
pub(crate) trait StreamParser: Send {
    /// Handles one event, pushing any reply text it carried onto `text`.
    fn on_event(&mut self, event: &SseEvent, text: &mut Vec<String>) -> Result<(), LlmError>;
    /// The format's own end marker was seen; nothing more needs reading.
    fn is_finished(&self) -> bool;
    /// The whole reply, or an error when the stream ended before it was complete.
    fn finish(self: Box<Self>) -> Result<LlmResponse, LlmError>;
}

/// A client for one configured endpoint.
#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    config: LlmConfig,
    timeouts: LlmTimeouts,
}

impl LlmClient {
    /// An HTTP client suitable for [`LlmClient::new`]: rustls, connect timeout. One
    /// is shared by all calls of a runner so connections are reused.
    pub fn http_client(timeouts: &LlmTimeouts) -> reqwest::Result<reqwest::Client> {
        crate::outbound::client_builder()
            .connect_timeout(timeouts.connect)
            .user_agent(concat!("nightshift-runner/", env!("CARGO_PKG_VERSION")))
            .build()
    }

    pub fn new(http: reqwest::Client, config: LlmConfig, timeouts: LlmTimeouts) -> LlmClient {
        LlmClient {
            http,
            config,
            timeouts,
        }
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// Sends the request; on success the reply streams from the returned value.
    pub async fn start(&self, request: &LlmRequest<'_>) -> Result<LlmStream, LlmError> {
        let (url, body, parser): (String, Value, Box<dyn StreamParser>) = match self.config.api {
            LlmApi::OpenAiCompatible => (
                openai::url(&self.config.base_url),
                openai::request_body(&self.config.model, request),
                Box::new(openai::OpenAiParser::default()),
            ),
            LlmApi::Anthropic => (
                anthropic::url(&self.config.base_url),
                anthropic::request_body(&self.config.model, request),
                Box::new(anthropic::AnthropicParser::default()),
            ),
        };
        let mut builder = self
            .http
            .post(&url)
            .json(&body)
            .header("accept", "text/event-stream");
        builder = match self.config.api {
            LlmApi::OpenAiCompatible => builder.bearer_auth(self.config.api_key.expose()),
            LlmApi::Anthropic => builder
                .header("x-api-key", self.config.api_key.expose())
                .header("anthropic-version", anthropic::API_VERSION),
        };

        let limit = self.timeouts.response;
        let response = match tokio::time::timeout(limit, builder.send()).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    url,
                    seconds: limit.as_secs(),
                });
            }
            Ok(Err(error)) if error.is_timeout() => {
                return Err(LlmError::Timeout {
                    url,
                    seconds: self.timeouts.connect.as_secs(),
                });
            }
            Ok(Err(error)) => {
                return Err(LlmError::Connect {
                    url,
                    reason: describe_request_error(&error),
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let body = tokio::time::timeout(Duration::from_secs(10), response.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(LlmError::Status {
                status: status.as_u16(),
                message: error_message(&body),
                retry_after,
            });
        }
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map(|bytes| bytes.to_vec()));
        Ok(LlmStream {
            body: Box::pin(body),
            decoder: SseDecoder::new(),
            parser,
            ready: VecDeque::new(),
            chunk_gap: self.timeouts.chunk_gap,
            ended: false,
        })
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Vec<u8>>> + Send>>;

/// A reply being streamed.
pub struct LlmStream {
    body: Body,
    decoder: SseDecoder,
    parser: Box<dyn StreamParser>,
    ready: VecDeque<String>,
    chunk_gap: Duration,
    ended: bool,
}

impl LlmStream {
    /// The next piece of reply text as soon as it arrives; `None` once the reply is
    /// complete.
    pub async fn next_text(&mut self) -> Result<Option<String>, LlmError> {
        loop {
            if let Some(text) = self.ready.pop_front() {
                return Ok(Some(text));
            }
            if self.ended || self.parser.is_finished() {
                return Ok(None);
            }
            let mut text = Vec::new();
            match tokio::time::timeout(self.chunk_gap, self.body.next()).await {
                Err(_) => return Err(LlmError::Stalled(self.chunk_gap.as_secs())),
                Ok(None) => {
                    self.ended = true;
                    if let Some(event) = self.decoder.finish() {
                        self.parser.on_event(&event, &mut text)?;
                    }
                }
                Ok(Some(Err(error))) => {
                    return Err(LlmError::Stream(describe_request_error(&error)));
                }
                Ok(Some(Ok(bytes))) => {
                    let events = self
                        .decoder
                        .feed(&bytes)
                        .map_err(|error| LlmError::Protocol(error.to_string()))?;
                    for event in events {
                        self.parser.on_event(&event, &mut text)?;
                        if self.parser.is_finished() {
                            break;
                        }
                    }
                }
            }
            self.ready.extend(text);
        }
    }

    /// The whole reply. Call after [`LlmStream::next_text`] returned `None`.
    pub fn finish(self) -> Result<LlmResponse, LlmError> {
        self.parser.finish()
    }
}

/// The wait a refusal asks for: `retry-after-ms` (OpenAI) or `Retry-After` in
/// seconds (fractions allowed). An HTTP-date is not understood and means "no advice".
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|number| number.is_finite() && *number >= 0.0)
    };
    value("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| value("retry-after").map(Duration::from_secs_f64))
}

/// The most useful words of an error answer: the `error.message` both APIs use, or
/// the start of the body.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|value| {
        value["error"]["message"]
            .as_str()
            .or_else(|| value["message"].as_str())
            .or_else(|| value["error"].as_str())
    });
    match message {
        Some(message) => message.to_string(),
        None if body.trim().is_empty() => "no details".to_string(),
        None => body.trim().chars().take(500).collect(),
    }
}

/// reqwest's own message plus its causes (the useful part, such as "Connection
/// refused", is usually a cause).
fn describe_request_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Feeds a whole body through a parser in pieces of `piece` bytes, as a test of the
/// parsers against split chunks.
#[cfg(test)]
pub(crate) fn parse_all(
    mut parser: Box<dyn StreamParser>,
    body: &[u8],
    piece: usize,
) -> Result<(Vec<String>, LlmResponse), LlmError> {
    let mut decoder = SseDecoder::new();
    let mut text = Vec::new();
    for chunk in body.chunks(piece) {
        for event in decoder
            .feed(chunk)
            .map_err(|error| LlmError::Protocol(error.to_string()))?
        {
            if !parser.is_finished() {
                parser.on_event(&event, &mut text)?;
            }
        }
    }
    if let Some(event) = decoder.finish() {
        parser.on_event(&event, &mut text)?;
    }
    Ok((text, parser.finish()?))
}

#[cfg(test)]
mod tests;
