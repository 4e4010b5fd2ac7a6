//! The timeline reducer: a session's event stream folded into turns the view renders.
//!
//! [`Timeline::apply`] takes each [`SessionEvent`] in `seq` order and ignores any it has
//! already seen, so a reconnect that replays events (the browser's own `EventSource`
//! retry, or a fresh connection after a hard failure) never renders anything twice.
//! Entries and the items inside a turn are only ever appended or changed in place,
//! never reordered or removed, which lets the view key them by index.

use nightshift_protocol::api::{AgentKind, Message, PermissionMode, SessionStatus, UsageTotals};
use nightshift_protocol::events::{EventBody, QuestionKind, SessionEvent, TokenUsage, TurnOutcome};
use nightshift_protocol::repo::{PullRequestInfo, RepoState};
use serde_json::Value;

use super::prompt_queue::PromptQueue;

/// One tool call of a turn, with its result once it has finished.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub call_id: String,
    pub tool: String,
    pub args: Value,
    pub result: Option<ToolResult>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub output: String,
    pub is_error: bool,
    /// Bytes of output the runner cut off before sending it.
    pub truncated_bytes: u64,
}

/// Where a question of the agent stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionState {
    /// Waiting for an answer until `expires_at` (ms since the epoch).
    Open,
    Answered {
        answer: String,
    },
    /// Nobody answered in time, or the turn ended first.
    Expired,
}

/// A question the agent asked (or a permission it requested) in a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub question_id: String,
    pub kind: QuestionKind,
    pub text: String,
    pub options: Vec<String>,
    /// When the runner stops waiting (ms since the epoch).
    pub expires_at: i64,
    pub state: QuestionState,
}

/// A retry of an LLM call the runner announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub attempt: u32,
    pub max_attempts: u32,
    pub delay_ms: u64,
    pub reason: String,
}

/// An image the agent made (a browser screenshot), served by the Worker at
/// `/api/sessions/{session}/artifacts/{artifact}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub artifact: String,
    pub width: u32,
    pub height: u32,
}

/// Something a turn produced, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnItem {
    /// Reply text; consecutive `text_delta`s grow the same item.
    Text(String),
    ToolCall(ToolCall),
    Error(String),
    Retry(Retry),
    Question(Question),
    Image(Image),
}

/// The agent settings the stream last announced (`session_updated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
}

/// How far a turn has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEnd {
    Running,
    Finished {
        outcome: TurnOutcome,
        usage: TokenUsage,
        /// How long the turn took (0 when the runner did not say).
        duration_ms: u64,
    },
    /// The runner went away mid-turn; the prompt runs again in a later turn.
    Interrupted {
        reason: String,
    },
}

/// One run of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub turn_id: Option<String>,
    pub message_id: Option<String>,
    /// The user's prompt, when the stream said which one this turn runs.
    pub prompt: Option<String>,
    pub attempt: u32,
    /// When its `turn_started` was stored (ms), to time the turn when the runner did
    /// not say how long it took.
    pub started_at: Option<i64>,
    pub items: Vec<TurnItem>,
    pub end: TurnEnd,
    /// The run of text deltas the last text item is growing from, if the turn's
    /// latest event was one of them.
    text_run: Option<TextRun>,
    /// The checkpoint kept when the turn ended (`checkpoint_saved`): the session can
    /// be rewound or forked to this turn.
    pub checkpoint: Option<String>,
    /// A later `rewound` went back past this turn: it stays shown, greyed, and the
    /// agent no longer sees it.
    pub rewound: bool,
    /// Bumped on every change to this turn, so a view can watch one number instead
    /// of comparing the whole turn.
    pub revision: u64,
}

/// Where a run of text deltas began: its first `seq` and how much of the text item
/// came before it, so the run's joined `text` can replace what the deltas built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TextRun {
    from_seq: u64,
    kept: usize,
}

