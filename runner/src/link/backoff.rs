//! Reconnect delays: exponential backoff with jitter, so that many runners that lost
//! their Worker at the same moment do not all come back at the same moment.
//! A plain type; the randomness comes from the OS.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt: the step doubles from `first` up to `max`,
    /// and the delay is drawn uniformly from the upper half of the step.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .first
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            getrandom::u64().unwrap_or(0) % (spread + 1)
        };
        half + Duration::from_millis(jitter)
    }

    /// Starts over after a connection that worked.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_within_the_step() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let steps = [100u64, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for step in steps {
            let delay = backoff.next_delay().as_millis() as u64;
            assert!(
                delay >= step / 2 && delay <= step,
                "delay {delay} for step {step}"
            );
        }
    }

    #[test]
    fn reset_starts_from_the_first_delay_again() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        for _ in 0..10 {
            backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
