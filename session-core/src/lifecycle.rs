//! The one place that decides a session's [`SessionStatus`].
//!
//! A status is never stored as a goal and then chased; it is derived from facts the
//! `SessionAgent` records as they happen (the sandbox was requested or failed, a runner
//! said hello or went away, a turn is running). Deriving it keeps the rules in one
//! function and makes races harmless: whichever fact lands last, the status follows.
//!
//! This module must not depend on storage or time.

use nightshift_protocol::api::SessionStatus;
use serde::{Deserialize, Serialize};

/// What became of the request for this session's sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SandboxState {
    /// Nothing asked for yet.
    #[default]
    NotRequested,
    /// The backend was asked (at `requested_at`, ms) and has not answered yet.
    Requested { requested_at: i64 },
    /// The backend created the sandbox; its runner has been started.
    Created { sandbox_id: String },
    /// The backend could not be reached or refused.
    Failed { reason: String },
}

impl SandboxState {
    /// The sandbox id, once the backend has created it.
    pub fn sandbox_id(&self) -> Option<&str> {
        match self {
            SandboxState::Created { sandbox_id } => Some(sandbox_id),
            _ => None,
        }
    }

    /// Why provisioning failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        match self {
            SandboxState::Failed { reason } => Some(reason),
            _ => None,
        }
    }

    /// Whether a new request to the backend should be made now.
    ///
    /// A request still in flight is not repeated, unless it is older than
    /// `stale_after_ms`: the object that made it may have been restarted mid-request,
    /// and without this the session would wait forever.
    pub fn should_request(&self, now: i64, stale_after_ms: i64) -> bool {
        match self {
            SandboxState::NotRequested | SandboxState::Failed { .. } => true,
            SandboxState::Requested { requested_at } => now - requested_at >= stale_after_ms,
            SandboxState::Created { .. } => false,
        }
    }
}

/// Everything the status depends on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionFacts {
    pub sandbox: SandboxState,
    /// A runner is connected and has said hello.
    pub runner_connected: bool,
    /// Some runner has said hello at least once in this session's life.
    pub runner_ever_connected: bool,
    /// A prompt is in the `processing` state.
    pub turn_processing: bool,
    /// The session was archived: its sandbox is destroyed and nothing runs again.
    pub archived: bool,
}

/// The status these facts add up to.
///
/// A connected runner wins over everything the sandbox request says: if a runner is
/// talking to us, the session works, whatever the backend answered. Without a runner,
/// a failed request is an error; a runner that was there before is being waited for
/// (`reconnecting`, queued work keeps); otherwise the sandbox is still on its way.
/// An archived session is `archived` whatever else is recorded: its runner's link
/// was closed and its sandbox destroyed on purpose.
pub fn derive_status(facts: &SessionFacts) -> SessionStatus {
    if facts.archived {
        return SessionStatus::Archived;
    }
    if facts.runner_connected {
        return if facts.turn_processing {
            SessionStatus::Running
        } else {
            SessionStatus::Idle
        };
    }
    if facts.sandbox.failure().is_some() {
        return SessionStatus::Error;
    }
    if facts.runner_ever_connected {
        return SessionStatus::Reconnecting;
    }
    SessionStatus::Provisioning
}

/// The error text a session shows: only while its status is `error`.
pub fn visible_error(facts: &SessionFacts) -> Option<String> {
    match derive_status(facts) {
        SessionStatus::Error => facts.sandbox.failure().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(sandbox: SandboxState, connected: bool, ever: bool, processing: bool) -> SessionFacts {
        SessionFacts {
            sandbox,
            runner_connected: connected,
            runner_ever_connected: ever,
            turn_processing: processing,
            archived: false,
        }
    }

    fn created() -> SandboxState {
        SandboxState::Created {
            sandbox_id: "sb".into(),
        }
    }

    fn failed() -> SandboxState {
        SandboxState::Failed {
            reason: "backend down".into(),
        }
    }

    #[test]
    fn a_new_session_is_provisioning() {
        assert_eq!(
            derive_status(&SessionFacts::default()),
            SessionStatus::Provisioning
        );
        let requested = SandboxState::Requested { requested_at: 0 };
        assert_eq!(
            derive_status(&facts(requested, false, false, false)),
            SessionStatus::Provisioning
        );
        assert_eq!(
            derive_status(&facts(created(), false, false, false)),
            SessionStatus::Provisioning
        );
    }

    #[test]
    fn a_connected_runner_is_idle_or_running() {
        assert_eq!(
            derive_status(&facts(created(), true, true, false)),
            SessionStatus::Idle
        );
        assert_eq!(
            derive_status(&facts(created(), true, true, true)),
            SessionStatus::Running
        );
    }

    #[test]
    fn a_connected_runner_wins_over_a_failed_request() {
        assert_eq!(
            derive_status(&facts(failed(), true, true, false)),
            SessionStatus::Idle
        );
        assert_eq!(visible_error(&facts(failed(), true, true, false)), None);
    }

    #[test]
    fn a_failed_request_without_a_runner_is_an_error_with_its_reason() {
        let f = facts(failed(), false, false, false);
        assert_eq!(derive_status(&f), SessionStatus::Error);
        assert_eq!(visible_error(&f).as_deref(), Some("backend down"));
    }

    #[test]
    fn a_lost_runner_is_reconnecting_even_mid_turn() {
        assert_eq!(
            derive_status(&facts(created(), false, true, true)),
            SessionStatus::Reconnecting
        );
        assert_eq!(
            derive_status(&facts(created(), false, true, false)),
            SessionStatus::Reconnecting
        );
    }

    #[test]
    fn an_archived_session_is_archived_whatever_else_holds() {
        for (sandbox, connected, processing) in [
            (created(), true, true),
            (created(), true, false),
            (failed(), false, false),
            (SandboxState::NotRequested, false, false),
        ] {
            let f = SessionFacts {
                archived: true,
                ..facts(sandbox, connected, true, processing)
            };
            assert_eq!(derive_status(&f), SessionStatus::Archived);
            assert_eq!(visible_error(&f), None);
        }
    }

    #[test]
    fn requests_are_repeated_only_when_failed_or_stale() {
        assert!(SandboxState::NotRequested.should_request(0, 60_000));
        assert!(failed().should_request(0, 60_000));
        assert!(!created().should_request(0, 60_000));
        let requested = SandboxState::Requested {
            requested_at: 1_000,
        };
        assert!(!requested.should_request(30_000, 60_000));
        assert!(requested.should_request(61_000, 60_000));
    }
}
