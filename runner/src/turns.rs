//! The turn controller: turns the `prompt` and `abort` frames the link receives into
//! agent turns, one at a time, and guarantees that every turn it accepts ends with
//! exactly one `turn_finished` event.
//!
//! - A prompt while another turn runs is a protocol error (the `SessionAgent` sends
//!   one prompt at a time): it is logged and the new turn is finished as failed at
//!   once, with an error event; the running turn is not disturbed. A prompt for the
//!   turn already running (a resend) is ignored. A prompt that arrives while a turn
//!   already told to abort is still winding down waits for it (up to a grace period)
//!   instead: the `SessionAgent` may hold the turn ended before the runner does.
//! - A prompt without an LLM configuration fails with an error event saying what to
//!   set, without starting the agent.
//! - An abort cancels the running turn; the agent stops (killing any command) and the
//!   turn finishes as aborted.
//! - An answer goes to the question waiting for it (see [`crate::agent::questions`]).
//! - Every `turn_finished` carries how long the turn ran, measured here.
//! - In a session with a repository, a turn first waits for the clone and makes the
//!   prompting user (`prompt.author`) the author of its commits; a `push` frame
//!   pushes the session's branch ([`crate::repo`]).
//! - On shutdown the running turn is stopped but not finished: the runner is going
//!   away, and the `SessionAgent` treats its turn as interrupted and runs it again.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use nightshift_protocol::events::{EventBody, TokenUsage, TurnOutcome};
use nightshift_protocol::runner_link::SessionFrame;
use tokio::sync::{Mutex, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::agent::{
    Agent, DEFAULT_QUESTION_TIMEOUT, QuestionBroker, TurnEnd, TurnEvents, TurnInput,
};
use crate::link::EventQueue;
use crate::repo::RepoHandle;

/// What a runner says when the `SessionAgent` has no LLM to offer.
pub const NO_LLM_MESSAGE: &str = "No LLM is configured. Set LLM_BASE_URL, LLM_MODEL and LLM_API_KEY (any \
OpenAI-compatible endpoint) or ANTHROPIC_API_KEY in .env, then restart `make dev`.";

/// How long shutdown waits for a stopped turn to clean up (kill its commands).
const STOP_GRACE: Duration = Duration::from_secs(5);

struct ActiveTurn {
    turn_id: String,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

pub struct TurnController {
    agent: Arc<Mutex<Box<dyn Agent>>>,
    events: EventQueue,
    /// The running turn's id, for the link's `hello`.
    active_turn: watch::Sender<Option<String>>,
    active: Option<ActiveTurn>,
    finished_sender: mpsc::UnboundedSender<String>,
    finished: mpsc::UnboundedReceiver<String>,
    questions: Arc<QuestionBroker>,
    question_timeout: Duration,
    repo: Option<RepoHandle>,
}

impl TurnController {
    pub fn new(
        agent: Box<dyn Agent>,
        events: EventQueue,
        active_turn: watch::Sender<Option<String>>,
    ) -> TurnController {
        let (finished_sender, finished) = mpsc::unbounded_channel();
        TurnController {
            agent: Arc::new(Mutex::new(agent)),
            events,
            active_turn,
            active: None,
            finished_sender,
            finished,
            questions: Arc::new(QuestionBroker::new()),
            question_timeout: DEFAULT_QUESTION_TIMEOUT,
            repo: None,
        }
    }

    /// The session's repository, prepared before each turn.
    pub fn with_repo(mut self, repo: RepoHandle) -> TurnController {
        self.repo = Some(repo);
        self
    }

    /// How long the agent's questions wait for an answer.
    pub fn with_question_timeout(mut self, timeout: Duration) -> TurnController {
        self.question_timeout = timeout;
        self
    }

    /// Handles frames until `shutdown`, or until the link is gone.
    pub async fn run(
        mut self,
        mut frames: mpsc::Receiver<SessionFrame>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                frame = frames.recv() => match frame {
                    Some(frame) => self.handle(frame, &shutdown).await,
                    None => break,
                },
                Some(turn_id) = self.finished.recv() => {
                    if self.active.as_ref().is_some_and(|active| active.turn_id == turn_id) {
                        self.active = None;
                        self.active_turn.send_replace(None);
                    }
                }
            }
        }
        if let Some(active) = self.active.take() {
            tracing::info!(turn_id = %active.turn_id, "stopping the running turn");
            active.cancel.cancel();
            if tokio::time::timeout(STOP_GRACE, active.task).await.is_err() {
                tracing::warn!("the turn did not stop in time");
            }
        }
    }

    async fn handle(&mut self, frame: SessionFrame, shutdown: &CancellationToken) {
        match frame {
            SessionFrame::Prompt {
                turn_id,
                message_id,
                content,
                llm,
                agent,
                model,
                permission_mode,
                author,
            } => {
                if self
                    .active
                    .as_ref()
                    .is_some_and(|active| active.turn_id != turn_id && active.cancel.is_cancelled())
                {
                    self.wind_down_aborted().await;
                }
                if let Some(active) = &self.active {
                    if active.turn_id == turn_id {
                        tracing::info!(%turn_id, "ignoring a repeated prompt for the running turn");
                        return;
                    }
                    let message = format!(
                        "The runner was still working on turn {} when turn {turn_id} arrived; turns run one at a time.",
                        active.turn_id
                    );
                    tracing::error!(running = %active.turn_id, %turn_id, "protocol error: prompt while busy");
                    self.fail_at_once(&turn_id, message).await;
                    return;
                }
                let Some(mut llm) = llm else {
                    tracing::warn!(%turn_id, "prompt without an LLM configuration");
                    self.fail_at_once(&turn_id, NO_LLM_MESSAGE.to_string())
                        .await;
                    return;
                };
                if let Some(model) = model.filter(|model| !model.trim().is_empty()) {
                    llm.model = model;
                }
                tracing::info!(%turn_id, %message_id, model = %llm.model, agent = agent.as_str(), "turn started");
                self.start(
                    TurnInput {
                        turn_id,
                        message_id,
                        content,
                        llm,
                        agent,
                        permission_mode,
                    },
                    author,
                    shutdown,
                );
            }
            SessionFrame::Abort { turn_id } => match &self.active {
                Some(active) if active.turn_id == turn_id => {
                    tracing::info!(%turn_id, "aborting the turn");
                    active.cancel.cancel();
                }
                _ => {
                    tracing::info!(%turn_id, "abort for a turn that is not running; nothing to do")
                }
            },
            // The link handles these itself.
            SessionFrame::Answer {
                turn_id,
                question_id,
                answer,
            } => {
                if self.questions.answer(&question_id, answer) {
                    tracing::info!(%turn_id, %question_id, "question answered");
                } else {
                    tracing::info!(%turn_id, %question_id, "answer for a question that is not waiting; ignored");
                }
            }
            SessionFrame::Push => match &self.repo {
                Some(repo) => {
                    let repo = repo.clone();
                    // The answer is the `repo` frame the push leads to.
                    tokio::spawn(async move {
                        if let Err(error) = repo.push().await {
                            tracing::warn!(%error, "the push asked for failed");
                        }
                    });
                }
                None => tracing::info!("push asked for, but this runner has no repository"),
            },
            // The link handles these itself.
            SessionFrame::Welcome { .. } | SessionFrame::Ack { .. } | SessionFrame::Pong { .. } => {
            }
        }
    }

    /// Waits (up to [`STOP_GRACE`]) for the running turn, already told to abort, to
    /// end. The `SessionAgent` sends the next prompt once it holds the turn ended,
    /// which it may do before the runner has wound it down: after an abort it stopped
    /// waiting for, or right behind the abort frame in the same read.
    async fn wind_down_aborted(&mut self) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let turn_id = active.turn_id.clone();
        match tokio::time::timeout(STOP_GRACE, &mut active.task).await {
            Ok(_) => {
                tracing::info!(%turn_id, "the aborted turn wound down before the next prompt");
                self.active = None;
                self.active_turn.send_replace(None);
            }
            Err(_) => tracing::warn!(%turn_id, "the aborted turn did not stop in time"),
        }
    }

    /// Finishes a turn that never started: an error event, then `turn_finished`.
    async fn fail_at_once(&self, turn_id: &str, message: String) {
        self.events
            .push(
                turn_id,
                EventBody::Error {
                    message: message.clone(),
                },
            )
            .await;
        let finished = EventBody::TurnFinished {
            outcome: TurnOutcome::Failed,
            usage: TokenUsage::default(),
            error: Some(message),
            duration_ms: 0,
        };
        self.events.push(turn_id, finished).await;
    }

    fn start(
        &mut self,
        input: TurnInput,
        author: Option<nightshift_protocol::repo::GitAuthor>,
        shutdown: &CancellationToken,
    ) {
        let turn_id = input.turn_id.clone();
        // A child token: shutdown stops the turn too, an abort stops only the turn.
        let cancel = shutdown.child_token();
        let events = TurnEvents::with_questions(
            self.events.clone(),
            turn_id.clone(),
            self.questions.clone(),
            self.question_timeout,
        );
        let task = tokio::spawn(run_turn(
            self.agent.clone(),
            self.repo.clone().map(|repo| (repo, author)),
            input,
            events,
            cancel.clone(),
            shutdown.clone(),
            self.finished_sender.clone(),
        ));
        self.active_turn.send_replace(Some(turn_id.clone()));
        self.active = Some(ActiveTurn {
            turn_id,
            cancel,
            task,
        });
    }
}

