//! Spend: what sessions cost and the caps an admin sets on it.
//!
//! Costs are integers of micro-USD (`cost_micro_usd`: 1 USD = 1,000,000) so sums
//! never drift; prices are USD per million tokens, as providers publish them. The
//! bodies here are `GET /api/usage`, `GET /api/sessions/{id}/usage`,
//! `GET`/`PUT /api/admin/spend` (caps and price overrides) and the `cap_reached`
//! event's cap (see docs/API.md "Spend").

use serde::{Deserialize, Serialize};

/// Which spend cap: per session, per user per day or month, per team per month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapScope {
    Session,
    UserDay,
    UserMonth,
    TeamMonth,
}

impl CapScope {
    pub const ALL: [CapScope; 4] = [
        CapScope::Session,
        CapScope::UserDay,
        CapScope::UserMonth,
        CapScope::TeamMonth,
    ];

    /// For people: "the session cap", "your daily cap", ...
    pub fn label(self) -> &'static str {
        match self {
            CapScope::Session => "the per-session cap",
            CapScope::UserDay => "the per-user daily cap",
            CapScope::UserMonth => "the per-user monthly cap",
            CapScope::TeamMonth => "the team's monthly cap",
        }
    }
}

/// What a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapMeasure {
    /// Cost in micro-USD.
    Cost,
    /// Input plus output tokens.
    Tokens,
}

/// One cap: a cost, a token count, both or neither (`None`: no cap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micro_usd: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

impl CapLimit {
    pub fn is_unset(&self) -> bool {
        self.cost_micro_usd.is_none() && self.tokens.is_none()
    }
}

/// Every cap the team's admins set (`GET`/`PUT /api/admin/spend`'s `caps`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendCaps {
    #[serde(default)]
    pub session: CapLimit,
    #[serde(default)]
    pub user_day: CapLimit,
    #[serde(default)]
    pub user_month: CapLimit,
    #[serde(default)]
    pub team_month: CapLimit,
}

impl SpendCaps {
    pub fn get(&self, scope: CapScope) -> CapLimit {
        match scope {
            CapScope::Session => self.session,
            CapScope::UserDay => self.user_day,
            CapScope::UserMonth => self.user_month,
            CapScope::TeamMonth => self.team_month,
        }
    }
}

/// A cap that is reached: which, what it counts, its value and what was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapHit {
    pub scope: CapScope,
    pub measure: CapMeasure,
    pub limit: u64,
    pub used: u64,
}

impl CapHit {
    /// The message of the `spend_cap_reached` refusal and the `cap_reached` event:
    /// which cap, its value, and who can raise it.
    pub fn message(&self) -> String {
        let (limit, used) = match self.measure {
            CapMeasure::Cost => (format_usd(self.limit), format_usd(self.used)),
            CapMeasure::Tokens => (
                format!("{} tokens", self.limit),
                format!("{} tokens", self.used),
            ),
        };
        format!(
            "Spend cap reached: {} is {limit} and {used} is spent. The team's admins can raise it in the admin settings.",
            self.scope.label()
        )
    }
}

/// `1_234_567` micro-USD as `"$1.23"` (`"$0.0012"` below a cent).
pub fn format_usd(micro_usd: u64) -> String {
    if micro_usd > 0 && micro_usd < 10_000 {
        format!("${:.4}", micro_usd as f64 / 1_000_000.0)
    } else {
        format!("${:.2}", micro_usd as f64 / 1_000_000.0)
    }
}

/// A model's price in USD per million tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// The model id the session names (matched exactly, then as a prefix of a dated
    /// id such as `claude-sonnet-4-5-20250929`).
    pub model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    /// Reading from the prompt cache; the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_usd_per_mtok: Option<f64>,
    /// Writing to the prompt cache; the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_usd_per_mtok: Option<f64>,
}

/// `GET /api/admin/spend`: the caps, the admin's price overrides, and the built-in
/// prices with the date they were read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendSettings {
    pub caps: SpendCaps,
    /// The admin's prices, which win over the built-in ones.
    #[serde(default)]
    pub prices: Vec<ModelPrice>,
    #[serde(default)]
    pub builtin_prices: Vec<ModelPrice>,
    /// When the built-in prices were read from the providers' pages (YYYY-MM-DD).
    #[serde(default)]
    pub builtin_prices_read_on: String,
}

/// `PUT /api/admin/spend`: fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpendSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<SpendCaps>,
    /// Replaces every override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<Vec<ModelPrice>>,
}

/// Sums over turns and sandbox time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSums {
    #[serde(default)]
    pub turns: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub cost_micro_usd: u64,
    /// Milliseconds a sandbox of these sessions existed.
    #[serde(default)]
    pub sandbox_ms: u64,
}

/// One bar of the chart: the sums of the period starting at `start` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBucket {
    pub start: i64,
    pub sums: UsageSums,
}

/// One user's or team's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageLine {
    /// A user id, or the team id for the team's line.
    pub id: String,
    pub name: String,
    pub sums: UsageSums,
}

/// `GET /api/usage?scope=me|team|user:<id>&from=&to=&bucket=day`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub scope: String,
    /// The period, ms since the epoch, `from` inclusive, `to` exclusive.
    pub from: i64,
    pub to: i64,
    pub totals: UsageSums,
    /// Per day (UTC), oldest first, only days with usage.
    #[serde(default)]
    pub buckets: Vec<UsageBucket>,
    /// Per user (scope `team`), most expensive first; empty otherwise.
    #[serde(default)]
    pub users: Vec<UsageLine>,
}

