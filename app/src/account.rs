//! Sign-in, teams, sharing and keys as plain data: what a role means on screen, the
//! checks the forms make before sending anything, and the few answer shapes the app
//! reads its own way. The bodies themselves are `nightshift_protocol::auth`'s types,
//! read leniently there (missing fields take defaults).
//!
//! Like [`crate::state`], nothing here knows Leptos or the DOM, so it is unit-tested
//! natively.

pub mod access;
pub mod answers;
pub mod forms;
pub mod signin;

pub use access::{SessionAccess, SessionRole, TeamRole};

/// When something expires, relative to `now_ms` (both ms since the epoch): "in 3d",
/// "in 5h", "expired 2m ago", or "never".
pub fn expires(at_ms: Option<i64>, now_ms: i64) -> String {
    let Some(at_ms) = at_ms else {
        return "never".to_owned();
    };
    if at_ms <= now_ms {
        return format!("expired {}", crate::format::relative_time(at_ms, now_ms));
    }
    let seconds = (at_ms - now_ms) / 1000;
    match seconds {
        0..60 => "in under a minute".to_owned(),
        60..3_600 => format!("in {}m", seconds / 60),
        3_600..86_400 => format!("in {}h", seconds / 3_600),
        _ => format!("in {}d", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::expires;

    #[test]
    fn expiry_reads_forward_and_backward() {
        let now = 1_000_000_000;
        assert_eq!(expires(None, now), "never");
        assert_eq!(expires(Some(now + 72 * 3_600_000), now), "in 3d");
        assert_eq!(expires(Some(now + 5 * 3_600_000 + 10), now), "in 5h");
        assert_eq!(expires(Some(now + 30_000), now), "in under a minute");
        assert_eq!(expires(Some(now - 120_000), now), "expired 2m ago");
    }
}
