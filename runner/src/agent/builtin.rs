//! The built-in agent: a loop of LLM calls and tool calls over a conversation it keeps
//! in memory across the turns of its session.
//!
//! One step: stream the LLM's reply (every piece of text becomes a `text_delta` event
//! as it arrives); if the reply asks for tools, run each one (`tool_call_started`,
//! then `tool_call_finished` with the output cut to `MAX_TOOL_OUTPUT_BYTES`), feed the
//! results back, and take another step; a reply without tool calls ends the turn.
//! LLM calls that fail before any text was shown are retried (429, 5xx, network)
//! up to three times with backoff (or the wait the server asked for in
//! `Retry-After`), each retry announced with a `retrying` event as it starts waiting.
//! The `ask_user` tool puts a question to the user and waits for the answer (see
//! [`super::questions`]). An abort stops the stream or the running command
//! at once, and the conversation is left consistent: every tool call the model made
//! gets a result, so the next turn can continue from it.

use std::time::Duration;

use async_trait::async_trait;
use nightshift_protocol::events::{EventBody, TokenUsage};
use nightshift_protocol::limits::MAX_TOOL_OUTPUT_BYTES;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::memory::ConversationMemory;
use super::prompt::system_prompt;
use super::questions::{Question, QuestionOutcome};
use super::{Agent, TurnEnd, TurnEvents, TurnInput};
use crate::artifacts::ArtifactUploader;
use crate::llm::{
    ConversationItem, LlmClient, LlmError, LlmRequest, LlmResponse, LlmTimeouts, ToolCall,
    ToolDefinition,
};
use crate::repo::RepoHandle;
use crate::repo::pull_request_tool::{self, OPEN_PULL_REQUEST_TOOL};
use crate::tools::{ToolOutput, ToolSet, truncate_output};
use nightshift_protocol::artifacts::ArtifactCreated;
use nightshift_protocol::events::QuestionKind;

/// LLM calls in one turn before the agent gives up on reaching a final answer.
pub const MAX_STEPS: usize = 50;
/// Tries of one LLM call (the first and three retries).
const LLM_ATTEMPTS: u32 = 4;
/// The reply length limit sent to Anthropic; every current Claude model allows it.
const MAX_REPLY_TOKENS: u32 = 8192;
/// Longest single string argument shown in a `tool_call_started` event (the model
/// still gets and the tool still uses the whole value).
const MAX_SHOWN_ARGUMENT_BYTES: usize = 16 * 1024;
/// The longest wait between two tries, whatever the server asks for.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// The built-in tool that asks the user a question.
pub const ASK_USER_TOOL: &str = "ask_user";

pub struct BuiltinAgent {
    tools: ToolSet,
    tool_definitions: Vec<ToolDefinition>,
    system_prompt: String,
    conversation: Vec<ConversationItem>,
    http: reqwest::Client,
    timeouts: LlmTimeouts,
    max_steps: usize,
    first_retry_delay: Duration,
    /// Where the images tools make go (none: they stay out of the chat).
    artifacts: Option<ArtifactUploader>,
    /// The session's repository: with one, the agent has `open_pull_request`.
    repo: Option<RepoHandle>,
    /// The session's copy of the conversation (none: it lives in memory only).
    memory: Option<ConversationMemory>,
}

/// Why one LLM step did not produce a reply. Either way, `partial_text` is what the
/// user already saw of it.
enum StepError {
    Aborted {
        partial_text: String,
    },
    Failed {
        error: LlmError,
        partial_text: String,
    },
}

enum StreamFailure {
    Aborted,
    Llm(LlmError),
}

impl BuiltinAgent {
    /// `workspace` is the workspace as commands in the sandbox see it, for the
    /// system prompt.
    pub fn new(tools: ToolSet, workspace: &str) -> reqwest::Result<BuiltinAgent> {
        let timeouts = LlmTimeouts::default();
        let mut tool_definitions = tools.definitions();
        tool_definitions.push(ask_user_definition());
        Ok(BuiltinAgent {
            tool_definitions,
            tools,
            system_prompt: system_prompt(workspace),
            conversation: Vec::new(),
            http: LlmClient::http_client(&timeouts)?,
            timeouts,
            max_steps: MAX_STEPS,
            first_retry_delay: Duration::from_secs(1),
            artifacts: None,
            repo: None,
            memory: None,
        })
    }