impl Turn {
    pub fn is_running(&self) -> bool {
        self.end == TurnEnd::Running
    }

    /// Appends agent text that arrived at `seq`.
    fn push_text(&mut self, seq: u64, text: &str) {
        match self.items.last_mut() {
            Some(TurnItem::Text(existing)) => {
                if self.text_run.is_none() {
                    self.text_run = Some(TextRun {
                        from_seq: seq,
                        kept: existing.len(),
                    });
                }
                existing.push_str(text);
            }
            _ => {
                self.text_run = Some(TextRun {
                    from_seq: seq,
                    kept: 0,
                });
                self.items.push(TurnItem::Text(text.to_owned()));
            }
        }
        self.revision += 1;
    }

    /// Takes the joined text of the run that began at `from_seq` (the log was
    /// compacted): it replaces what that run's deltas built when this view saw some
    /// of them (a reconnect inside the run), and is appended otherwise.
    fn join_text(&mut self, from_seq: u64, text: &str) {
        if let Some(run) = self.text_run.take()
            && run.from_seq == from_seq
            && let Some(TurnItem::Text(existing)) = self.items.last_mut()
        {
            existing.truncate(run.kept);
            existing.push_str(text);
            self.revision += 1;
        } else {
            self.push_text(from_seq, text);
        }
        self.text_run = None;
    }
}

/// A session-level message that belongs to no turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub message: String,
}

/// A place in the timeline: the index of a turn or of a notice, in the order they
/// first appeared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Turn(usize),
    Notice(usize),
}

/// Everything the session view shows that comes from the event stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    last_seq: u64,
    entries: Vec<Entry>,
    turns: Vec<Turn>,
    notices: Vec<Notice>,
    status: Option<SessionStatus>,
    queue: PromptQueue,
    settings: Option<AgentSettings>,
    repo: Option<RepoState>,
    pull_request: Option<PullRequestInfo>,
    github_reconnect: Option<GithubReconnect>,
}

/// The latest `github_reconnect_required`: who must reconnect, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubReconnect {
    pub user_id: String,
    pub message: String,
    pub connect_url: String,
}

