//! `watch`: a session's events, live, until Ctrl-C.
//!
//! Reads `GET /api/sessions/{id}/events` and prints each event as it comes (readable
//! text, or one JSON object a line with `--json`). A stream that ends (the server
//! closes every stream at its maximum age), drops, or stays silent past
//! [`IDLE_TIMEOUT`] (the server sends a keep-alive every 15 s) is reopened with
//! `Last-Event-ID`, so nothing is missed and nothing is shown twice. On a terminal,
//! a question the agent asks is prompted for inline and the typed reply is posted as
//! its answer. While it watches, it renews its presence lease every [`HEARTBEAT`]
//! (as the app does), so the people in the session see it among the watchers, and
//! gives the lease up when it stops. Ctrl-C only closes the stream: the session, its
//! turn and its queue are not touched.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use nightshift_protocol::events::SessionEvent;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Context;
use crate::error::{CliError, CliResult};
use crate::follow::{Ending, PromptFollower};
use crate::questions::{Questions, parse_answer};
use crate::render::{Renderer, clean};
use crate::sse::{SseItem, SseParser};
use crate::{resolve, terminal};

/// Silence (not even a keep-alive) after which the stream is taken as dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// How long events must pause before an open question is prompted for: a replay
/// streams a question and its answer back to back, and only a question still open
/// once the stream is quiet is worth asking.
const QUESTION_SETTLE: Duration = Duration::from_millis(400);
/// Reconnection attempts in a row without receiving anything, before giving up.
const MAX_FAILURES: u32 = 12;
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often a watch renews its presence lease: well inside the server's default
/// lease of 35 s, so one late heartbeat does not drop the watcher from the list.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long giving the lease up may hold the exit.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a watch goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// Until Ctrl-C.
    Forever,
    /// Until the turn that runs this prompt ends (`send --wait`, `new --wait`),
    /// showing only what comes from that prompt on.
    Prompt(String),
}

/// What a watch knows between connections.
struct Watch<'a> {
    context: &'a Context,
    session_id: String,
    /// The last event shown: where a new connection resumes.
    last_seq: Option<u64>,
    renderer: Renderer,
    questions: Questions,
    /// When to prompt for the oldest open question, once events pause.
    ask_at: Option<Instant>,
    /// The question whose prompt is on screen.
    asked: Option<String>,
    interactive: bool,
    /// With [`Follow::Prompt`]: where that prompt is.
    follower: Option<PromptFollower>,
}

/// How a stream ended.
enum StreamEnd {
    /// Closed, dropped or silent; `received` tells whether anything came first.
    Closed { received: bool },
    /// The followed prompt's turn ended (or the prompt was cancelled).
    Finished(CliResult<()>),
}

pub async fn watch(context: &Context, argument: &str, after: u64, follow: Follow) -> CliResult<()> {
    let session_id = resolve::session_id(&context.client, argument).await?;
    let heartbeat = tokio::spawn(keep_presence(context.client.clone(), session_id.clone()));
    let outcome = watch_session(context, session_id.clone(), after, follow).await;
    heartbeat.abort();
    // Best effort: a lease not given up still ends on its own when it expires.
    let _ = tokio::time::timeout(LEAVE_TIMEOUT, context.client.leave_presence(&session_id)).await;
    outcome
}

/// Renews the presence lease every [`HEARTBEAT`] until aborted. A refused or failed
/// heartbeat is not worth stopping a watch for: the stream itself says when access
/// is gone.
async fn keep_presence(client: crate::client::Client, session_id: String) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    loop {
        ticks.tick().await;
        let _ = client.presence_heartbeat(&session_id).await;
    }
}