async fn run_turn(
    agent: Arc<Mutex<Box<dyn Agent>>>,
    repo: Option<(RepoHandle, Option<nightshift_protocol::repo::GitAuthor>)>,
    input: TurnInput,
    events: TurnEvents,
    cancel: CancellationToken,
    shutdown: CancellationToken,
    finished: mpsc::UnboundedSender<String>,
) {
    let turn_id = input.turn_id.clone();
    let started = Instant::now();
    let prepared = match &repo {
        Some((repo, author)) => repo.prepare_turn(author.clone(), &cancel).await,
        None => Ok(()),
    };
    let end = if let Err(error) = prepared {
        TurnEnd::failed(
            TokenUsage::default(),
            format!("The session's repository is not ready: {error}"),
        )
    } else {
        let mut agent = agent.lock().await;
        // A panicking agent must still end its turn, or the session would wait for it
        // forever.
        match AssertUnwindSafe(agent.run_turn(input, &events, &cancel))
            .catch_unwind()
            .await
        {
            Ok(end) => end,
            Err(_) => TurnEnd::failed(
                TokenUsage::default(),
                "The agent crashed; see the runner's log.",
            ),
        }
    };
    if shutdown.is_cancelled() {
        tracing::info!(%turn_id, "turn stopped by shutdown; it is left for the session to run again");
    } else {
        // The reason a turn failed is also shown as an error event of its own, like
        // every other error the user should see.
        if let (TurnOutcome::Failed, Some(message)) = (end.outcome, &end.error) {
            events
                .emit(EventBody::Error {
                    message: message.clone(),
                })
                .await;
        }
        tracing::info!(%turn_id, outcome = ?end.outcome, input_tokens = end.usage.input_tokens, output_tokens = end.usage.output_tokens, "turn finished");
        events
            .emit(EventBody::TurnFinished {
                outcome: end.outcome,
                usage: end.usage,
                error: end.error,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
            .await;
    }
    let _ = finished.send(turn_id);
}

#[cfg(test)]
mod tests;