impl Timeline {
    /// The highest `seq` applied; a fresh connection asks for events after it.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Turns and notices in the order they appeared.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    pub fn turn(&self, index: usize) -> Option<&Turn> {
        self.turns.get(index)
    }

    pub fn notice(&self, index: usize) -> Option<&Notice> {
        self.notices.get(index)
    }

    /// True when a session-level notice says exactly `message`.
    pub fn has_notice(&self, message: &str) -> bool {
        self.notices.iter().any(|notice| notice.message == message)
    }

    /// The status the latest `status_changed` event named, if any arrived.
    pub fn status(&self) -> Option<SessionStatus> {
        self.status
    }

    pub fn queue(&self) -> &PromptQueue {
        &self.queue
    }

    /// The agent settings of the latest `session_updated`, if one arrived.
    pub fn settings(&self) -> Option<&AgentSettings> {
        self.settings.as_ref()
    }

    /// The repository's state of the latest `repo_updated`, if one arrived.
    pub fn repo(&self) -> Option<&RepoState> {
        self.repo.as_ref()
    }

    /// The pull request of the latest `pull_request_updated`, if one arrived.
    pub fn pull_request(&self) -> Option<&PullRequestInfo> {
        self.pull_request.as_ref()
    }

    /// The latest `github_reconnect_required`, if one arrived since the repository
    /// last reported a push.
    pub fn github_reconnect(&self) -> Option<&GithubReconnect> {
        self.github_reconnect.as_ref()
    }

    /// Usage and time of every finished turn, added up.
    pub fn usage_totals(&self) -> UsageTotals {
        let mut totals = UsageTotals::default();
        for turn in &self.turns {
            if let TurnEnd::Finished {
                usage, duration_ms, ..
            } = &turn.end
            {
                totals.add_turn(*usage, *duration_ms);
            }
        }
        totals
    }

    /// The questions still waiting for an answer, oldest first, with their turns.
    pub fn open_questions(&self) -> Vec<&Question> {
        self.turns
            .iter()
            .flat_map(|turn| turn.items.iter())
            .filter_map(|item| match item {
                TurnItem::Question(question) if question.state == QuestionState::Open => {
                    Some(question)
                }
                _ => None,
            })
            .collect()
    }

    /// True while the newest turn has neither finished nor been interrupted.
    pub fn has_running_turn(&self) -> bool {
        self.turns.last().is_some_and(Turn::is_running)
    }

    /// Applies one event. Returns false, changing nothing, for an event at or below
    /// the last `seq` applied: the stream is gapless and ordered, so that is a replay.
    pub fn apply(&mut self, event: SessionEvent) -> bool {
        if event.seq <= self.last_seq {
            return false;
        }
        self.last_seq = event.seq;
        let turn_id = event.turn_id;
        if !matches!(
            event.body,
            EventBody::TextDelta { .. } | EventBody::Text { .. }
        ) && let Some(id) = turn_id.as_deref()
            && let Some(turn) = self
                .turns
                .iter_mut()
                .rev()
                .find(|turn| turn.turn_id.as_deref() == Some(id))
        {
            turn.text_run = None;
        }
        match event.body {
            EventBody::PromptQueued {
                message_id,
                content,
                position,
            } => {
                self.queue
                    .on_queued_at(&message_id, &content, Some(position));
            }
            EventBody::PromptEdited {
                message_id,
                content,
            }
            | EventBody::PromptsMerged {
                message_id,
                content,
                ..
            } => self.queue.on_edited(&message_id, &content),
            EventBody::RepoUpdated { state } => {
                if state.pushed {
                    self.github_reconnect = None;
                }
                self.repo = Some(state);
            }
            EventBody::PullRequestUpdated { pull_request } => {
                self.pull_request = Some(pull_request);
            }
            EventBody::CheckpointSaved { checkpoint_id, .. } => {
                let turn = self.turn_for(turn_id.as_deref());
                turn.checkpoint = Some(checkpoint_id);
                turn.revision += 1;
            }
            EventBody::Rewound { rewound_turns, .. } => {
                for turn in &mut self.turns {
                    if turn
                        .turn_id
                        .as_ref()
                        .is_some_and(|id| rewound_turns.contains(id))
                    {
                        turn.rewound = true;
                        turn.revision += 1;
                    }
                }
            }
            EventBody::GithubReconnectRequired {
                user_id,
                message,
                connect_url,
            } => {
                self.github_reconnect = Some(GithubReconnect {
                    user_id,
                    message,
                    connect_url,
                });
            }
            EventBody::SessionUpdated {
                agent,
                model,
                permission_mode,
            } => {
                self.settings = Some(AgentSettings {
                    agent,
                    model,
                    permission_mode,
                });
            }
            EventBody::Retrying {
                attempt,
                max_attempts,
                delay_ms,
                reason,
            } => {
                let turn = self.turn_for(turn_id.as_deref());
                turn.items.push(TurnItem::Retry(Retry {
                    attempt,
                    max_attempts,
                    delay_ms,
                    reason,
                }));
                turn.revision += 1;
            }
            EventBody::QuestionAsked {
                question_id,
                kind,
                text,
                options,
                timeout_ms,
            } => {
                let turn = self.turn_for(turn_id.as_deref());
                turn.items.push(TurnItem::Question(Question {
                    question_id,
                    kind,
                    text,
                    options,
                    expires_at: event
                        .at
                        .saturating_add(i64::try_from(timeout_ms).unwrap_or(i64::MAX)),
                    state: QuestionState::Open,
                }));
                turn.revision += 1;
            }
            EventBody::QuestionAnswered {
                question_id,
                answer,
                ..
            } => self.close_question(&question_id, QuestionState::Answered { answer }),
            EventBody::QuestionExpired { question_id } => {
                self.close_question(&question_id, QuestionState::Expired)
            }
            EventBody::PromptCancelled { message_id } => self.queue.on_cancelled(&message_id),
            EventBody::StatusChanged { status } => self.status = Some(status),
            EventBody::TurnStarted {
                message_id,
                content,
                attempt,
            } => {
                self.queue.on_started(&message_id);
                // A `turn_started` without a turn id still begins a new turn rather
                // than adding to the previous one.
                let turn = match turn_id.as_deref() {
                    Some(turn_id) => self.turn_for(Some(turn_id)),
                    None => self.push_turn(None),
                };
                turn.message_id = Some(message_id);
                turn.prompt = Some(content);
                turn.attempt = attempt;
                turn.started_at = Some(event.at);
                turn.revision += 1;
            }
            EventBody::TurnInterrupted { message_id, reason } => {
                let turn = self.turn_for(turn_id.as_deref());
                turn.end = TurnEnd::Interrupted { reason };
                turn.revision += 1;
                let content = turn.prompt.clone().unwrap_or_default();
                self.queue.on_interrupted(&message_id, &content);
            }
            EventBody::TextDelta { text } => self
                .turn_for(turn_id.as_deref())
                .push_text(event.seq, &text),
            EventBody::Text { text, from_seq } => {
                self.turn_for(turn_id.as_deref()).join_text(from_seq, &text)
            }
            EventBody::ToolCallStarted {
                call_id,
                tool,
                args,
            } => {
                let turn = self.turn_for(turn_id.as_deref());
                turn.items.push(TurnItem::ToolCall(ToolCall {
                    call_id,
                    tool,
                    args,
                    result: None,
                }));
                turn.revision += 1;
            }
            EventBody::ToolCallFinished {
                call_id,
                output,
                is_error,
                truncated_bytes,
            } => {
                let result = ToolResult {
                    output,
                    is_error,
                    truncated_bytes,
                };
                self.finish_tool_call(turn_id.as_deref(), call_id, result);
            }
            EventBody::Image {
                artifact,
                width,
                height,
                ..
            } => {
                // The reference becomes part of a URL: only an artifact id is kept
                // (the Worker refuses anything else; the app does not rely on it).
                if nightshift_protocol::artifacts::is_artifact_id(&artifact) {
                    let turn = self.turn_for(turn_id.as_deref());
                    turn.items.push(TurnItem::Image(Image {
                        artifact,
                        width,
                        height,
                    }));
                    turn.revision += 1;
                }
            }
            // Per-call tokens: the turn's total comes with `turn_finished`.
            EventBody::StepUsage { .. } => {}
            // A spend cap stopped the turn or refuses prompts: shown like an error,
            // in the turn it stopped.
            EventBody::Error { message } | EventBody::CapReached { message, .. } => match turn_id {
                Some(turn_id) => {
                    let turn = self.turn_for(Some(&turn_id));
                    turn.items.push(TurnItem::Error(message));
                    turn.revision += 1;
                }
                None => {
                    self.entries.push(Entry::Notice(self.notices.len()));
                    self.notices.push(Notice { message });
                }
            },
            EventBody::TurnFinished {
                outcome,
                usage,
                error,
                duration_ms,
            } => {
                let turn = self.turn_for(turn_id.as_deref());
                // The runner usually reports a failure as an `error` event and then
                // repeats it in `turn_finished`; show it once.
                if let Some(error) = error {
                    let already_shown = turn
                        .items
                        .iter()
                        .any(|item| matches!(item, TurnItem::Error(shown) if *shown == error));
                    if !already_shown {
                        turn.items.push(TurnItem::Error(error));
                    }
                }
                // The session's own clock times a turn the runner did not time, as the
                // server's totals do.
                let duration_ms = match (duration_ms, turn.started_at) {
                    (0, Some(started)) => u64::try_from(event.at - started).unwrap_or(0),
                    (measured, _) => measured,
                };
                turn.end = TurnEnd::Finished {
                    outcome,
                    usage,
                    duration_ms,
                };
                // Nothing answers a question once its turn is over.
                for item in &mut turn.items {
                    if let TurnItem::Question(question) = item
                        && question.state == QuestionState::Open
                    {
                        question.state = QuestionState::Expired;
                    }
                }
                turn.revision += 1;
            }
        }
        true
    }

    /// Merges a snapshot of the session's messages into the queue.
    pub fn merge_messages(&mut self, messages: &[Message]) {
        self.queue.merge_snapshot(messages);
    }

    /// A `DELETE` of a queued prompt succeeded.
    pub fn cancel_accepted(&mut self, message_id: &str) {
        self.queue.on_cancel_accepted(message_id);
    }

    /// An answer or expiry of `question_id`, wherever it was asked.
    fn close_question(&mut self, question_id: &str, state: QuestionState) {
        for turn in self.turns.iter_mut().rev() {
            for item in &mut turn.items {
                if let TurnItem::Question(question) = item
                    && question.question_id == question_id
                {
                    question.state = state;
                    turn.revision += 1;
                    return;
                }
            }
        }
    }

    /// The turn an event belongs to: the one with its `turn_id`, else (for an event
    /// without one) the newest turn. When there is none, a turn is started for it so
    /// the event is still shown, just without its prompt.
    fn turn_for(&mut self, turn_id: Option<&str>) -> &mut Turn {
        let found = match turn_id {
            Some(turn_id) => self
                .turns
                .iter()
                .rposition(|turn| turn.turn_id.as_deref() == Some(turn_id)),
            None => self.turns.len().checked_sub(1),
        };
        match found {
            Some(index) => &mut self.turns[index],
            None => self.push_turn(turn_id),
        }
    }

    fn push_turn(&mut self, turn_id: Option<&str>) -> &mut Turn {
        self.entries.push(Entry::Turn(self.turns.len()));
        self.turns.push(Turn {
            turn_id: turn_id.map(str::to_owned),
            message_id: None,
            prompt: None,
            attempt: 1,
            started_at: None,
            items: Vec::new(),
            end: TurnEnd::Running,
            text_run: None,
            checkpoint: None,
            rewound: false,
            revision: 0,
        });
        let index = self.turns.len() - 1;
        &mut self.turns[index]
    }

    fn finish_tool_call(&mut self, turn_id: Option<&str>, call_id: String, result: ToolResult) {
        // Look in the event's own turn first, then anywhere, newest first: a result
        // must land on its call even if the stream's turn ids are inconsistent.
        let has_call = |turn: &Turn| turn.items.iter().any(|item| is_call(item, &call_id));
        let found = self
            .turns
            .iter()
            .rposition(|turn| {
                (turn_id.is_none() || turn.turn_id.as_deref() == turn_id) && has_call(turn)
            })
            .or_else(|| self.turns.iter().rposition(has_call));
        if let Some(turn) = found.map(|index| &mut self.turns[index]) {
            for item in turn.items.iter_mut().rev() {
                if let TurnItem::ToolCall(call) = item
                    && call.call_id == call_id
                {
                    call.result = Some(result);
                    turn.revision += 1;
                    return;
                }
            }
        }
        // A result for a call the stream never started: show it as its own card.
        let turn = self.turn_for(turn_id);
        turn.items.push(TurnItem::ToolCall(ToolCall {
            call_id,
            tool: "tool".to_owned(),
            args: Value::Null,
            result: Some(result),
        }));
        turn.revision += 1;
    }
}

fn is_call(item: &TurnItem, call_id: &str) -> bool {
    matches!(item, TurnItem::ToolCall(call) if call.call_id == call_id)
}

#[cfg(test)]
mod tests;