async fn watch_session(
    context: &Context,
    session_id: String,
    after: u64,
    follow: Follow,
) -> CliResult<()> {
    let interactive = !context.json && terminal::stdin_is_terminal();
    let mut watch = Watch {
        context,
        session_id,
        last_seq: (after > 0).then_some(after),
        renderer: Renderer::new(!context.json && terminal::use_color()),
        questions: Questions::default(),
        ask_at: None,
        asked: None,
        interactive,
        follower: match follow {
            Follow::Forever => None,
            Follow::Prompt(prompt) => Some(PromptFollower::new(prompt)),
        },
    };
    let mut replies = interactive.then(read_lines);
    // Registered before anything is read, so Ctrl-C never kills the process halfway
    // through a line of output.
    let mut ctrl_c = signal(SignalKind::interrupt())
        .map_err(|error| CliError::Local(format!("cannot handle Ctrl-C: {error}")))?;
    if !context.json {
        let note = format!(
            "Watching {} (Ctrl-C stops watching; the session goes on).",
            context.client.session_url(&watch.session_id)
        );
        let text = watch.renderer.note(&note);
        watch.write(&text);
    }

    let mut failures = 0u32;
    loop {
        let opened = tokio::select! {
            _ = ctrl_c.recv() => None,
            opened = context.client.open_events(&watch.session_id, watch.last_seq) => Some(opened),
        };
        let Some(opened) = opened else {
            return watch.interrupted();
        };
        let received = match opened {
            Ok(response) => {
                let received = tokio::select! {
                    _ = ctrl_c.recv() => None,
                    received = watch.read_stream(response, &mut replies) => Some(received),
                };
                match received {
                    Some(end) => match end? {
                        StreamEnd::Closed { received } => received,
                        StreamEnd::Finished(outcome) => {
                            watch.end_line();
                            return outcome;
                        }
                    },
                    None => return watch.interrupted(),
                }
            }
            Err(error) if retryable(&error) => {
                watch.notice(&format!("cannot open the stream: {error}"));
                false
            }
            Err(error) => return Err(error),
        };
        failures = if received { 0 } else { failures + 1 };
        if failures >= MAX_FAILURES {
            return Err(CliError::Transport(format!(
                "the event stream of {} failed {failures} times in a row; giving up",
                watch.session_id
            )));
        }
        let pause = backoff(failures);
        if failures > 0 {
            watch.notice(&format!("reconnecting in {:.1} s", pause.as_secs_f64()));
        }
        let interrupted = tokio::select! {
            _ = ctrl_c.recv() => true,
            _ = tokio::time::sleep(pause) => false,
        };
        if interrupted {
            return watch.interrupted();
        }
    }
}

impl Watch<'_> {
    /// Reads one connection until it ends, drops or goes silent. Answers whether
    /// anything at all came (a keep-alive counts), which tells a stream that works
    /// but was closed from one that keeps failing.
    async fn read_stream(
        &mut self,
        response: reqwest::Response,
        replies: &mut Option<mpsc::UnboundedReceiver<String>>,
    ) -> CliResult<StreamEnd> {
        let mut body = response.bytes_stream().boxed();
        let mut parser = SseParser::default();
        let mut received = false;
        loop {
            let ask_at = self.ask_at;
            tokio::select! {
                chunk = tokio::time::timeout(IDLE_TIMEOUT, body.next()) => match chunk {
                    Err(_) => {
                        self.notice(&format!(
                            "nothing received for {} s", IDLE_TIMEOUT.as_secs()
                        ));
                        return Ok(StreamEnd::Closed { received });
                    }
                    // The server closed the stream (its maximum age): resume.
                    Ok(None) => return Ok(StreamEnd::Closed { received }),
                    Ok(Some(Err(error))) => {
                        self.notice(&format!("the stream dropped: {error}"));
                        return Ok(StreamEnd::Closed { received });
                    }
                    Ok(Some(Ok(bytes))) => {
                        received = true;
                        for item in parser.push(&bytes) {
                            if let Some(outcome) = self.item(item)? {
                                return Ok(StreamEnd::Finished(outcome));
                            }
                        }
                    }
                },
                line = next_line(replies) => match line {
                    Some(line) => self.reply(&line).await?,
                    // Standard input ended: nothing more can be answered.
                    None => *replies = None,
                },
                () = sleep_until(ask_at) => self.prompt_question(),
            }
        }
    }

    /// Shows one item; answers the outcome when the followed prompt's turn ended.
    fn item(&mut self, item: SseItem) -> CliResult<Option<CliResult<()>>> {
        let SseItem::Message { id, data } = item else {
            return Ok(None);
        };
        // Frames without an id are not events of the log (who is watching).
        let Some(seq) = id.and_then(|id| id.trim().parse::<u64>().ok()) else {
            return Ok(None);
        };
        if self.last_seq.is_some_and(|last| seq <= last) {
            return Ok(None);
        }
        self.last_seq = Some(seq);
        let value: serde_json::Value = serde_json::from_str(&data)
            .map_err(|error| CliError::Transport(format!("event {seq} is not JSON: {error}")))?;
        let event = serde_json::from_value::<SessionEvent>(value.clone()).ok();
        let ended = match (&mut self.follower, &event) {
            (Some(follower), Some(event)) => follower.observe(event).map(outcome),
            _ => None,
        };
        if let Some(follower) = &self.follower
            && !follower.shows(value["turn_id"].as_str())
        {
            return Ok(ended);
        }
        if self.context.json {
            // Printed as received (compacted to one line), so a kind of event this
            // build does not know still reaches the script.
            self.write(&format!("{value}\n"));
            return Ok(ended);
        }
        let Some(event) = event else {
            // A kind of event newer than this build: nothing to show for it.
            return Ok(ended);
        };
        let text = self.renderer.event(&event);
        self.write(&text);
        self.questions.observe(&event);
        if let Some(asked) = &self.asked
            && !self.questions.is_open(asked)
        {
            self.asked = None;
        }
        if self.interactive && self.questions.oldest().is_some() && self.asked.is_none() {
            self.ask_at = Some(Instant::now() + QUESTION_SETTLE);
        }
        Ok(ended)
    }

    fn prompt_question(&mut self) {
        self.ask_at = None;
        let Some(question) = self.questions.oldest() else {
            return;
        };
        self.asked = Some(question.question_id.clone());
        let hint = if question.options.is_empty() {
            "type your answer and press Enter"
        } else {
            "type a number or an answer and press Enter"
        };
        let text = self.renderer.note(&format!(
            "  answer \"{}\": {hint}",
            clean(&question.text, false)
        ));
        self.write(&text);
    }

    async fn reply(&mut self, line: &str) -> CliResult<()> {
        let Some(question) = self.questions.oldest().cloned() else {
            if !line.trim().is_empty() {
                let text = self
                    .renderer
                    .note("  (no question is waiting for an answer)");
                self.write(&text);
            }
            return Ok(());
        };
        let answer = match parse_answer(&question, line) {
            Ok(answer) => answer,
            Err(problem) => {
                let text = self.renderer.note(&format!("  {problem}"));
                self.write(&text);
                return Ok(());
            }
        };
        match self
            .context
            .client
            .answer(&self.session_id, &question.question_id, &answer)
            .await
        {
            // The stream shows the answer as `question_answered`.
            Ok(_) => {
                self.questions.close(&question.question_id);
                self.asked = None;
                if self.questions.oldest().is_some() {
                    self.ask_at = Some(Instant::now() + QUESTION_SETTLE);
                }
            }
            Err(CliError::Server { status: 409, .. }) => {
                self.questions.close(&question.question_id);
                self.asked = None;
                let text = self
                    .renderer
                    .note("  that question was already answered or has expired");
                self.write(&text);
            }
            // Without the right to answer, or without the token, nothing else works.
            Err(
                error @ CliError::Server {
                    status: 401 | 403, ..
                },
            ) => return Err(error),
            Err(error) => {
                let text = self
                    .renderer
                    .note(&format!("  the answer was not sent: {error}"));
                self.write(&text);
            }
        }
        Ok(())
    }

    /// Ends an open line of agent text.
    fn end_line(&mut self) {
        let text = self.renderer.finish();
        self.write(&text);
    }

    /// Ctrl-C: the session is left as it is. Stopping `watch` is how it ends (exit
    /// 0); stopping `--wait` before the turn ended is not a success (exit 130).
    fn interrupted(&mut self) -> CliResult<()> {
        self.end_line();
        match self.follower {
            None => Ok(()),
            Some(_) => Err(CliError::Interrupted),
        }
    }

    /// A note about the stream itself: in the transcript for people, on standard
    /// error with `--json` (standard output stays one event a line).
    fn notice(&mut self, text: &str) {
        if self.context.json {
            eprintln!("nightshift: {text}");
        } else {
            let text = self.renderer.note(&format!("  ({text})"));
            self.write(&text);
        }
    }

    fn write(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`watch | head`) is not worth a panic.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }
}

