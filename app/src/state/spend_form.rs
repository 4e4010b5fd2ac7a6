//! The admin's spend-cap form as plain data: per cap (session, user per day, user
//! per month, team per month) a USD amount and a token count, each optional. Blank
//! means no cap; anything else must be a non-negative number.

use nightshift_protocol::usage::{CapLimit, CapScope, SpendCaps};

/// The form's text per cap, in `CapScope::ALL`'s order: `[usd, tokens]`.
pub type CapFields = [[String; 2]; 4];

/// The form's text for `caps` (USD with up to 6 decimals, trailing zeros cut).
pub fn fields(caps: &SpendCaps) -> CapFields {
    CapScope::ALL.map(|scope| {
        let limit = caps.get(scope);
        [
            limit.cost_micro_usd.map(usd_text).unwrap_or_default(),
            limit.tokens.map(|t| t.to_string()).unwrap_or_default(),
        ]
    })
}

fn usd_text(micro: u64) -> String {
    let text = format!("{:.6}", micro as f64 / 1_000_000.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Reads the form: the caps, or what is wrong with which field.
pub fn parse(fields: &CapFields) -> Result<SpendCaps, String> {
    let mut limits = [CapLimit::default(); 4];
    for (index, scope) in CapScope::ALL.into_iter().enumerate() {
        let [usd, tokens] = &fields[index];
        let usd = usd.trim().trim_start_matches('$');
        let cost_micro_usd = if usd.is_empty() {
            None
        } else {
            let value: f64 = usd
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v <= 1e9)
                .ok_or_else(|| {
                    format!("{}: the amount must be a number of dollars", scope.label())
                })?;
            Some((value * 1_000_000.0).round() as u64)
        };
        let tokens = tokens.trim();
        let tokens = if tokens.is_empty() {
            None
        } else {
            Some(
                tokens
                    .parse::<u64>()
                    .map_err(|_| format!("{}: tokens must be a whole number", scope.label()))?,
            )
        };
        limits[index] = CapLimit {
            cost_micro_usd,
            tokens,
        };
    }
    let [session, user_day, user_month, team_month] = limits;
    Ok(SpendCaps {
        session,
        user_day,
        user_month,
        team_month,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_round_trip_through_the_form() {
        let caps = SpendCaps {
            session: CapLimit {
                cost_micro_usd: Some(1_500_000),
                tokens: None,
            },
            team_month: CapLimit {
                cost_micro_usd: Some(10_000),
                tokens: Some(5000),
            },
            ..SpendCaps::default()
        };
        let text = fields(&caps);
        assert_eq!(text[0], ["1.5".to_owned(), String::new()]);
        assert_eq!(text[3], ["0.01".to_owned(), "5000".to_owned()]);
        assert_eq!(parse(&text), Ok(caps));
    }

    #[test]
    fn bad_fields_say_which_cap() {
        let mut text = fields(&SpendCaps::default());
        text[1][1] = "lots".to_owned();
        assert!(parse(&text).unwrap_err().contains("daily"));
        text[1][1] = String::new();
        text[2][0] = "-3".to_owned();
        assert!(parse(&text).unwrap_err().contains("monthly"));
        text[2][0] = "$2".to_owned();
        assert_eq!(
            parse(&text).unwrap().user_month.cost_micro_usd,
            Some(2_000_000)
        );
    }
}
