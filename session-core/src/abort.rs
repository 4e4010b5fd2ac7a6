//! The abort deadline: a runner told to abort a turn has `abort_timeout_ms` to
//! confirm it (its `turn_finished`); after that the session ends the turn itself, so
//! a runner that never answers cannot hold the queue.
//!
//! This module decides; the caller keeps the [`AbortRequest`] in storage, sends the
//! `abort` frame and ends the turn when [`abort_step`] says so.

use serde::{Deserialize, Serialize};

/// How long a runner has to confirm an abort before the session ends the turn itself,
/// unless the deployment says otherwise.
pub const DEFAULT_ABORT_TIMEOUT_MS: i64 = 15_000;

/// An abort the runner has not confirmed yet: which turn, and when it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortRequest {
    pub turn_id: String,
    pub at: i64,
}

impl AbortRequest {
    /// When the runner's time to confirm runs out.
    pub fn deadline(&self, timeout_ms: i64) -> i64 {
        self.at + timeout_ms
    }

    /// Whether the runner's time to confirm has run out by `now`.
    pub fn is_overdue(&self, now: i64, timeout_ms: i64) -> bool {
        now >= self.deadline(timeout_ms)
    }
}

/// The abort to keep after the runner was told to abort `turn_id` at `now`, or `None`
/// when the one already kept stands: a second abort of the same turn keeps the first
/// deadline, while an abort of another turn starts the clock again.
pub fn start_abort_clock(
    current: Option<&AbortRequest>,
    turn_id: &str,
    now: i64,
) -> Option<AbortRequest> {
    if current.map(|abort| abort.turn_id.as_str()) == Some(turn_id) {
        return None;
    }
    Some(AbortRequest {
        turn_id: turn_id.to_owned(),
        at: now,
    })
}

/// What the alarm does about an unconfirmed abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortStep {
    /// No abort is waiting, or its runner still has time.
    Nothing,
    /// The aborted turn is no longer running (it finished some other way): forget it.
    Clear,
    /// The runner did not confirm in time: end `turn_id` without it, saying `reason`.
    EndTurn { turn_id: String, reason: String },
}

/// Decides what happens to the kept abort `requested` at `now`, given the turn that is
/// processing (`running_turn`).
pub fn abort_step(
    requested: Option<&AbortRequest>,
    running_turn: Option<&str>,
    now: i64,
    timeout_ms: i64,
) -> AbortStep {
    let Some(abort) = requested else {
        return AbortStep::Nothing;
    };
    if running_turn != Some(abort.turn_id.as_str()) {
        AbortStep::Clear
    } else if abort.is_overdue(now, timeout_ms) {
        AbortStep::EndTurn {
            turn_id: abort.turn_id.clone(),
            reason: abort_timeout_reason(timeout_ms),
        }
    } else {
        AbortStep::Nothing
    }
}

/// What the `error` event says when the session ends a turn whose abort the runner
/// did not confirm within `timeout_ms`.
pub fn abort_timeout_reason(timeout_ms: i64) -> String {
    let seconds = timeout_ms as f64 / 1000.0;
    format!(
        "The runner did not confirm the abort within {seconds} s, so the turn was ended without it."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(turn_id: &str, at: i64) -> AbortRequest {
        AbortRequest {
            turn_id: turn_id.to_owned(),
            at,
        }
    }

    #[test]
    fn the_first_abort_of_a_turn_starts_the_clock() {
        assert_eq!(start_abort_clock(None, "t1", 100), Some(asked("t1", 100)));
    }

    #[test]
    fn a_second_abort_of_the_same_turn_keeps_the_first_deadline() {
        assert_eq!(start_abort_clock(Some(&asked("t1", 100)), "t1", 900), None);
    }

    #[test]
    fn an_abort_of_another_turn_starts_the_clock_again() {
        assert_eq!(
            start_abort_clock(Some(&asked("t1", 100)), "t2", 900),
            Some(asked("t2", 900))
        );
    }

    #[test]
    fn the_runner_has_until_the_timeout_and_not_a_millisecond_more() {
        let abort = asked("t1", 1_000);
        assert_eq!(abort.deadline(15_000), 16_000);
        assert!(!abort.is_overdue(15_999, 15_000));
        assert!(abort.is_overdue(16_000, 15_000));
    }

    #[test]
    fn with_no_abort_waiting_the_alarm_does_nothing_about_aborts() {
        assert_eq!(
            abort_step(None, Some("t1"), 99_999, 15_000),
            AbortStep::Nothing
        );
    }

    #[test]
    fn an_abort_whose_runner_still_has_time_waits() {
        let abort = asked("t1", 1_000);
        assert_eq!(
            abort_step(Some(&abort), Some("t1"), 15_999, 15_000),
            AbortStep::Nothing
        );
    }

    #[test]
    fn an_overdue_abort_of_the_running_turn_ends_it_and_says_why() {
        let abort = asked("t1", 1_000);
        assert_eq!(
            abort_step(Some(&abort), Some("t1"), 16_000, 15_000),
            AbortStep::EndTurn {
                turn_id: "t1".to_owned(),
                reason: abort_timeout_reason(15_000),
            }
        );
    }

    #[test]
    fn an_abort_of_a_turn_that_no_longer_runs_is_forgotten_even_when_overdue() {
        let abort = asked("t1", 1_000);
        assert_eq!(
            abort_step(Some(&abort), None, 2_000, 15_000),
            AbortStep::Clear
        );
        assert_eq!(
            abort_step(Some(&abort), Some("t2"), 99_000, 15_000),
            AbortStep::Clear
        );
    }

    #[test]
    fn the_abort_timeout_reason_names_the_wait() {
        assert!(abort_timeout_reason(15_000).contains("within 15 s"));
        assert!(abort_timeout_reason(1_500).contains("within 1.5 s"));
        assert!(abort_timeout_reason(2_000).contains("did not confirm the abort"));
    }
}
