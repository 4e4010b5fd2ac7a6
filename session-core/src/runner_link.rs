//! What a runner's `hello` means for the turn in progress.
//!
//! A runner process picks a random epoch when it starts and keeps it across
//! reconnects (see `nightshift_protocol::runner_link`). So when a runner says hello
//! while a prompt is processing, the epochs tell what happened: the same epoch is the
//! same process coming back (it resends what we have not acknowledged, including the
//! end of the turn if it finished meanwhile); another epoch is a new process, and the
//! turn died with the old one, unless the new process says it still works on it.
//!
//! This module must not depend on storage or sockets.

/// The turn being processed, as the hello handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingTurn<'a> {
    pub turn_id: &'a str,
    /// The epoch of the runner the turn was sent to.
    pub runner_epoch: Option<&'a str>,
}

/// What to do about the processing turn when a runner says hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloDecision {
    /// Nothing is processing.
    NothingRunning,
    /// The same runner process is back: the turn goes on where it was.
    Continue,
    /// A new runner process says it runs this turn: it takes the turn over.
    Adopt { turn_id: String },
    /// The runner that ran the turn is gone: record the interruption and put the
    /// prompt back at the front of the queue.
    Interrupt { turn_id: String },
}

/// The reason shown in a `turn_interrupted` event.
/// (The app adds its own sentence saying the prompt runs again, so this says why.)
pub const INTERRUPTED_REASON: &str =
    "The runner process running this turn stopped; a new one has connected.";

/// Decides what a hello from a runner with `hello_epoch`, reporting `active_turn`,
/// means for `processing`.
pub fn on_hello(
    processing: Option<ProcessingTurn<'_>>,
    hello_epoch: &str,
    active_turn: Option<&str>,
) -> HelloDecision {
    let Some(turn) = processing else {
        return HelloDecision::NothingRunning;
    };
    if turn.runner_epoch == Some(hello_epoch) {
        HelloDecision::Continue
    } else if active_turn == Some(turn.turn_id) {
        HelloDecision::Adopt {
            turn_id: turn.turn_id.to_owned(),
        }
    } else {
        HelloDecision::Interrupt {
            turn_id: turn.turn_id.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn<'a>(epoch: Option<&'a str>) -> ProcessingTurn<'a> {
        ProcessingTurn {
            turn_id: "t1",
            runner_epoch: epoch,
        }
    }

    #[test]
    fn nothing_running_needs_nothing() {
        assert_eq!(on_hello(None, "e1", None), HelloDecision::NothingRunning);
        assert_eq!(
            on_hello(None, "e1", Some("t9")),
            HelloDecision::NothingRunning
        );
    }

    #[test]
    fn the_same_epoch_continues_even_without_an_active_turn() {
        // The runner may have finished the turn while disconnected; its turn_finished
        // is in the resend buffer.
        assert_eq!(
            on_hello(Some(turn(Some("e1"))), "e1", None),
            HelloDecision::Continue
        );
        assert_eq!(
            on_hello(Some(turn(Some("e1"))), "e1", Some("t1")),
            HelloDecision::Continue
        );
    }

    #[test]
    fn a_new_epoch_interrupts_the_turn() {
        assert_eq!(
            on_hello(Some(turn(Some("e1"))), "e2", None),
            HelloDecision::Interrupt {
                turn_id: "t1".into()
            }
        );
        assert_eq!(
            on_hello(Some(turn(Some("e1"))), "e2", Some("other")),
            HelloDecision::Interrupt {
                turn_id: "t1".into()
            }
        );
        assert_eq!(
            on_hello(Some(turn(None)), "e2", None),
            HelloDecision::Interrupt {
                turn_id: "t1".into()
            }
        );
    }

    #[test]
    fn a_new_epoch_that_runs_the_turn_adopts_it() {
        assert_eq!(
            on_hello(Some(turn(Some("e1"))), "e2", Some("t1")),
            HelloDecision::Adopt {
                turn_id: "t1".into()
            }
        );
    }
}
