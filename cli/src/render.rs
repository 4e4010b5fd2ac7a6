//! A session's events as readable terminal text, for `watch`: the agent's text as it
//! streams, tool calls and their results on one line each, turn boundaries, errors and
//! questions. A plain type that turns events into strings, so what a person sees is
//! tested without a terminal.
//!
//! Everything here comes from the sandbox (tool names, arguments, output, the agent's
//! text), so it is attacker-controlled: control characters are replaced before they
//! reach the terminal, where an escape sequence could rewrite the screen or the title.

use nightshift_protocol::events::{EventBody, QuestionKind, SessionEvent, TurnOutcome};
use nightshift_protocol::repo::RepoPhase;
use serde_json::Value;

/// The widest a one-line summary (a prompt, a tool's arguments or output) gets.
const SUMMARY_CHARS: usize = 100;

/// Turns events into text, remembering whether the agent's text left a line open.
#[derive(Debug, Default)]
pub struct Renderer {
    color: bool,
    /// The last thing written was agent text without a final newline.
    mid_line: bool,
    /// The run of text deltas being written: its turn, first `seq` and the bytes
    /// written of it, so a joined `text` event for a run partly written (a
    /// reconnect inside it) writes only the rest.
    text_run: Option<TextRunWritten>,
}

#[derive(Debug)]
struct TextRunWritten {
    turn_id: Option<String>,
    from_seq: u64,
    bytes: usize,
}

impl Renderer {
    pub fn new(color: bool) -> Renderer {
        Renderer {
            color,
            mid_line: false,
            text_run: None,
        }
    }

    /// The agent's text `text` starting at `seq`, or the rest of the joined run that
    /// started at `from_seq` when part of it was written already.
    fn agent_text(&mut self, event: &SessionEvent, text: &str, from_seq: Option<u64>) -> String {
        let same_turn = |run: &TextRunWritten| run.turn_id == event.turn_id;
        let unwritten = match (from_seq, self.text_run.as_ref()) {
            (Some(from_seq), Some(run)) if same_turn(run) && run.from_seq == from_seq => {
                text.get(run.bytes.min(text.len())..).unwrap_or_default()
            }
            _ => text,
        };
        match self.text_run.as_mut() {
            Some(run) if same_turn(run) && from_seq.is_none() => run.bytes += text.len(),
            _ if from_seq.is_some() => self.text_run = None,
            _ => {
                self.text_run = Some(TextRunWritten {
                    turn_id: event.turn_id.clone(),
                    from_seq: event.seq,
                    bytes: text.len(),
                })
            }
        }
        let text = clean(unwritten, true);
        if !text.is_empty() {
            self.mid_line = !text.ends_with('\n');
        }
        text
    }