    /// Gives the agent the session's repository (its pull-request tool, once a
    /// `welcome` named a repository).
    pub fn with_repo(mut self, repo: RepoHandle) -> BuiltinAgent {
        self.repo = Some(repo);
        self
    }

    /// Whether `open_pull_request` is offered this turn.
    fn repo_tool(&self) -> Option<&RepoHandle> {
        self.repo.as_ref().filter(|repo| repo.repo().is_some())
    }

    /// Keeps the conversation in the session too, and reads it back from there when
    /// this runner starts without it.
    pub fn with_memory(mut self, memory: ConversationMemory) -> BuiltinAgent {
        self.memory = Some(memory);
        self
    }

    /// Writes what the session's copy lacks (nothing without a copy).
    async fn remember(&mut self, message_id: &str) {
        if let Some(memory) = &mut self.memory {
            memory.save(&self.conversation, message_id).await;
        }
    }

    /// Uploads the images tools make (screenshots) with `uploader`, for the chat.
    pub fn with_artifacts(mut self, uploader: ArtifactUploader) -> BuiltinAgent {
        self.artifacts = Some(uploader);
        self
    }

    /// Shorter limits and retry delays, for tests.
    pub fn with_timing(
        mut self,
        timeouts: LlmTimeouts,
        first_retry_delay: Duration,
    ) -> reqwest::Result<BuiltinAgent> {
        self.http = LlmClient::http_client(&timeouts)?;
        self.timeouts = timeouts;
        self.first_retry_delay = first_retry_delay;
        Ok(self)
    }

    pub fn with_max_steps(mut self, max_steps: usize) -> BuiltinAgent {
        self.max_steps = max_steps.max(1);
        self
    }

    pub fn conversation(&self) -> &[ConversationItem] {
        &self.conversation
    }

