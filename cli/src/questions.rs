//! Which of a session's questions are still open, folded from its events as `watch`
//! reads them, and what a typed reply means as an answer.
//!
//! The server decides for real (`nightshift_session::questions`; an answer to a closed
//! question is refused with 409 `question_closed`): this fold only keeps `watch` from
//! prompting for a question that its own stream already shows answered, expired or
//! ended with its turn.

use nightshift_protocol::events::{EventBody, QuestionKind, SessionEvent};

/// A question the agent asked that has not been answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenQuestion {
    pub question_id: String,
    pub turn_id: Option<String>,
    pub kind: QuestionKind,
    pub text: String,
    pub options: Vec<String>,
}

/// The open questions, oldest first.
#[derive(Debug, Default)]
pub struct Questions {
    open: Vec<OpenQuestion>,
}

impl Questions {
    pub fn observe(&mut self, event: &SessionEvent) {
        match &event.body {
            EventBody::QuestionAsked {
                question_id,
                kind,
                text,
                options,
                ..
            } => {
                self.close(question_id);
                self.open.push(OpenQuestion {
                    question_id: question_id.clone(),
                    turn_id: event.turn_id.clone(),
                    kind: *kind,
                    text: text.clone(),
                    options: options.clone(),
                });
            }
            EventBody::QuestionAnswered { question_id, .. }
            | EventBody::QuestionExpired { question_id } => self.close(question_id),
            // A question cannot outlive its turn.
            EventBody::TurnFinished { .. } | EventBody::TurnInterrupted { .. } => {
                let turn = event.turn_id.as_deref();
                self.open
                    .retain(|q| turn.is_some() && q.turn_id.as_deref() != turn);
            }
            _ => {}
        }
    }

    pub fn close(&mut self, question_id: &str) {
        self.open.retain(|q| q.question_id != question_id);
    }

    /// The question a reply typed now answers.
    pub fn oldest(&self) -> Option<&OpenQuestion> {
        self.open.first()
    }

    pub fn is_open(&self, question_id: &str) -> bool {
        self.open.iter().any(|q| q.question_id == question_id)
    }
}

/// The answer a typed reply gives to `question`: an option's number or its text picks
/// that option; a question in the agent's own words also takes free text, a permission
/// request only one of its options.
pub fn parse_answer(question: &OpenQuestion, reply: &str) -> Result<String, String> {
    let reply = reply.trim();
    if reply.is_empty() {
        return Err("an empty reply answers nothing".to_string());
    }
    if let Ok(number) = reply.parse::<usize>()
        && (1..=question.options.len()).contains(&number)
    {
        return Ok(question.options[number - 1].clone());
    }
    if let Some(option) = question
        .options
        .iter()
        .find(|option| option.eq_ignore_ascii_case(reply))
    {
        return Ok(option.clone());
    }
    match question.kind {
        QuestionKind::Permission if !question.options.is_empty() => Err(format!(
            "answer with one of: {} (or its number)",
            question.options.join(", ")
        )),
        _ => Ok(reply.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(turn: &str, body: EventBody) -> SessionEvent {
        SessionEvent {
            seq: 1,
            turn_id: Some(turn.into()),
            at: 0,
            body,
        }
    }

    fn asked(id: &str, kind: QuestionKind, options: &[&str]) -> EventBody {
        EventBody::QuestionAsked {
            question_id: id.into(),
            kind,
            text: "?".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            timeout_ms: 1,
        }
    }

    #[test]
    fn questions_close_when_answered_expired_or_their_turn_ends() {
        let mut questions = Questions::default();
        questions.observe(&event("t1", asked("q1", QuestionKind::Question, &[])));
        questions.observe(&event("t1", asked("q2", QuestionKind::Question, &[])));
        assert_eq!(questions.oldest().unwrap().question_id, "q1");
        questions.observe(&event(
            "t1",
            EventBody::QuestionAnswered {
                question_id: "q1".into(),
                answer: "a".into(),
                answered_by: None,
            },
        ));
        assert_eq!(questions.oldest().unwrap().question_id, "q2");
        questions.observe(&event(
            "t1",
            EventBody::QuestionExpired {
                question_id: "q2".into(),
            },
        ));
        assert!(questions.oldest().is_none());

        questions.observe(&event("t1", asked("q3", QuestionKind::Question, &[])));
        questions.observe(&event("t2", asked("q4", QuestionKind::Question, &[])));
        questions.observe(&event(
            "t1",
            EventBody::TurnInterrupted {
                message_id: "m".into(),
                reason: "r".into(),
            },
        ));
        assert!(!questions.is_open("q3"));
        assert!(questions.is_open("q4"));
    }

    #[test]
    fn replies_pick_options_by_number_or_text() {
        let mut questions = Questions::default();
        questions.observe(&event(
            "t",
            asked("q", QuestionKind::Question, &["red", "blue"]),
        ));
        let question = questions.oldest().unwrap().clone();
        assert_eq!(parse_answer(&question, "2").unwrap(), "blue");
        assert_eq!(parse_answer(&question, " RED ").unwrap(), "red");
        assert_eq!(
            parse_answer(&question, "green, please").unwrap(),
            "green, please"
        );
        assert_eq!(parse_answer(&question, "7").unwrap(), "7");
        assert!(parse_answer(&question, "  ").is_err());

        let permission = OpenQuestion {
            kind: QuestionKind::Permission,
            options: vec!["allow".into(), "always".into(), "deny".into()],
            ..question
        };
        assert_eq!(parse_answer(&permission, "3").unwrap(), "deny");
        assert_eq!(parse_answer(&permission, "Allow").unwrap(), "allow");
        assert!(parse_answer(&permission, "maybe").is_err());
    }
}
