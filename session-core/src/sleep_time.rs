//! The time an idle session waits before it sleeps: its owner's own time clamped to
//! the team's maximum, defaulting to the deployment's (`SESSION_SLEEP_AFTER_MS`).
//!
//! The `SessionAgent` keeps the owner's time and the team's maximum as a
//! [`SleepTime`] in its storage (`meta` key `sleep`) and decides with
//! [`SleepTime::effective_ms`] at every alarm, so the deployment's default is the
//! one in force now. The bounds a chosen time is held to are
//! `nightshift_protocol::sleep`'s; this module trusts values that passed them.
//!
//! The rules, in order:
//! - the deployment's `0` turns sleep off, whatever anyone chose;
//! - no time of the owner's: the deployment's default;
//! - the owner's `0` is "never", which a team maximum turns into that maximum;
//! - any other time is capped by the team's maximum (the default too).

use serde::{Deserialize, Serialize};

/// What the session's sleep time is decided from, as last read from D1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SleepTime {
    /// The owner's own time (ms; `0` = never), if they chose one.
    pub user_ms: Option<u64>,
    /// The team's maximum (ms), if an admin set one.
    pub team_max_ms: Option<u64>,
}

impl SleepTime {
    /// The time (ms) an idle session of this owner sleeps after, given the
    /// deployment's default; `0` means it never sleeps.
    pub fn effective_ms(&self, deployment_ms: i64) -> i64 {
        effective_sleep_after_ms(deployment_ms, self.user_ms, self.team_max_ms)
    }
}

/// See the module's rules. `0` (or less, from the deployment) means never.
pub fn effective_sleep_after_ms(
    deployment_ms: i64,
    user_ms: Option<u64>,
    team_max_ms: Option<u64>,
) -> i64 {
    if deployment_ms <= 0 {
        return 0;
    }
    let to_ms = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX);
    let chosen = user_ms.map_or(deployment_ms, to_ms);
    // A maximum of 0 would mean "sleep at once", which no admin can set; it is read
    // as no maximum rather than trusted.
    match team_max_ms.filter(|max| *max > 0).map(to_ms) {
        None => chosen,
        Some(max) if chosen == 0 => max,
        Some(max) => chosen.min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIFTEEN_MINUTES: i64 = 15 * 60 * 1000;

    #[test]
    fn no_choice_is_the_deployments_default() {
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, None, None),
            FIFTEEN_MINUTES
        );
        assert_eq!(SleepTime::default().effective_ms(2_500), 2_500);
    }

    #[test]
    fn the_owners_time_replaces_the_default_longer_or_shorter() {
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, Some(60_000), None),
            60_000
        );
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, Some(3_600_000), None),
            3_600_000
        );
    }

    #[test]
    fn the_teams_maximum_caps_the_owners_time_and_the_default() {
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, Some(3_600_000), Some(600_000)),
            600_000
        );
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, None, Some(600_000)),
            600_000
        );
        // A time under the maximum stays as chosen.
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, Some(120_000), Some(600_000)),
            120_000
        );
    }

    #[test]
    fn never_holds_only_while_the_team_has_no_maximum() {
        assert_eq!(effective_sleep_after_ms(FIFTEEN_MINUTES, Some(0), None), 0);
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, Some(0), Some(600_000)),
            600_000
        );
    }

    #[test]
    fn the_deployment_turning_sleep_off_wins_over_every_choice() {
        assert_eq!(effective_sleep_after_ms(0, Some(60_000), Some(600_000)), 0);
        assert_eq!(effective_sleep_after_ms(-5, None, Some(600_000)), 0);
    }

    #[test]
    fn a_maximum_of_zero_is_no_maximum_and_huge_values_do_not_wrap() {
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, Some(60_000), Some(0)),
            60_000
        );
        assert_eq!(
            effective_sleep_after_ms(FIFTEEN_MINUTES, Some(u64::MAX), None),
            i64::MAX
        );
    }
}