    /// The text to write for `event`.
    pub fn event(&mut self, event: &SessionEvent) -> String {
        if !matches!(
            event.body,
            EventBody::TextDelta { .. } | EventBody::Text { .. }
        ) && self
            .text_run
            .as_ref()
            .is_some_and(|run| run.turn_id == event.turn_id)
        {
            self.text_run = None;
        }
        match &event.body {
            EventBody::TextDelta { text } => self.agent_text(event, text, None),
            EventBody::Text { text, from_seq } => self.agent_text(event, text, Some(*from_seq)),
            EventBody::ToolCallStarted { tool, args, .. } => self.line(
                Style::Tool,
                &format!(
                    "  $ {}{}",
                    clean(tool, false),
                    args_summary(args)
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default()
                ),
            ),
            EventBody::ToolCallFinished {
                output,
                is_error,
                truncated_bytes,
                ..
            } => {
                let mut text = format!(
                    "    {} {}",
                    if *is_error { "failed:" } else { "->" },
                    output_summary(output)
                );
                if *truncated_bytes > 0 {
                    text.push_str(&format!(" ({truncated_bytes} bytes cut)"));
                }
                let style = if *is_error { Style::Error } else { Style::Dim };
                self.line(style, &text)
            }
            EventBody::Image {
                artifact,
                width,
                height,
                ..
            } => self.line(
                Style::Dim,
                &format!(
                    "    [image {width}x{height}, artifact {}]",
                    clean(artifact, false)
                ),
            ),
            EventBody::Error { message } => {
                self.line(Style::Error, &format!("  error: {}", clean(message, false)))
            }
            EventBody::CapReached { message, .. } => {
                self.line(Style::Error, &format!("! {}", clean(message, false)))
            }
            // Per-call tokens: the turn's total comes with `turn_finished`.
            EventBody::StepUsage { .. } => String::new(),
            EventBody::TurnFinished {
                outcome,
                usage,
                error,
                duration_ms,
            } => {
                let mut text = match outcome {
                    TurnOutcome::Done => "= done".to_string(),
                    TurnOutcome::Failed => "= failed".to_string(),
                    TurnOutcome::Aborted => "= aborted".to_string(),
                };
                text.push_str(&format!(
                    " in {:.1} s, {} in / {} out tokens",
                    *duration_ms as f64 / 1000.0,
                    usage.input_tokens,
                    usage.output_tokens
                ));
                if let Some(error) = error {
                    text.push_str(&format!(": {}", clean(error, false)));
                }
                let style = match outcome {
                    TurnOutcome::Done => Style::Bold,
                    _ => Style::Error,
                };
                self.line(style, &text)
            }
            EventBody::Retrying {
                attempt,
                max_attempts,
                delay_ms,
                reason,
            } => {
                let of = if *max_attempts > 0 {
                    format!("/{max_attempts}")
                } else {
                    String::new()
                };
                self.line(
                    Style::Dim,
                    &format!(
                        "  retrying (attempt {attempt}{of} failed, next in {:.1} s): {}",
                        *delay_ms as f64 / 1000.0,
                        clean(reason, false)
                    ),
                )
            }
            EventBody::QuestionAsked {
                kind,
                text,
                options,
                ..
            } => {
                let what = match kind {
                    QuestionKind::Question => "question",
                    QuestionKind::Permission => "permission",
                };
                let mut line = format!("? {what}: {}", clean(text, false));
                if !options.is_empty() {
                    let numbered: Vec<String> = options
                        .iter()
                        .enumerate()
                        .map(|(i, option)| format!("{}) {}", i + 1, clean(option, false)))
                        .collect();
                    line.push_str(&format!("  [{}]", numbered.join("  ")));
                }
                self.line(Style::Question, &line)
            }
            EventBody::QuestionExpired { .. } => {
                self.line(Style::Dim, "  (the question expired unanswered)")
            }
            EventBody::QuestionAnswered { answer, .. } => {
                self.line(Style::Dim, &format!("  answered: {}", clean(answer, false)))
            }
            EventBody::PromptQueued {
                content, position, ..
            } => self.line(
                Style::Dim,
                &format!("+ queued (position {position}): {}", summary(content)),
            ),
            EventBody::PromptCancelled { message_id } => self.line(
                Style::Dim,
                &format!("- prompt {} cancelled", clean(message_id, false)),
            ),
            EventBody::TurnStarted {
                content, attempt, ..
            } => {
                let again = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                let text = format!("\n> {}{again}", summary(content));
                self.line(Style::Bold, &text)
            }
            EventBody::TurnInterrupted { reason, .. } => self.line(
                Style::Error,
                &format!("! turn interrupted: {}", clean(reason, false)),
            ),
            EventBody::StatusChanged { status } => {
                self.line(Style::Dim, &format!("  [{}]", status.as_str()))
            }
            EventBody::PromptEdited { content, .. } => self.line(
                Style::Dim,
                &format!("~ prompt edited: {}", summary(content)),
            ),
            EventBody::PromptsMerged {
                merged_ids,
                content,
                ..
            } => self.line(
                Style::Dim,
                &format!(
                    "+ {} prompts merged: {}",
                    merged_ids.len() + 1,
                    summary(content)
                ),
            ),
            EventBody::SessionUpdated {
                agent,
                model,
                permission_mode,
            } => self.line(
                Style::Dim,
                &format!(
                    "  [agent {}, model {}, permissions {}]",
                    agent.as_str(),
                    model
                        .as_deref()
                        .map(|m| clean(m, false))
                        .unwrap_or_else(|| "default".into()),
                    permission_mode.as_str()
                ),
            ),
            EventBody::RepoUpdated { state } => self.line(
                Style::Dim,
                &format!(
                    "  [repository: {} on {}, {} ahead, {} files changed{}]",
                    match state.phase {
                        RepoPhase::Cloning => "cloning",
                        RepoPhase::Ready => "ready",
                        RepoPhase::Failed => "failed",
                    },
                    clean(&state.branch, false),
                    state.ahead,
                    state.files.len() as u64 + u64::from(state.files_omitted),
                    if state.pushed { ", pushed" } else { "" }
                ),
            ),
            EventBody::PullRequestUpdated { pull_request } => self.line(
                Style::Dim,
                &format!(
                    "  [pull request #{} ({:?}): {}]",
                    pull_request.number,
                    pull_request.state,
                    clean(&pull_request.url, false)
                ),
            ),
            EventBody::CheckpointSaved {
                files, bytes_added, ..
            } => self.line(
                Style::Dim,
                &format!("  [checkpoint: {files} files, {bytes_added} new bytes]"),
            ),
            EventBody::Rewound { rewound_turns, .. } => self.line(
                Style::Dim,
                &format!(
                    "  [rewound: {} later turn(s) set aside]",
                    rewound_turns.len()
                ),
            ),
            EventBody::GithubReconnectRequired {
                message,
                connect_url,
                ..
            } => self.line(
                Style::Error,
                &format!(
                    "GitHub needs reconnecting: {} ({})",
                    clean(message, false),
                    clean(connect_url, false)
                ),
            ),
        }
    }

