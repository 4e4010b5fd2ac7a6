//! Time limits for outbound calls and waits. Every call the Worker makes to another
//! service (the sandbox backend, D1, another Durable Object) goes through
//! [`with_timeout`], so a service that hangs costs a bounded wait, never a stuck
//! request.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures::future::{Either, select};
use worker::Delay;

/// The wait ran out before the work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut(pub Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within {} ms", self.0.as_millis())
    }
}

/// Runs `future` for at most `limit`.
pub async fn with_timeout<F: Future>(limit: Duration, future: F) -> Result<F::Output, TimedOut> {
    let future = pin!(future);
    match select(future, Delay::from(limit)).await {
        Either::Left((output, _)) => Ok(output),
        Either::Right(_) => Err(TimedOut(limit)),
    }
}