/// The exit a followed prompt's ending makes.
fn outcome(ending: Ending) -> CliResult<()> {
    match ending {
        Ending::Done => Ok(()),
        Ending::Failed(error) => Err(CliError::TurnEnded(format!(
            "the turn failed{}",
            error.map(|e| format!(": {e}")).unwrap_or_default()
        ))),
        Ending::Aborted => Err(CliError::TurnEnded("the turn was aborted".into())),
        Ending::Cancelled => Err(CliError::TurnEnded(
            "the prompt was cancelled before it ran".into(),
        )),
    }
}

/// Refusals worth retrying: the server could not be reached, is overloaded, or the
/// caller holds too many streams for now.
fn retryable(error: &CliError) -> bool {
    match error {
        CliError::Transport(_) => true,
        CliError::Server { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// The pause before reconnecting after `failures` failed attempts in a row.
fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::from_millis(100);
    }
    let doubled = Duration::from_millis(500).saturating_mul(1 << failures.min(8));
    doubled.min(MAX_BACKOFF)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_line(replies: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match replies {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Standard input's lines, read on a thread of their own (a blocking read cannot be
/// cancelled; the thread ends with the process).
fn read_lines() -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnecting_backs_off_to_a_ceiling() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), MAX_BACKOFF);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn only_passing_failures_are_retried() {
        let server = |status| CliError::Server {
            status,
            code: "x".into(),
            message: "m".into(),
        };
        assert!(retryable(&CliError::Transport("down".into())));
        assert!(retryable(&server(503)));
        assert!(retryable(&server(429)));
        assert!(!retryable(&server(401)));
        assert!(!retryable(&server(404)));
    }
}
