//! The pause between two status polls (a sandbox starting, a template building), as
//! Railway's TypeScript SDK paces them: half a second before the first, doubling up
//! to five seconds, within an overall deadline. A build of minutes then costs tens of
//! requests, not thousands.

use std::time::Duration;

pub const FIRST_DELAY: Duration = Duration::from_millis(500);
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// The delays of successive polls: 0.5 s, 1 s, 2 s, 4 s, then 5 s each.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_DELAY }
    }
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }

    /// Sleeps the next delay, or fails with `late` when it would end past `deadline`.
    pub async fn wait(
        &mut self,
        deadline: tokio::time::Instant,
        late: impl FnOnce() -> crate::providers::ProviderError,
    ) -> Result<(), crate::providers::ProviderError> {
        let delay = self.next_delay();
        if tokio::time::Instant::now() + delay > deadline {
            return Err(late());
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_half_a_second_up_to_five() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..7)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }
}
