//! Questions an agent asks the user during a turn (the built-in `ask_user` tool,
//! OpenCode's questions and permission requests), and the answers that come back
//! over the link as `answer` frames.
//!
//! Asking emits `question_asked` and pauses only the caller: the turn waits for the
//! answer, the timeout (then `question_expired`), or an abort, whichever comes first.
//! The [`QuestionBroker`] is shared by the turn controller (which hands it the
//! answers) and every turn's [`super::TurnEvents`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use nightshift_protocol::events::{EventBody, QuestionKind};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How long a question waits for its answer unless configured otherwise
/// (`NIGHTSHIFT_QUESTION_TIMEOUT_MS`).
pub const DEFAULT_QUESTION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// One question to put to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Unique within the session; the answer names it.
    pub id: String,
    pub kind: QuestionKind,
    pub text: String,
    /// The choices offered; empty for a free-text answer.
    pub options: Vec<String>,
}

/// How a question ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionOutcome {
    Answered(String),
    /// Nobody answered in time (`question_expired` was emitted).
    Expired,
    /// The turn was aborted while it waited.
    Aborted,
}

/// The questions waiting for an answer, by id.
#[derive(Debug, Default)]
pub struct QuestionBroker {
    pending: Mutex<HashMap<String, oneshot::Sender<String>>>,
}

impl QuestionBroker {
    pub fn new() -> QuestionBroker {
        QuestionBroker::default()
    }

    /// Delivers an answer. False when no question with that id is waiting (it was
    /// answered, expired or aborted already, or never asked).
    pub fn answer(&self, question_id: &str, answer: String) -> bool {
        let sender = self.lock().remove(question_id);
        match sender {
            Some(sender) => sender.send(answer).is_ok(),
            None => false,
        }
    }

    /// How many questions are waiting.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn register(&self, question_id: &str) -> oneshot::Receiver<String> {
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(question_id.to_string(), sender);
        receiver
    }

    fn forget(&self, question_id: &str) {
        self.lock().remove(question_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<String>>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Emits the question through `emit`, then waits for its answer.
pub(crate) async fn ask<F, Fut>(
    broker: &QuestionBroker,
    question: Question,
    timeout: Duration,
    cancel: &CancellationToken,
    emit: F,
) -> QuestionOutcome
where
    F: Fn(EventBody) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Registered before the event goes out, so an answer that comes back at once
    // finds the question waiting.
    let receiver = broker.register(&question.id);
    emit(EventBody::QuestionAsked {
        question_id: question.id.clone(),
        kind: question.kind,
        text: question.text,
        options: question.options,
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    })
    .await;
    tokio::select! {
        answer = receiver => match answer {
            Ok(answer) => QuestionOutcome::Answered(answer),
            // The sender went away without an answer: only the broker holds it, so
            // this cannot happen while the question is registered; treat it as expiry.
            Err(_) => QuestionOutcome::Expired,
        },
        _ = tokio::time::sleep(timeout) => {
            broker.forget(&question.id);
            emit(EventBody::QuestionExpired { question_id: question.id }).await;
            QuestionOutcome::Expired
        }
        _ = cancel.cancelled() => {
            broker.forget(&question.id);
            QuestionOutcome::Aborted
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn question(id: &str) -> Question {
        Question {
            id: id.into(),
            kind: QuestionKind::Question,
            text: "Which one?".into(),
            options: vec!["a".into(), "b".into()],
        }
    }

    fn recorder() -> (
        Arc<Mutex<Vec<EventBody>>>,
        impl Fn(EventBody) -> std::future::Ready<()>,
    ) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        (seen, move |event| {
            sink.lock().unwrap().push(event);
            std::future::ready(())
        })
    }

    #[tokio::test]
    async fn an_answer_resumes_the_asker() {
        let broker = Arc::new(QuestionBroker::new());
        let (seen, emit) = recorder();
        let answering = broker.clone();
        let answerer = tokio::spawn(async move {
            while answering.waiting() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(!answering.answer("other", "x".into()));
            assert!(answering.answer("q1", "b".into()));
        });
        let outcome = ask(
            &broker,
            question("q1"),
            Duration::from_secs(5),
            &CancellationToken::new(),
            emit,
        )
        .await;
        answerer.await.unwrap();
        assert_eq!(outcome, QuestionOutcome::Answered("b".into()));
        let seen = seen.lock().unwrap();
        assert!(
            matches!(&seen[..], [EventBody::QuestionAsked { question_id, options, timeout_ms: 5000, .. }]
            if question_id == "q1" && options.len() == 2)
        );
        // A second answer finds nothing waiting.
        assert!(!broker.answer("q1", "a".into()));
    }

    #[tokio::test]
    async fn no_answer_in_time_expires_with_an_event() {
        let broker = QuestionBroker::new();
        let (seen, emit) = recorder();
        let outcome = ask(
            &broker,
            question("q2"),
            Duration::from_millis(20),
            &CancellationToken::new(),
            emit,
        )
        .await;
        assert_eq!(outcome, QuestionOutcome::Expired);
        assert!(
            matches!(&seen.lock().unwrap()[1], EventBody::QuestionExpired { question_id } if question_id == "q2")
        );
        assert!(
            !broker.answer("q2", "late".into()),
            "a late answer is refused"
        );
        assert_eq!(broker.waiting(), 0);
    }

    #[tokio::test]
    async fn an_abort_stops_the_wait() {
        let broker = QuestionBroker::new();
        let (seen, emit) = recorder();
        let cancel = CancellationToken::new();
        let aborter = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            aborter.cancel();
        });
        let outcome = ask(
            &broker,
            question("q3"),
            Duration::from_secs(60),
            &cancel,
            emit,
        )
        .await;
        assert_eq!(outcome, QuestionOutcome::Aborted);
        assert_eq!(seen.lock().unwrap().len(), 1, "no expiry event on abort");
        assert_eq!(broker.waiting(), 0);
    }
}
