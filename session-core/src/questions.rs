//! Questions the agent asks the user mid-turn (the built-in `ask_user` tool, and
//! OpenCode's questions and permission requests), and whether one can still be
//! answered.
//!
//! The event log is the record: the runner's `question_asked` opens a question;
//! `question_answered` (written by the `SessionAgent` when a user answers) or the
//! runner's `question_expired` closes it, and so do the end of its turn and the end
//! of its time limit. [`QuestionBook`] folds those events into one answer per
//! question, so the `SessionAgent` decides from facts it already stores.
//!
//! This module must not depend on storage or time (callers pass `now` in).

use std::collections::HashMap;

use nightshift_protocol::events::{EventBody, SessionEvent};

/// Where a question stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionState {
    /// Waiting for an answer until `expires_at` (ms), in turn `turn_id`.
    Open { turn_id: String, expires_at: i64 },
    /// Answered, expired, or its turn ended.
    Closed,
}

/// Why a question cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    #[error("there is no question {0} in this session")]
    Unknown(String),
    #[error("question {0} was already answered, has expired, or its turn has ended")]
    Closed(String),
}

/// The questions of one session, folded from its events.
#[derive(Debug, Clone, Default)]
pub struct QuestionBook {
    questions: HashMap<String, QuestionState>,
}

impl QuestionBook {
    /// Folds `events` (in `seq` order) into the state of every question.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a SessionEvent>) -> Self {
        let mut book = QuestionBook::default();
        let mut open_by_turn: HashMap<String, Vec<String>> = HashMap::new();
        for event in events {
            match &event.body {
                EventBody::QuestionAsked {
                    question_id,
                    timeout_ms,
                    ..
                } => {
                    let Some(turn_id) = event.turn_id.clone() else {
                        continue;
                    };
                    let timeout = i64::try_from(*timeout_ms).unwrap_or(i64::MAX);
                    book.questions.insert(
                        question_id.clone(),
                        QuestionState::Open {
                            turn_id: turn_id.clone(),
                            expires_at: event.at.saturating_add(timeout),
                        },
                    );
                    open_by_turn
                        .entry(turn_id)
                        .or_default()
                        .push(question_id.clone());
                }
                EventBody::QuestionAnswered { question_id, .. }
                | EventBody::QuestionExpired { question_id } => {
                    book.questions
                        .insert(question_id.clone(), QuestionState::Closed);
                }
                EventBody::TurnFinished { .. } | EventBody::TurnInterrupted { .. } => {
                    if let Some(turn_id) = &event.turn_id
                        && let Some(ids) = open_by_turn.remove(turn_id)
                    {
                        for id in ids {
                            book.questions.insert(id, QuestionState::Closed);
                        }
                    }
                }
                _ => {}
            }
        }
        book
    }

    /// The turn a question belongs to, if it can be answered at `now`.
    pub fn answerable(&self, question_id: &str, now: i64) -> Result<String, QuestionError> {
        match self.questions.get(question_id) {
            None => Err(QuestionError::Unknown(question_id.to_owned())),
            Some(QuestionState::Open {
                turn_id,
                expires_at,
            }) if now < *expires_at => Ok(turn_id.clone()),
            Some(_) => Err(QuestionError::Closed(question_id.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::events::{QuestionKind, TokenUsage, TurnOutcome};

    use super::*;

    fn event(seq: u64, turn: &str, at: i64, body: EventBody) -> SessionEvent {
        SessionEvent {
            seq,
            turn_id: Some(turn.to_owned()),
            at,
            body,
        }
    }

    fn asked(id: &str) -> EventBody {
        EventBody::QuestionAsked {
            question_id: id.to_owned(),
            kind: QuestionKind::Question,
            text: "which?".to_owned(),
            options: vec!["a".to_owned(), "b".to_owned()],
            timeout_ms: 1_000,
        }
    }

    #[test]
    fn an_open_question_can_be_answered_once_before_it_expires() {
        let events = vec![event(1, "t", 100, asked("q"))];
        let book = QuestionBook::from_events(&events);
        assert_eq!(book.answerable("q", 500), Ok("t".to_owned()));
        assert_eq!(
            book.answerable("q", 1_100),
            Err(QuestionError::Closed("q".into()))
        );
        assert_eq!(
            book.answerable("nope", 500),
            Err(QuestionError::Unknown("nope".into()))
        );

        let mut events = events;
        events.push(event(
            2,
            "t",
            200,
            EventBody::QuestionAnswered {
                question_id: "q".into(),
                answer: "a".into(),
                answered_by: None,
            },
        ));
        let book = QuestionBook::from_events(&events);
        assert_eq!(
            book.answerable("q", 300),
            Err(QuestionError::Closed("q".into()))
        );
    }

    #[test]
    fn expiry_and_the_end_of_the_turn_close_questions() {
        let events = vec![
            event(1, "t", 0, asked("q1")),
            event(2, "t", 0, asked("q2")),
            event(
                3,
                "t",
                1,
                EventBody::QuestionExpired {
                    question_id: "q1".into(),
                },
            ),
        ];
        let book = QuestionBook::from_events(&events);
        assert!(book.answerable("q1", 2).is_err());
        assert!(book.answerable("q2", 2).is_ok());

        let mut events = events;
        events.push(event(
            4,
            "t",
            3,
            EventBody::TurnFinished {
                outcome: TurnOutcome::Aborted,
                usage: TokenUsage::default(),
                error: None,
                duration_ms: 0,
            },
        ));
        let book = QuestionBook::from_events(&events);
        assert!(book.answerable("q2", 4).is_err());
    }
}