    /// A note of the CLI's own (reconnecting, a question answered), as a line.
    pub fn note(&mut self, text: &str) -> String {
        self.line(Style::Dim, text)
    }

    /// Ends an open line of agent text, if any (before exiting).
    pub fn finish(&mut self) -> String {
        if std::mem::take(&mut self.mid_line) {
            "\n".to_string()
        } else {
            String::new()
        }
    }

    /// A line of its own, after ending any open line of agent text.
    fn line(&mut self, style: Style, text: &str) -> String {
        let mut out = self.finish();
        if self.color {
            out.push_str(style.code());
            out.push_str(text);
            out.push_str("\x1b[0m");
        } else {
            out.push_str(text);
        }
        out.push('\n');
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum Style {
    Bold,
    Dim,
    Error,
    Tool,
    Question,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "\x1b[1m",
            Style::Dim => "\x1b[2m",
            Style::Error => "\x1b[31m",
            Style::Tool => "\x1b[36m",
            Style::Question => "\x1b[1;33m",
        }
    }
}

/// `text` without control characters (an ESC could drive the terminal); newlines and
/// tabs are kept only where `multiline`.
pub fn clean(text: &str, multiline: bool) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\n' if multiline => Some('\n'),
            '\t' if multiline => Some('\t'),
            '\n' | '\t' | '\r' => Some(' '),
            c if c.is_control() => None,
            // Bidirectional overrides could make shown text differ from what it is.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => None,
            c => Some(c),
        })
        .collect()
}

