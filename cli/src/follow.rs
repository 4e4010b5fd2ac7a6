//! Following one prompt through a session's event log, for `send --wait` and
//! `new --wait`: where the prompt is (queued, merged into another by `collect`, its
//! turn started), which events belong to it, and how it ended.
//!
//! A plain fold over events, so the rules are tested without a server; `watch`
//! feeds it and acts on what it answers.

use nightshift_protocol::events::{EventBody, SessionEvent, TurnOutcome};

/// How a followed prompt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Done,
    Failed(Option<String>),
    Aborted,
    /// Cancelled while queued: it never ran.
    Cancelled,
}

/// One prompt, followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptFollower {
    /// The prompt, or the one it was merged into.
    prompt: String,
    /// The prompt has appeared in the log.
    seen: bool,
    /// The turn running it, once it started.
    turn_id: Option<String>,
}

impl PromptFollower {
    pub fn new(prompt: String) -> PromptFollower {
        PromptFollower {
            prompt,
            seen: false,
            turn_id: None,
        }
    }

    /// Takes the next event of the log; answers how the prompt ended, once it did.
    pub fn observe(&mut self, event: &SessionEvent) -> Option<Ending> {
        match &event.body {
            EventBody::PromptQueued { message_id, .. } if *message_id == self.prompt => {
                self.seen = true;
            }
            // Merged by `collect`: the prompt now runs as the one it was merged into.
            EventBody::PromptsMerged {
                message_id,
                merged_ids,
                ..
            } if merged_ids.contains(&self.prompt) => {
                self.prompt = message_id.clone();
                self.seen = true;
            }
            // After an interruption the prompt runs again, in a new turn.
            EventBody::TurnStarted { message_id, .. } if *message_id == self.prompt => {
                self.seen = true;
                self.turn_id = event.turn_id.clone();
            }
            EventBody::PromptCancelled { message_id } if *message_id == self.prompt => {
                return Some(Ending::Cancelled);
            }
            EventBody::TurnFinished { outcome, error, .. }
                if self.turn_id.is_some() && event.turn_id == self.turn_id =>
            {
                return Some(match outcome {
                    TurnOutcome::Done => Ending::Done,
                    TurnOutcome::Failed => Ending::Failed(error.clone()),
                    TurnOutcome::Aborted => Ending::Aborted,
                });
            }
            _ => {}
        }
        None
    }

    /// Whether an event of `turn_id` is the follower's to show: from the moment the
    /// prompt is queued, the session's own events (no turn) and the prompt's turn,
    /// not the turns of prompts ahead of it.
    pub fn shows(&self, turn_id: Option<&str>) -> bool {
        self.seen && (turn_id.is_none() || turn_id == self.turn_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::api::SessionStatus;

    use super::*;

    fn event(turn: Option<&str>, body: EventBody) -> SessionEvent {
        SessionEvent {
            seq: 1,
            turn_id: turn.map(str::to_string),
            at: 0,
            body,
        }
    }

    fn queued(id: &str) -> SessionEvent {
        event(
            None,
            EventBody::PromptQueued {
                message_id: id.into(),
                content: "c".into(),
                position: 0,
            },
        )
    }

    fn started(id: &str, turn: &str) -> SessionEvent {
        event(
            Some(turn),
            EventBody::TurnStarted {
                message_id: id.into(),
                content: "c".into(),
                attempt: 1,
            },
        )
    }

    fn finished(turn: &str, outcome: TurnOutcome) -> SessionEvent {
        event(
            Some(turn),
            EventBody::TurnFinished {
                outcome,
                usage: Default::default(),
                error: Some("boom".into()),
                duration_ms: 1,
            },
        )
    }

    #[test]
    fn only_the_prompts_own_turn_is_shown_and_ends_it() {
        let mut follower = PromptFollower::new("mine".into());
        assert!(!follower.shows(None), "nothing before the prompt is queued");
        assert_eq!(follower.observe(&queued("mine")), None);
        assert!(follower.shows(None));

        // A turn ahead of it runs and ends: hidden, and not the end.
        assert_eq!(follower.observe(&started("other", "t1")), None);
        assert!(!follower.shows(Some("t1")));
        assert_eq!(follower.observe(&finished("t1", TurnOutcome::Done)), None);

        let status = event(
            None,
            EventBody::StatusChanged {
                status: SessionStatus::Running,
            },
        );
        assert_eq!(follower.observe(&status), None);
        assert_eq!(follower.observe(&started("mine", "t2")), None);
        assert!(follower.shows(Some("t2")));
        assert_eq!(
            follower.observe(&finished("t2", TurnOutcome::Failed)),
            Some(Ending::Failed(Some("boom".into())))
        );
    }

    #[test]
    fn a_merged_prompt_is_followed_into_the_prompt_it_joined() {
        let mut follower = PromptFollower::new("late".into());
        follower.observe(&queued("first"));
        let merged = event(
            None,
            EventBody::PromptsMerged {
                message_id: "first".into(),
                merged_ids: vec!["late".into()],
                content: "both".into(),
            },
        );
        assert_eq!(follower.observe(&merged), None);
        follower.observe(&started("first", "t"));
        assert_eq!(
            follower.observe(&finished("t", TurnOutcome::Aborted)),
            Some(Ending::Aborted)
        );
    }

    #[test]
    fn an_interrupted_turn_is_not_the_end_and_a_cancel_is() {
        let mut follower = PromptFollower::new("mine".into());
        follower.observe(&queued("mine"));
        follower.observe(&started("mine", "t1"));
        let interrupted = event(
            Some("t1"),
            EventBody::TurnInterrupted {
                message_id: "mine".into(),
                reason: "runner died".into(),
            },
        );
        assert_eq!(follower.observe(&interrupted), None);
        follower.observe(&started("mine", "t2"));
        assert_eq!(follower.observe(&finished("t1", TurnOutcome::Done)), None);
        assert_eq!(
            follower.observe(&finished("t2", TurnOutcome::Done)),
            Some(Ending::Done)
        );

        let mut cancelled = PromptFollower::new("gone".into());
        cancelled.observe(&queued("gone"));
        let cancel = event(
            None,
            EventBody::PromptCancelled {
                message_id: "gone".into(),
            },
        );
        assert_eq!(cancelled.observe(&cancel), Some(Ending::Cancelled));
    }
}
