//! The calendar periods spend is counted in: UTC days (the daily cap, the chart's
//! bars) and UTC months (the monthly caps). Times are ms since the epoch.

use nightshift_protocol::calendar::civil_from_days;
/// A day in ms.
pub const DAY_MS: i64 = 86_400_000;

/// The start of the UTC day holding `at_ms`.
pub fn day_start(at_ms: i64) -> i64 {
    at_ms.div_euclid(DAY_MS) * DAY_MS
}

/// The start of the UTC month holding `at_ms`.
pub fn month_start(at_ms: i64) -> i64 {
    let days = at_ms.div_euclid(DAY_MS);
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, month, 1) * DAY_MS
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T17:54:55Z.
    const NOW: i64 = 1_796_666_095_000;

    #[test]
    fn a_day_starts_at_utc_midnight() {
        assert_eq!(day_start(NOW), 1_796_601_600_000);
        assert_eq!(day_start(day_start(NOW)), day_start(NOW));
        assert_eq!(day_start(NOW) + DAY_MS, day_start(NOW + DAY_MS));
    }

    #[test]
    fn a_month_starts_on_its_first_day() {
        // 2026-12-01T00:00:00Z.
        assert_eq!(month_start(NOW), 1_796_083_200_000);
        // 2024-03-01, after a leap February.
        assert_eq!(month_start(1_709_337_600_000), 1_709_251_200_000);
        assert_eq!(month_start(0), 0);
    }

    #[test]
    fn days_round_trip_through_dates() {
        for days in [-800_000, -1, 0, 59, 60, 11_016, 20_794, 2_000_000] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(civil_from_days(20_794), (2026, 12, 7));
    }
}
