//! The facts of a session's sandbox beside its state machine
//! ([`crate::session_machine`], whose phase is the status): what became of the last
//! request to the backend, the error a session shows, and when an idle session
//! sleeps.
//!
//! This module must not depend on storage or the clock: instants are passed in.

use serde::{Deserialize, Serialize};

use crate::session_machine::Phase;

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

/// The error text a session shows: only while it is in `error`, the backend's reason
/// for the last failed create or restore.
pub fn visible_error(phase: Phase, sandbox: &SandboxState) -> Option<String> {
    match phase {
        Phase::Error => sandbox.failure().map(str::to_owned),
        _ => None,
    }
}

/// The default time a session stays idle before it sleeps: 15 minutes.
pub const DEFAULT_SLEEP_AFTER_MS: i64 = 15 * 60 * 1000;

/// What the alarm does about sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepStep {
    /// Not idle (or sleep is off): nothing waits on the clock for it.
    Never,
    /// Sleep at this instant (ms), unless something happens first.
    At(i64),
    /// Idle long enough, and no panel is open: sleep now.
    Now,
}

/// Whether an idle session sleeps: it has been `ready` since `idle_since` (ms), and
/// sleeps `sleep_after_ms` later, but not while a panel's grant is open
/// (`panel_open_until`: an editor or terminal someone has open keeps it awake until
/// the grant's end, after which the idle time starts again). `sleep_after_ms` of 0
/// turns sleep off.
pub fn sleep_step(
    idle_since: Option<i64>,
    sleep_after_ms: i64,
    panel_open_until: Option<i64>,
    now: i64,
) -> SleepStep {
    let Some(idle_since) = idle_since else {
        return SleepStep::Never;
    };
    if sleep_after_ms <= 0 {
        return SleepStep::Never;
    }
    let from = match panel_open_until {
        Some(until) if until > idle_since => until,
        _ => idle_since,
    };
    let at = from.saturating_add(sleep_after_ms);
    if at <= now {
        SleepStep::Now
    } else {
        SleepStep::At(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> SandboxState {
        SandboxState::Failed {
            reason: "backend down".into(),
        }
    }

    #[test]
    fn the_error_shows_only_in_error() {
        assert_eq!(
            visible_error(Phase::Error, &failed()).as_deref(),
            Some("backend down")
        );
        assert_eq!(visible_error(Phase::Ready, &failed()), None);
    }

    #[test]
    fn requests_are_repeated_only_when_failed_or_stale() {
        let created = SandboxState::Created {
            sandbox_id: "sb".into(),
        };
        assert!(SandboxState::NotRequested.should_request(0, 60_000));
        assert!(failed().should_request(0, 60_000));
        assert!(!created.should_request(0, 60_000));
        let requested = SandboxState::Requested {
            requested_at: 1_000,
        };
        assert!(!requested.should_request(30_000, 60_000));
        assert!(requested.should_request(61_000, 60_000));
    }

    #[test]
    fn an_idle_session_sleeps_after_its_time() {
        assert_eq!(sleep_step(None, 1_000, None, 5_000), SleepStep::Never);
        assert_eq!(
            sleep_step(Some(1_000), 1_000, None, 1_500),
            SleepStep::At(2_000)
        );
        assert_eq!(sleep_step(Some(1_000), 1_000, None, 2_000), SleepStep::Now);
        assert_eq!(sleep_step(Some(1_000), 0, None, 99_000), SleepStep::Never);
    }

    #[test]
    fn an_open_panel_keeps_it_awake_until_its_grant_ends() {
        assert_eq!(
            sleep_step(Some(1_000), 1_000, Some(10_000), 5_000),
            SleepStep::At(11_000)
        );
        // A grant that ended before the session became idle changes nothing.
        assert_eq!(
            sleep_step(Some(1_000), 1_000, Some(500), 2_000),
            SleepStep::Now
        );
    }
}
