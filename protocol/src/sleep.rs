//! How long an idle session waits before it sleeps: the user's own time
//! (`GET`/`PUT /api/me/settings`), the team's maximum an admin sets
//! (`TeamSettings::sleep`), and the bounds both are held to.
//!
//! Times are milliseconds. A user's time is `null` (the deployment's default,
//! `SESSION_SLEEP_AFTER_MS`), `0` (never, unless the team has a maximum, which then
//! applies) or within [`SleepBounds`]. The team's maximum is `null` (none) or within
//! the same bounds; it caps every member's time, the default included. The
//! deployment's `SESSION_SLEEP_AFTER_MS=0` turns sleep off whatever anyone chose.
//! The effective time is decided in `nightshift_session::sleep_time`.

use serde::{Deserialize, Serialize};

/// The longest sleep time anyone can choose: 24 hours.
pub const MAX_SLEEP_AFTER_MS: u64 = 24 * 60 * 60 * 1000;

/// The shortest sleep time when the deployment does not say (`SESSION_SLEEP_MIN_MS`):
/// one minute.
pub const DEFAULT_MIN_SLEEP_AFTER_MS: u64 = 60 * 1000;

/// The range a chosen time (a user's, or the team's maximum) lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SleepBounds {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl SleepBounds {
    /// The bounds with the deployment's minimum (kept within `1..=MAX`).
    pub fn with_min(min_ms: u64) -> Self {
        SleepBounds {
            min_ms: min_ms.clamp(1, MAX_SLEEP_AFTER_MS),
            max_ms: MAX_SLEEP_AFTER_MS,
        }
    }

    fn within(&self, ms: u64) -> bool {
        (self.min_ms..=self.max_ms).contains(&ms)
    }

    /// A user's own time: `None` (the default), `0` (never) or within the bounds.
    pub fn check_user(&self, ms: Option<u64>) -> Result<(), String> {
        match ms {
            None | Some(0) => Ok(()),
            Some(ms) if self.within(ms) => Ok(()),
            Some(_) => Err(format!(
                "sleep_after_ms is null (the default), 0 (never) or {} to {}",
                self.min_ms, self.max_ms
            )),
        }
    }

    /// The team's maximum: `None` (no maximum) or within the bounds.
    pub fn check_team_max(&self, ms: Option<u64>) -> Result<(), String> {
        match ms {
            None => Ok(()),
            Some(ms) if self.within(ms) => Ok(()),
            Some(_) => Err(format!(
                "max_sleep_after_ms is null (no maximum) or {} to {}",
                self.min_ms, self.max_ms
            )),
        }
    }
}

/// `PUT /api/me/settings`: the whole of the user's own settings (a field left out is
/// `null`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutMySettings {
    /// `null`: the deployment's default; `0`: never; else milliseconds within
    /// [`MySettings::bounds`].
    #[serde(default)]
    pub sleep_after_ms: Option<u64>,
}

/// `GET`/`PUT /api/me/settings`: the user's own settings and what they are bounded by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MySettings {
    /// What the user chose (see [`PutMySettings::sleep_after_ms`]).
    pub sleep_after_ms: Option<u64>,
    /// The deployment's default (`SESSION_SLEEP_AFTER_MS`); `0`: sleep is off for the
    /// whole deployment.
    pub default_sleep_after_ms: u64,
    /// The team's maximum, if an admin set one.
    pub max_sleep_after_ms: Option<u64>,
    /// The time the user's sessions sleep after; `0`: never.
    pub effective_sleep_after_ms: u64,
    /// The range a chosen time lies in.
    pub bounds: SleepBounds,
}

/// `TeamSettings::sleep`: the team's maximum sleep time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSleep {
    /// `null`: no maximum beyond the deployment's; else milliseconds within the
    /// bounds (`MySettings::bounds`).
    #[serde(default)]
    pub max_sleep_after_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_time_is_the_default_never_or_within_the_bounds() {
        let bounds = SleepBounds::with_min(60_000);
        assert!(bounds.check_user(None).is_ok());
        assert!(bounds.check_user(Some(0)).is_ok());
        assert!(bounds.check_user(Some(60_000)).is_ok());
        assert!(bounds.check_user(Some(MAX_SLEEP_AFTER_MS)).is_ok());
        assert!(bounds.check_user(Some(59_999)).is_err());
        assert!(bounds.check_user(Some(MAX_SLEEP_AFTER_MS + 1)).is_err());
    }

    #[test]
    fn the_teams_maximum_is_none_or_within_the_bounds_never_zero() {
        let bounds = SleepBounds::with_min(1_000);
        assert!(bounds.check_team_max(None).is_ok());
        assert!(bounds.check_team_max(Some(1_000)).is_ok());
        assert!(bounds.check_team_max(Some(0)).is_err());
        assert!(bounds.check_team_max(Some(999)).is_err());
        assert!(bounds.check_team_max(Some(MAX_SLEEP_AFTER_MS + 1)).is_err());
    }

    #[test]
    fn a_deployments_minimum_stays_within_one_millisecond_and_the_maximum() {
        assert_eq!(SleepBounds::with_min(0).min_ms, 1);
        assert_eq!(SleepBounds::with_min(u64::MAX).min_ms, MAX_SLEEP_AFTER_MS);
    }
}
