//! How long to wait before restarting a runner that exited: doubling from one second
//! up to thirty, and back to one second once a runner stayed up for a minute (it was
//! healthy; the next failure is a new incident, not the same crash loop).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    healthy_after: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }
}

impl Backoff {
    pub fn new(initial: Duration, cap: Duration, healthy_after: Duration) -> Backoff {
        Backoff {
            initial,
            cap,
            healthy_after,
            next: initial,
        }
    }

    /// The delay before the next start, given how long the last run lasted.
    pub fn delay_after(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.healthy_after {
            self.next = self.initial;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.cap);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(delays: &[Duration]) -> Vec<u64> {
        delays.iter().map(Duration::as_secs).collect()
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..8)
            .map(|_| backoff.delay_after(Duration::from_millis(10)))
            .collect();
        assert_eq!(secs(&delays), [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn a_healthy_run_resets_the_delay() {
        let mut backoff = Backoff::default();
        for _ in 0..4 {
            backoff.delay_after(Duration::ZERO);
        }
        assert_eq!(backoff.delay_after(Duration::from_secs(59)).as_secs(), 16);
        assert_eq!(backoff.delay_after(Duration::from_secs(60)).as_secs(), 1);
        assert_eq!(backoff.delay_after(Duration::ZERO).as_secs(), 2);
    }
}