/// Whose usage `GET /api/usage` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageScope {
    /// The caller's own.
    Me,
    /// The whole team's, with a line per user (admins only).
    Team,
    /// One user's (admins, or the user themselves).
    User(String),
}

impl UsageScope {
    pub fn as_query(&self) -> String {
        match self {
            UsageScope::Me => "me".to_owned(),
            UsageScope::Team => "team".to_owned(),
            UsageScope::User(id) => format!("user:{id}"),
        }
    }
}

/// The longest period one report covers: a year and a day.
pub const MAX_REPORT_MS: i64 = 366 * 86_400_000;

/// `GET /api/usage`'s query, checked. `from` and `to` are ms since the epoch; when
/// left out the period is the 30 days ending with today (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub scope: UsageScope,
    pub from: i64,
    pub to: i64,
}

impl UsageQuery {
    /// Reads `scope`, `from`, `to` and `bucket` (only `day`) at time `now`; the error
    /// is the message of a 400 `invalid_request`.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: i64,
    ) -> Result<UsageQuery, String> {
        let day = 86_400_000;
        let mut scope = UsageScope::Me;
        let mut from = None;
        let mut to = None;
        for (key, value) in pairs {
            match key {
                "scope" => {
                    scope = match value {
                        "me" => UsageScope::Me,
                        "team" => UsageScope::Team,
                        _ => match value.strip_prefix("user:") {
                            Some(id)
                                if !id.is_empty()
                                    && id.len() <= 100
                                    && id.bytes().all(|b| {
                                        b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
                                    }) =>
                            {
                                UsageScope::User(id.to_owned())
                            }
                            _ => {
                                return Err("scope must be me, team or user:<id>".to_owned());
                            }
                        },
                    }
                }
                "from" | "to" => {
                    let ms: i64 = value
                        .parse()
                        .ok()
                        .filter(|ms| (0..=4_102_444_800_000).contains(ms))
                        .ok_or_else(|| format!("{key} must be a time in ms since the epoch"))?;
                    if key == "from" {
                        from = Some(ms);
                    } else {
                        to = Some(ms);
                    }
                }
                "bucket" if value == "day" => {}
                "bucket" => return Err("bucket must be day".to_owned()),
                _ => return Err(format!("unknown parameter {key}")),
            }
        }
        let to = to.unwrap_or_else(|| now.div_euclid(day) * day + day);
        let from = from.unwrap_or(to - 30 * day);
        if from >= to {
            return Err("from must be before to".to_owned());
        }
        if to - from > MAX_REPORT_MS {
            return Err("a report covers at most 366 days".to_owned());
        }
        Ok(UsageQuery { scope, from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_queries_parse_and_bad_ones_say_why() {
        let now = 1_796_666_095_000;
        let query = UsageQuery::parse([], now).unwrap();
        assert_eq!(query.scope, UsageScope::Me);
        assert_eq!(query.to, 1_796_601_600_000 + 86_400_000);
        assert_eq!(query.to - query.from, 30 * 86_400_000);
        let query = UsageQuery::parse(
            [
                ("scope", "user:u-1"),
                ("from", "0"),
                ("to", "1000"),
                ("bucket", "day"),
            ],
            now,
        )
        .unwrap();
        assert_eq!(
            query,
            UsageQuery {
                scope: UsageScope::User("u-1".into()),
                from: 0,
                to: 1000
            }
        );
        for bad in [
            vec![("scope", "everyone")],
            vec![("scope", "user:")],
            vec![("scope", "user:a/b")],
            vec![("from", "yesterday")],
            vec![("from", "-5")],
            vec![("from", "10"), ("to", "10")],
            vec![("from", "0"), ("to", "40000000000")],
            vec![("bucket", "hour")],
            vec![("colour", "red")],
        ] {
            assert!(UsageQuery::parse(bad.clone(), now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cap_hit_says_which_cap_its_value_and_who_can_raise_it() {
        let hit = CapHit {
            scope: CapScope::Session,
            measure: CapMeasure::Cost,
            limit: 500_000,
            used: 512_000,
        };
        let message = hit.message();
        assert!(message.contains("per-session cap"), "{message}");
        assert!(message.contains("$0.50"), "{message}");
        assert!(message.contains("admins"), "{message}");
        let tokens = CapHit {
            measure: CapMeasure::Tokens,
            ..hit
        };
        assert!(tokens.message().contains("500000 tokens"));
    }

    #[test]
    fn caps_read_leniently_and_leave_unset_caps_out() {
        let caps: SpendCaps =
            serde_json::from_value(serde_json::json!({"session": {"tokens": 10}})).unwrap();
        assert_eq!(caps.session.tokens, Some(10));
        assert!(caps.team_month.is_unset());
        let json = serde_json::to_value(caps).unwrap();
        assert_eq!(json["user_day"], serde_json::json!({}));
    }

    #[test]
    fn small_costs_keep_their_digits() {
        assert_eq!(format_usd(1_234_567), "$1.23");
        assert_eq!(format_usd(1_200), "$0.0012");
        assert_eq!(format_usd(0), "$0.00");
    }
}
