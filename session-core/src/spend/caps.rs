//! Which spend cap is reached. A cap is reached once what was spent in its scope
//! and period is at or over its value: a prompt is then refused before it starts,
//! and a running turn stops at the step that got there.

use nightshift_protocol::usage::{CapHit, CapMeasure, CapScope, SpendCaps};

/// What was spent in one cap's scope and period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub cost_micro_usd: u64,
    pub tokens: u64,
}

/// What was spent in each cap's scope: the session over its life, the user today
/// and this month, the team this month. A running turn's steps are counted in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendSoFar {
    pub session: Spent,
    pub user_day: Spent,
    pub user_month: Spent,
    pub team_month: Spent,
}

impl SpendSoFar {
    pub fn get(&self, scope: CapScope) -> Spent {
        match scope {
            CapScope::Session => self.session,
            CapScope::UserDay => self.user_day,
            CapScope::UserMonth => self.user_month,
            CapScope::TeamMonth => self.team_month,
        }
    }
}

/// The first cap reached, narrowest scope first (session, user per day, per month,
/// team), cost before tokens; `None` while every cap has room.
pub fn cap_reached(caps: &SpendCaps, spent: &SpendSoFar) -> Option<CapHit> {
    CapScope::ALL.into_iter().find_map(|scope| {
        let limit = caps.get(scope);
        let used = spent.get(scope);
        let hit = |measure, limit: Option<u64>, used: u64| {
            limit.filter(|&limit| used >= limit).map(|limit| CapHit {
                scope,
                measure,
                limit,
                used,
            })
        };
        hit(CapMeasure::Cost, limit.cost_micro_usd, used.cost_micro_usd)
            .or_else(|| hit(CapMeasure::Tokens, limit.tokens, used.tokens))
    })
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::usage::CapLimit;

    use super::*;

    fn spent(cost: u64, tokens: u64) -> Spent {
        Spent {
            cost_micro_usd: cost,
            tokens,
        }
    }

    #[test]
    fn no_caps_never_stop_anything() {
        let all = SpendSoFar {
            session: spent(u64::MAX, u64::MAX),
            ..SpendSoFar::default()
        };
        assert_eq!(cap_reached(&SpendCaps::default(), &all), None);
    }

    #[test]
    fn a_cap_is_reached_at_its_value_not_before() {
        let caps = SpendCaps {
            session: CapLimit {
                cost_micro_usd: Some(1000),
                tokens: None,
            },
            ..SpendCaps::default()
        };
        let below = SpendSoFar {
            session: spent(999, 10_000),
            ..SpendSoFar::default()
        };
        assert_eq!(cap_reached(&caps, &below), None);
        let at = SpendSoFar {
            session: spent(1000, 0),
            ..SpendSoFar::default()
        };
        assert_eq!(
            cap_reached(&caps, &at),
            Some(CapHit {
                scope: CapScope::Session,
                measure: CapMeasure::Cost,
                limit: 1000,
                used: 1000
            })
        );
    }

    #[test]
    fn tokens_count_when_cost_has_room() {
        let caps = SpendCaps {
            user_day: CapLimit {
                cost_micro_usd: Some(1_000_000),
                tokens: Some(500),
            },
            ..SpendCaps::default()
        };
        let spent = SpendSoFar {
            user_day: spent(10, 600),
            ..SpendSoFar::default()
        };
        let hit = cap_reached(&caps, &spent).unwrap();
        assert_eq!(
            (hit.scope, hit.measure),
            (CapScope::UserDay, CapMeasure::Tokens)
        );
        assert_eq!((hit.limit, hit.used), (500, 600));
    }

    #[test]
    fn the_narrowest_reached_cap_is_named() {
        let cap = CapLimit {
            cost_micro_usd: None,
            tokens: Some(100),
        };
        let caps = SpendCaps {
            session: CapLimit::default(),
            user_day: cap,
            user_month: cap,
            team_month: cap,
        };
        let spent = SpendSoFar {
            session: spent(0, 150),
            user_day: spent(0, 50),
            user_month: spent(0, 150),
            team_month: spent(0, 150),
        };
        assert_eq!(
            cap_reached(&caps, &spent).map(|hit| hit.scope),
            Some(CapScope::UserMonth)
        );
    }
}
