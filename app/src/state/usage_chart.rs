//! The usage chart as geometry: one bar per UTC day of the period (days without
//! usage are empty bars, so the x axis is time), scaled to the tallest day. The
//! component only draws these rectangles as SVG; every number is decided here.

use nightshift_protocol::usage::{UsageBucket, format_usd};

const DAY_MS: i64 = 86_400_000;

/// What the bars measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Cost,
    Tokens,
}

/// One day's bar in a `width` x `height` drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub day_start: i64,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub value: u64,
    /// The bar's tooltip: the day and its value.
    pub label: String,
}

/// A day's value for `measure`.
pub fn value(bucket: &UsageBucket, measure: Measure) -> u64 {
    match measure {
        Measure::Cost => bucket.sums.cost_micro_usd,
        Measure::Tokens => bucket.sums.input_tokens + bucket.sums.output_tokens,
    }
}

/// `value` for people.
pub fn value_text(value: u64, measure: Measure) -> String {
    match measure {
        Measure::Cost => format_usd(value),
        Measure::Tokens => format!("{value} tokens"),
    }
}

/// The bars of the days in `[from, to)` (at most 400), from the report's buckets.
pub fn bars(
    buckets: &[UsageBucket],
    from: i64,
    to: i64,
    measure: Measure,
    width: f64,
    height: f64,
) -> Vec<Bar> {
    let first = from.div_euclid(DAY_MS);
    let last = (to - 1).div_euclid(DAY_MS);
    let days = (last - first + 1).clamp(1, 400);
    let values: Vec<(i64, u64)> = (0..days)
        .map(|offset| {
            let day_start = (first + offset) * DAY_MS;
            let value = buckets
                .iter()
                .filter(|bucket| bucket.start.div_euclid(DAY_MS) == first + offset)
                .map(|bucket| value(bucket, measure))
                .sum();
            (day_start, value)
        })
        .collect();
    let tallest = values.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let slot = width / days as f64;
    values
        .into_iter()
        .enumerate()
        .map(|(index, (day_start, value))| {
            let bar_height = height * value as f64 / tallest as f64;
            Bar {
                day_start,
                x: index as f64 * slot + slot * 0.1,
                y: height - bar_height,
                width: slot * 0.8,
                height: bar_height,
                value,
                label: format!("{}: {}", day_text(day_start), value_text(value, measure)),
            }
        })
        .collect()
}

/// `YYYY-MM-DD` of the UTC day starting at `day_start`.
pub fn day_text(day_start: i64) -> String {
    let days = day_start.div_euclid(DAY_MS);
    let (year, month, day) = nightshift_protocol::calendar::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Milliseconds as "3 h 20 min", "12 min", "40 s".
pub fn duration_text(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::usage::UsageSums;

    use super::*;

    fn bucket(day: i64, cost: u64) -> UsageBucket {
        UsageBucket {
            start: day * DAY_MS,
            sums: UsageSums {
                cost_micro_usd: cost,
                ..UsageSums::default()
            },
        }
    }

    #[test]
    fn every_day_of_the_period_gets_a_bar_scaled_to_the_tallest() {
        let from = 20_000 * DAY_MS;
        let to = from + 5 * DAY_MS;
        let bars = bars(
            &[bucket(20_001, 500), bucket(20_003, 1000)],
            from,
            to,
            Measure::Cost,
            500.0,
            100.0,
        );
        assert_eq!(bars.len(), 5);
        let heights: Vec<f64> = bars.iter().map(|bar| bar.height).collect();
        assert_eq!(heights, vec![0.0, 50.0, 0.0, 100.0, 0.0]);
        assert_eq!(bars[3].y, 0.0);
        assert_eq!(bars[1].x, 110.0);
        assert!(bars[3].label.ends_with("$0.0010"), "{}", bars[3].label);
    }

    #[test]
    fn an_empty_period_draws_flat_bars() {
        let bars = bars(&[], 0, 3 * DAY_MS, Measure::Tokens, 30.0, 10.0);
        assert_eq!(bars.len(), 3);
        assert!(bars.iter().all(|bar| bar.height == 0.0 && bar.y == 10.0));
    }

    #[test]
    fn days_and_durations_read_plainly() {
        assert_eq!(day_text(20_794 * DAY_MS), "2026-12-07");
        assert_eq!(day_text(0), "1970-01-01");
        assert_eq!(duration_text(42_000), "42 s");
        assert_eq!(duration_text(720_000), "12 min");
        assert_eq!(duration_text(12_000_000), "3 h 20 min");
    }
}
