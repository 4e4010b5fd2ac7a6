//! What the session page says about a session's phase while it waits, and when it
//! offers to wake it: plain rules over the status, tested natively.

use nightshift_protocol::api::SessionStatus;

/// What is happening while the session waits in `status`; `None` when it is not
/// waiting on the sandbox (idle, running, archived).
pub fn waiting_note(status: SessionStatus) -> Option<&'static str> {
    match status {
        SessionStatus::Provisioning => Some("creating the sandbox"),
        SessionStatus::Reconnecting => Some("reconnecting the runner"),
        SessionStatus::Sleeping => Some("saving the sandbox"),
        SessionStatus::Asleep => Some("asleep: the sandbox is stopped, its files kept"),
        SessionStatus::Waking => Some("restoring the sandbox"),
        SessionStatus::Idle
        | SessionStatus::Running
        | SessionStatus::Error
        | SessionStatus::Archived => None,
    }
}

/// Whether the page offers "Wake": an asleep session, or one whose wake failed.
pub fn offers_wake(status: SessionStatus) -> bool {
    matches!(status, SessionStatus::Asleep | SessionStatus::Error)
}

/// Whether the session page may ask for the panels (`GET .../workspace`), which
/// wakes an asleep session: not while it is asleep or going to sleep, nor before
/// its status is known (`None` cannot reach here: the caller asks only with one).
pub fn panels_may_open(status: SessionStatus) -> bool {
    !matches!(status, SessionStatus::Asleep | SessionStatus::Sleeping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wait_on_the_sandbox_says_what_happens() {
        for status in [
            SessionStatus::Provisioning,
            SessionStatus::Reconnecting,
            SessionStatus::Sleeping,
            SessionStatus::Asleep,
            SessionStatus::Waking,
        ] {
            assert!(waiting_note(status).is_some(), "{status:?}");
        }
        assert_eq!(waiting_note(SessionStatus::Idle), None);
        assert_eq!(
            waiting_note(SessionStatus::Sleeping),
            Some("saving the sandbox")
        );
        assert_eq!(
            waiting_note(SessionStatus::Waking),
            Some("restoring the sandbox")
        );
    }

    #[test]
    fn wake_is_offered_only_when_asleep_or_failed() {
        assert!(offers_wake(SessionStatus::Asleep));
        assert!(offers_wake(SessionStatus::Error));
        assert!(!offers_wake(SessionStatus::Idle));
        assert!(!offers_wake(SessionStatus::Waking));
        assert!(!offers_wake(SessionStatus::Archived));
    }

    #[test]
    fn the_page_opens_panels_only_on_a_session_awake_or_waking() {
        assert!(!panels_may_open(SessionStatus::Asleep));
        assert!(!panels_may_open(SessionStatus::Sleeping));
        for status in [
            SessionStatus::Idle,
            SessionStatus::Running,
            SessionStatus::Waking,
            SessionStatus::Provisioning,
        ] {
            assert!(panels_may_open(status), "{status:?}");
        }
    }
}
