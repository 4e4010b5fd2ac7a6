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
}