/// The first line of `text`, cut to [`SUMMARY_CHARS`].
pub fn summary(text: &str) -> String {
    let first = text.trim().lines().next().unwrap_or("");
    let more = text.trim().lines().nth(1).is_some();
    let mut out = truncate(&clean(first, false), SUMMARY_CHARS);
    if more && !out.ends_with('…') {
        out.push_str(" …");
    }
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A tool call's arguments in one line: the command or path when there is one (what
/// a person looks for), else the compact JSON.
fn args_summary(args: &Value) -> Option<String> {
    for key in [
        "command",
        "cmd",
        "path",
        "file_path",
        "pattern",
        "url",
        "question",
    ] {
        if let Some(value) = args.get(key).and_then(Value::as_str) {
            return Some(summary(value));
        }
    }
    match args {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        other => Some(truncate(&clean(&other.to_string(), false), SUMMARY_CHARS)),
    }
}

/// A tool's output in one line: its first non-blank line, and how many more there are.
fn output_summary(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.as_slice() {
        [] => "(no output)".to_string(),
        [only] => truncate(&clean(only.trim(), false), SUMMARY_CHARS),
        [first, rest @ ..] => format!(
            "{} (+{} lines)",
            truncate(&clean(first.trim(), false), SUMMARY_CHARS),
            rest.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::api::SessionStatus;
    use nightshift_protocol::events::TokenUsage;
    use serde_json::json;

    use super::*;

    fn event(body: EventBody) -> SessionEvent {
        SessionEvent {
            seq: 1,
            turn_id: Some("t".into()),
            at: 0,
            body,
        }
    }

    fn render(bodies: Vec<EventBody>) -> String {
        let mut renderer = Renderer::new(false);
        let mut out: String = bodies
            .into_iter()
            .map(|body| renderer.event(&event(body)))
            .collect();
        out.push_str(&renderer.finish());
        out
    }

    #[test]
    fn joined_text_writes_only_what_a_reconnect_inside_its_run_missed() {
        let mut renderer = Renderer::new(false);
        let at = |seq: u64, body: EventBody| SessionEvent {
            seq,
            turn_id: Some("t".into()),
            at: 0,
            body,
        };
        let mut out = String::new();
        out += &renderer.event(&at(3, EventBody::TextDelta { text: "Hel".into() }));
        out += &renderer.event(&at(4, EventBody::TextDelta { text: "lo ".into() }));
        // The stream dropped after seq 4; the turn ended and was compacted.
        out += &renderer.event(&at(
            6,
            EventBody::Text {
                text: "Hello world".into(),
                from_seq: 3,
            },
        ));
        assert_eq!(out, "Hello world");
        // A reader that saw none of the run writes it whole, once.
        let mut fresh = Renderer::new(false);
        let whole = fresh.event(&at(
            6,
            EventBody::Text {
                text: "Hello world".into(),
                from_seq: 3,
            },
        ));
        assert_eq!(whole, "Hello world");
    }

    #[test]
    fn a_turn_reads_as_a_transcript() {
        let out = render(vec![
            EventBody::TurnStarted {
                message_id: "m".into(),
                content: "write a note\nwith details".into(),
                attempt: 1,
            },
            EventBody::TextDelta {
                text: "I will ".into(),
            },
            EventBody::TextDelta {
                text: "write it.".into(),
            },
            EventBody::ToolCallStarted {
                call_id: "c".into(),
                tool: "bash".into(),
                args: json!({"command": "echo hi > note.txt"}),
            },
            EventBody::ToolCallFinished {
                call_id: "c".into(),
                output: "line one\nline two\n\nline three".into(),
                is_error: false,
                truncated_bytes: 0,
            },
            EventBody::TextDelta {
                text: "Done.".into(),
            },
            EventBody::TurnFinished {
                outcome: TurnOutcome::Done,
                usage: TokenUsage {
                    input_tokens: 12,
                    output_tokens: 5,
                    ..TokenUsage::default()
                },
                error: None,
                duration_ms: 1500,
            },
        ]);
        assert_eq!(
            out,
            "\n> write a note …\nI will write it.\n  $ bash echo hi > note.txt\n    -> line one (+2 lines)\nDone.\n= done in 1.5 s, 12 in / 5 out tokens\n"
        );
    }

    #[test]
    fn questions_errors_and_status_are_lines_of_their_own() {
        let out = render(vec![
            EventBody::TextDelta {
                text: "Let me ask".into(),
            },
            EventBody::QuestionAsked {
                question_id: "q".into(),
                kind: QuestionKind::Question,
                text: "Which colour?".into(),
                options: vec!["red".into(), "blue".into()],
                timeout_ms: 1000,
            },
            EventBody::Error {
                message: "the LLM said no".into(),
            },
            EventBody::StatusChanged {
                status: SessionStatus::Idle,
            },
        ]);
        assert_eq!(
            out,
            "Let me ask\n? question: Which colour?  [1) red  2) blue]\n  error: the LLM said no\n  [idle]\n"
        );
    }

    #[test]
    fn sandbox_text_cannot_drive_the_terminal() {
        let out = render(vec![
            EventBody::TextDelta {
                text: "a\x1b]0;owned\x07b\n".into(),
            },
            EventBody::ToolCallStarted {
                call_id: "c".into(),
                tool: "ba\x1b[2Jsh".into(),
                args: json!({"path": "x\u{202e}y"}),
            },
        ]);
        assert!(!out.contains('\x1b'), "{out:?}");
        assert!(!out.contains('\u{202e}'), "{out:?}");
        assert_eq!(out, "a]0;ownedb\n  $ ba[2Jsh xy\n");
    }

    #[test]
    fn colour_wraps_lines_but_not_agent_text() {
        let mut renderer = Renderer::new(true);
        let text = renderer.event(&event(EventBody::TextDelta { text: "hi".into() }));
        assert_eq!(text, "hi");
        let line = renderer.event(&event(EventBody::Error {
            message: "x".into(),
        }));
        assert_eq!(line, "\n\x1b[31m  error: x\x1b[0m\n");
    }

    #[test]
    fn long_arguments_are_cut() {
        let long = "x".repeat(500);
        let summary = args_summary(&json!({"other": long})).unwrap();
        assert_eq!(summary.chars().count(), SUMMARY_CHARS);
        assert!(summary.ends_with('…'));
        assert_eq!(args_summary(&json!({})), None);
        assert_eq!(output_summary("\n\n"), "(no output)");
    }
}
