//! The session's one alarm: a Durable Object has a single alarm, so it is set for the
//! earliest of everything that waits on the clock, and the alarm handler looks at all
//! of them (an alarm set again replaces the earlier one).
//!
//! The caller gathers the deadlines ([`AlarmFacts`]) and sets the alarm that
//! [`next_alarm`] returns; what happens when it rings is decided elsewhere
//! ([`crate::abort::abort_step`], [`crate::presence::Presence::expire`], the queue,
//! [`crate::lifecycle::sleep_step`]).

/// Everything that waits on the clock, as instants in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmFacts {
    /// The time now.
    pub now: i64,
    /// When the open collect window at the front of the queue closes.
    pub collect_deadline: Option<i64>,
    /// When an abort the runner has not confirmed runs out of time.
    pub abort_deadline: Option<i64>,
    /// When the next presence lease runs out.
    pub lease_expiry: Option<i64>,
    /// When the open streams' viewers are next checked for access.
    pub stream_access_check: Option<i64>,
    /// When an idle session goes to sleep ([`crate::lifecycle::sleep_step`]).
    pub sleep_deadline: Option<i64>,
}

/// How long from `now` to set the alarm for, in milliseconds, or `None` when nothing
/// waits. A deadline already past rings at once (after 1 ms, since an alarm needs a
/// time still to come).
pub fn next_alarm(facts: &AlarmFacts) -> Option<i64> {
    let earliest = [
        facts.collect_deadline,
        facts.abort_deadline,
        facts.lease_expiry,
        facts.stream_access_check,
        facts.sleep_deadline,
    ]
    .into_iter()
    .flatten()
    .min()?;
    Some((earliest - facts.now).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: i64) -> AlarmFacts {
        AlarmFacts {
            now,
            ..AlarmFacts::default()
        }
    }

    #[test]
    fn nothing_waiting_sets_no_alarm() {
        assert_eq!(next_alarm(&at(1_000)), None);
    }

    #[test]
    fn each_deadline_alone_sets_the_alarm() {
        let now = at(1_000);
        let cases = [
            AlarmFacts {
                collect_deadline: Some(2_500),
                ..now
            },
            AlarmFacts {
                abort_deadline: Some(2_500),
                ..now
            },
            AlarmFacts {
                lease_expiry: Some(2_500),
                ..now
            },
            AlarmFacts {
                stream_access_check: Some(2_500),
                ..now
            },
            AlarmFacts {
                sleep_deadline: Some(2_500),
                ..now
            },
        ];
        for facts in cases {
            assert_eq!(next_alarm(&facts), Some(1_500), "{facts:?}");
        }
    }

    #[test]
    fn the_earliest_deadline_wins() {
        let facts = AlarmFacts {
            now: 1_000,
            collect_deadline: Some(2_500),
            abort_deadline: Some(16_000),
            lease_expiry: Some(1_200),
            stream_access_check: Some(6_000),
            sleep_deadline: Some(900_000),
        };
        assert_eq!(next_alarm(&facts), Some(200));
    }

    #[test]
    fn a_deadline_already_past_rings_at_once() {
        let facts = AlarmFacts {
            abort_deadline: Some(900),
            ..at(1_000)
        };
        assert_eq!(next_alarm(&facts), Some(1));
        let now = AlarmFacts {
            lease_expiry: Some(1_000),
            ..at(1_000)
        };
        assert_eq!(next_alarm(&now), Some(1));
    }
}