    /// One LLM call, retried while nothing of it was shown yet.
    async fn step(
        &self,
        client: &LlmClient,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) -> Result<LlmResponse, StepError> {
        let with_repo_tool;
        let tools = match self.repo_tool() {
            Some(_) => {
                with_repo_tool = [
                    self.tool_definitions.clone(),
                    vec![pull_request_tool::definition()],
                ]
                .concat();
                &with_repo_tool
            }
            None => &self.tool_definitions,
        };
        let request = LlmRequest {
            system: &self.system_prompt,
            conversation: &self.conversation,
            tools,
            max_tokens: MAX_REPLY_TOKENS,
        };
        let mut attempt = 1;
        loop {
            let mut partial_text = String::new();
            match stream_once(client, &request, events, cancel, &mut partial_text).await {
                Ok(reply) => return Ok(reply),
                Err(StreamFailure::Aborted) => return Err(StepError::Aborted { partial_text }),
                Err(StreamFailure::Llm(error)) => {
                    if !error.is_retryable() || !partial_text.is_empty() || attempt >= LLM_ATTEMPTS
                    {
                        return Err(StepError::Failed {
                            error,
                            partial_text,
                        });
                    }
                    let backoff = self.first_retry_delay.saturating_mul(1 << (attempt - 1));
                    let delay = error.retry_after().unwrap_or(backoff).min(MAX_RETRY_DELAY);
                    tracing::warn!(%error, attempt, ?delay, "LLM call failed; retrying");
                    events
                        .emit(EventBody::Retrying {
                            attempt,
                            max_attempts: LLM_ATTEMPTS,
                            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            reason: error.to_string(),
                        })
                        .await;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Err(StepError::Aborted { partial_text: String::new() }),
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// Runs one tool call with its events and records its result.
    async fn run_tool_call(
        &mut self,
        call: &ToolCall,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) {
        let arguments = call.parsed_arguments();
        let shown = match &arguments {
            Ok(value) => shorten_arguments(value.clone()),
            Err(_) => Value::String(call.arguments.clone()),
        };
        events
            .emit(EventBody::ToolCallStarted {
                call_id: call.id.clone(),
                tool: call.name.clone(),
                args: shown,
            })
            .await;
        let output = match arguments {
            Ok(value) if value.is_object() && call.name == ASK_USER_TOOL => {
                ask_user(&call.id, &value, events, cancel).await
            }
            Ok(value) if value.is_object() && call.name == OPEN_PULL_REQUEST_TOOL => {
                match self.repo_tool() {
                    Some(repo) => pull_request_tool::run(repo, &value).await,
                    None => ToolOutput::error("this session has no repository"),
                }
            }
            Ok(value) if value.is_object() => self.tools.run(&call.name, &value, cancel).await,
            Ok(_) => ToolOutput::error("the arguments must be a JSON object"),
            Err(error) => ToolOutput::error(format!(
                "the arguments are not valid JSON ({error}); call the tool again with a JSON object"
            )),
        };
        let (image, note) = self.upload_image(output.image.as_ref()).await;
        let full_text = match note {
            Some(note) => format!("{}\n{note}", output.text),
            None => output.text,
        };
        let (text, truncated_bytes) = truncate_output(&full_text, MAX_TOOL_OUTPUT_BYTES);
        events
            .emit(EventBody::ToolCallFinished {
                call_id: call.id.clone(),
                output: text.clone(),
                is_error: output.is_error,
                truncated_bytes,
            })
            .await;
        if let Some(created) = image {
            events
                .emit(EventBody::Image {
                    call_id: Some(call.id.clone()),
                    artifact: created.artifact,
                    width: created.width,
                    height: created.height,
                })
                .await;
        }
        self.conversation.push(ConversationItem::ToolResult {
            call_id: call.id.clone(),
            content: text,
            is_error: output.is_error,
        });
    }

    /// Uploads a tool's image, if it made one; a failure becomes a note for the
    /// model (the tool call itself succeeded).
    async fn upload_image(
        &self,
        image: Option<&crate::tools::browser::Png>,
    ) -> (Option<ArtifactCreated>, Option<String>) {
        let Some(image) = image else {
            return (None, None);
        };
        let Some(uploader) = &self.artifacts else {
            return (None, Some("(The image could not be shown to the user: this runner has no session to send it to.)".into()));
        };
        match uploader.upload(image).await {
            Ok(created) => (Some(created), None),
            Err(error) => {
                tracing::warn!(%error, "an image was not uploaded");
                (
                    None,
                    Some(format!(
                        "(The image could not be shown to the user: {error})"
                    )),
                )
            }
        }
    }

    /// Gives the calls that never ran a result, so the conversation stays valid for
    /// the next turn (both APIs require a result for every call).
    fn record_not_run(&mut self, calls: &[ToolCall]) {
        for call in calls {
            self.conversation.push(ConversationItem::ToolResult {
                call_id: call.id.clone(),
                content: "Not run: the user aborted the turn.".to_string(),
                is_error: true,
            });
        }
    }

    fn record_partial(&mut self, partial_text: String) {
        if !partial_text.is_empty() {
            self.conversation.push(ConversationItem::Assistant {
                text: partial_text,
                tool_calls: Vec::new(),
            });
        }
    }
}

#[async_trait]
impl Agent for BuiltinAgent {
    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) -> TurnEnd {
        // Entries are keyed by the prompt: a prompt run again gets a new turn id.
        let message_id = input.message_id.clone();
        if let Some(memory) = &mut self.memory {
            memory.begin_turn(&mut self.conversation, &message_id).await;
        }
        let end = self.run_steps(input, events, cancel).await;
        self.remember(&message_id).await;
        end
    }

    fn other_agent_ran(&mut self) {
        if let Some(memory) = &mut self.memory {
            memory.forget(&mut self.conversation);
        }
    }
}

impl BuiltinAgent {
    async fn run_steps(
        &mut self,
        input: TurnInput,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) -> TurnEnd {
        let message_id = input.message_id.clone();
        let client = LlmClient::new(self.http.clone(), input.llm, self.timeouts);
        self.conversation.push(ConversationItem::User {
            text: input.content,
        });
        self.remember(&message_id).await;
        let mut usage = TokenUsage::default();

        for _ in 0..self.max_steps {
            let reply = match self.step(&client, events, cancel).await {
                Ok(reply) => reply,
                Err(StepError::Aborted { partial_text }) => {
                    self.record_partial(partial_text);
                    return TurnEnd::aborted(usage);
                }
                Err(StepError::Failed {
                    error,
                    partial_text,
                }) => {
                    self.record_partial(partial_text);
                    return TurnEnd::failed(
                        usage,
                        format!("The LLM call to {} failed: {error}", client.model()),
                    );
                }
            };
            usage.add(reply.usage);
            // Each call's tokens as soon as it ends: the session checks its spend
            // caps at every step and stops the turn at the one that reaches a cap.
            events
                .emit(EventBody::StepUsage { usage: reply.usage })
                .await;
            let calls = reply.tool_calls;
            self.conversation.push(ConversationItem::Assistant {
                text: reply.text,
                tool_calls: calls.clone(),
            });
            if calls.is_empty() {
                return TurnEnd::done(usage);
            }
            self.remember(&message_id).await;
            for (index, call) in calls.iter().enumerate() {
                if cancel.is_cancelled() {
                    self.record_not_run(&calls[index..]);
                    return TurnEnd::aborted(usage);
                }
                self.run_tool_call(call, events, cancel).await;
                self.remember(&message_id).await;
            }
            if cancel.is_cancelled() {
                return TurnEnd::aborted(usage);
            }
        }
        TurnEnd::failed(
            usage,
            format!(
                "Stopped after {} LLM calls without a final answer. Send a follow-up prompt to let the agent continue.",
                self.max_steps
            ),
        )
    }
}

async fn stream_once(
    client: &LlmClient,
    request: &LlmRequest<'_>,
    events: &TurnEvents,
    cancel: &CancellationToken,
    partial_text: &mut String,
) -> Result<LlmResponse, StreamFailure> {
    let mut stream = tokio::select! {
        started = client.start(request) => started.map_err(StreamFailure::Llm)?,
        _ = cancel.cancelled() => return Err(StreamFailure::Aborted),
    };
    loop {
        let next = tokio::select! {
            next = stream.next_text() => next.map_err(StreamFailure::Llm)?,
            _ = cancel.cancelled() => return Err(StreamFailure::Aborted),
        };
        let Some(text) = next else { break };
        partial_text.push_str(&text);
        events.emit(EventBody::TextDelta { text }).await;
    }
    stream.finish().map_err(StreamFailure::Llm)
}

fn ask_user_definition() -> ToolDefinition {
    ToolDefinition {
        name: ASK_USER_TOOL.to_string(),
        description:
            "Ask the user a question and wait for the answer. Use it only when you cannot \
            go on sensibly without the user's decision; offer options when the choices are known. \
            If nobody answers in time, the result says so: then go on with a reasonable assumption \
            and say which one you made."
                .to_string(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {
                "question": {"type": "string", "description": "The question, complete and self-contained."},
                "options": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Answers to choose from (optional; the user may also answer freely)."
                }
            },
            "required": ["question"]
        }),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AskUserArgs {
    question: String,
    #[serde(default)]
    options: Vec<String>,
}

/// The `ask_user` tool: the question goes to the user, the answer back to the model.
async fn ask_user(
    call_id: &str,
    args: &Value,
    events: &TurnEvents,
    cancel: &CancellationToken,
) -> ToolOutput {
    let args: AskUserArgs = match serde_json::from_value(args.clone()) {
        Ok(args) => args,
        Err(error) => return ToolOutput::error(format!("invalid arguments for ask_user: {error}")),
    };
    if args.question.trim().is_empty() {
        return ToolOutput::error("the question is empty");
    }
    let question = Question {
        id: format!("ask_{call_id}"),
        kind: QuestionKind::Question,
        text: args.question,
        options: args.options,
    };
    match events.ask(question, cancel).await {
        QuestionOutcome::Answered(answer) => ToolOutput::ok(format!("The user answered: {answer}")),
        QuestionOutcome::Expired => ToolOutput::error(format!(
            "The user did not answer within {} seconds. Go on with a reasonable assumption and say which one you made.",
            events.question_timeout().as_secs()
        )),
        QuestionOutcome::Aborted => ToolOutput::error("Not answered: the user aborted the turn."),
    }
}

/// Tool arguments as shown in events: long strings (a whole file's content, say) are
/// cut, so one event stays small.
fn shorten_arguments(value: Value) -> Value {
    match value {
        Value::String(text) if text.len() > MAX_SHOWN_ARGUMENT_BYTES => {
            let (cut, _) = truncate_output(&text, MAX_SHOWN_ARGUMENT_BYTES);
            Value::String(cut)
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, shorten_arguments(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(shorten_arguments).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests;
