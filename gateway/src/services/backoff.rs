//! How long to wait before restarting a service that exited: doubling from half a
//! second up to 30 s, back to the start once a run lasted long enough to count as
//! healthy, so a crash loop costs little and a rare crash is repaired at once.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(500);
const LONGEST: Duration = Duration::from_secs(30);
/// A run at least this long resets the backoff.
const STABLE_RUN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Backoff {
    /// The wait after a run that lasted `ran`.
    pub fn after_exit(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE_RUN {
            self.next = FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(LONGEST);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_cap_and_reset_after_a_stable_run() {
        let mut backoff = Backoff::default();
        let short = Duration::from_secs(1);
        let waits: Vec<u64> = (0..8)
            .map(|_| backoff.after_exit(short).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(backoff.after_exit(Duration::from_secs(61)), FIRST);
        assert_eq!(backoff.after_exit(short), Duration::from_secs(1));
    }
}
