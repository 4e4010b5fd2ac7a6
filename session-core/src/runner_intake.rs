//! Who may hold a session's runner link, and how much a runner may send over it.
//!
//! - **Admission** ([`admit`]): the link belongs to the first live connection. A
//!   newcomer with a valid token for the current sandbox is refused while the
//!   connection that holds the link is live (it was heard from within
//!   `silent_after_ms`; an honest runner pings every 15 s); it takes the link over
//!   once the holder is closed or silent. A copied token therefore gets nothing while
//!   the real runner is connected, and a runner that crashed and was restarted (its
//!   old socket closed or silent) gets the link back.
//! - **Size** ([`check_event_size`]): a runner event's frame may not exceed
//!   [`MAX_RUNNER_EVENT_BYTES`] and a tool's output inside it may not exceed
//!   `MAX_TOOL_OUTPUT_BYTES` (the runner cuts longer output; intake does not trust
//!   it to). An oversized event is taken in (acknowledged, so numbering goes on) but
//!   stored as an `error` event saying what was dropped.
//! - **Rate** ([`IntakeBucket`]): a token bucket per runner link; an event that finds
//!   it empty closes the link, unacknowledged, and the runner resends after its
//!   reconnect backoff, so an honest runner loses nothing and a flood is throttled.
//!
//! The clock is passed in (milliseconds). This module must not depend on a platform.

use nightshift_protocol::artifacts::is_artifact_id;
use nightshift_protocol::events::EventBody;
use nightshift_protocol::limits::MAX_TOOL_OUTPUT_BYTES;

/// The largest runner event frame taken in, in bytes of JSON text: room for a full
/// [`MAX_TOOL_OUTPUT_BYTES`] of output with JSON escaping, arguments and ids.
pub const MAX_RUNNER_EVENT_BYTES: usize = 256 * 1024;

/// A connection that holds the link counts as live until it has been silent this long.
pub const DEFAULT_SILENT_AFTER_MS: i64 = 45_000;

/// Events a runner may send in a burst.
pub const INTAKE_BURST: f64 = 2_000.0;
/// Events per second a runner may send in the long run.
pub const INTAKE_PER_SEC: f64 = 200.0;

/// The connection that holds the link, as the admission rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// When it last sent anything (or connected), in ms.
    pub last_seen_ms: i64,
}

/// What to do with a new runner connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Accept it; it replaces the holder, if any.
    Accept,
    /// Refuse it: a live connection holds the link.
    Refuse,
}

/// Decides whether a newcomer (whose token was already verified for this session's
/// current sandbox) may take the link from `holder` at `now_ms`.
pub fn admit(holder: Option<Holder>, now_ms: i64, silent_after_ms: i64) -> Admission {
    match holder {
        Some(holder) if now_ms.saturating_sub(holder.last_seen_ms) < silent_after_ms => {
            Admission::Refuse
        }
        _ => Admission::Accept,
    }
}

/// Why an event was refused by its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oversize {
    /// The frame is larger than [`MAX_RUNNER_EVENT_BYTES`].
    Frame { bytes: usize },
    /// A tool's output is larger than [`MAX_TOOL_OUTPUT_BYTES`].
    ToolOutput { bytes: usize },
    /// An image event whose reference is not an artifact id (it would become part
    /// of a URL the browser loads and a storage key the Worker reads).
    ImageReference,
}

impl Oversize {
    /// The sentence stored in place of the dropped event.
    pub fn message(&self) -> String {
        match self {
            Oversize::Frame { bytes } => format!(
                "The runner sent an event of {bytes} bytes; the limit is {MAX_RUNNER_EVENT_BYTES}, so it was dropped."
            ),
            Oversize::ToolOutput { bytes } => format!(
                "The runner sent tool output of {bytes} bytes; the limit is {MAX_TOOL_OUTPUT_BYTES}, so it was dropped."
            ),
            Oversize::ImageReference => {
                "The runner sent an image whose reference is not an artifact id, so it was dropped."
                    .to_string()
            }
        }
    }
}

/// Checks an event frame of `frame_bytes` carrying `event` against the limits.
pub fn check_event_size(frame_bytes: usize, event: &EventBody) -> Result<(), Oversize> {
    if frame_bytes > MAX_RUNNER_EVENT_BYTES {
        return Err(Oversize::Frame { bytes: frame_bytes });
    }
    if let EventBody::ToolCallFinished { output, .. } = event
        && output.len() > MAX_TOOL_OUTPUT_BYTES
    {
        return Err(Oversize::ToolOutput {
            bytes: output.len(),
        });
    }
    if let EventBody::Image { artifact, .. } = event
        && !is_artifact_id(artifact)
    {
        return Err(Oversize::ImageReference);
    }
    Ok(())
}

/// A token bucket: `burst` events at once, refilled at `per_sec`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntakeBucket {
    tokens: f64,
    at_ms: i64,
    burst: f64,
    per_sec: f64,
}

impl IntakeBucket {
    /// A full bucket at `now_ms`.
    pub fn new(now_ms: i64, burst: f64, per_sec: f64) -> Self {
        Self {
            tokens: burst,
            at_ms: now_ms,
            burst,
            per_sec,
        }
    }

    /// A full bucket with the default limits.
    pub fn with_defaults(now_ms: i64) -> Self {
        Self::new(now_ms, INTAKE_BURST, INTAKE_PER_SEC)
    }

    /// Takes one event at `now_ms`; false when the runner is over its rate.
    pub fn take(&mut self, now_ms: i64) -> bool {
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.at_ms = self.at_ms.max(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_keeps_the_link() {
        let holder = Holder {
            last_seen_ms: 1_000,
        };
        assert_eq!(admit(Some(holder), 1_000, 45_000), Admission::Refuse);
        assert_eq!(admit(Some(holder), 45_999, 45_000), Admission::Refuse);
    }

    #[test]
    fn a_silent_or_absent_holder_gives_the_link_up() {
        let holder = Holder {
            last_seen_ms: 1_000,
        };
        assert_eq!(admit(Some(holder), 46_000, 45_000), Admission::Accept);
        assert_eq!(admit(None, 0, 45_000), Admission::Accept);
    }

    #[test]
    fn oversized_events_are_named() {
        let small = EventBody::TextDelta { text: "hi".into() };
        assert_eq!(check_event_size(100, &small), Ok(()));
        assert_eq!(
            check_event_size(MAX_RUNNER_EVENT_BYTES + 1, &small),
            Err(Oversize::Frame {
                bytes: MAX_RUNNER_EVENT_BYTES + 1
            })
        );
        let output = "x".repeat(MAX_TOOL_OUTPUT_BYTES + 1);
        let big = EventBody::ToolCallFinished {
            call_id: "c".into(),
            output,
            is_error: false,
            truncated_bytes: 0,
        };
        let err = check_event_size(40_000, &big).unwrap_err();
        assert_eq!(
            err,
            Oversize::ToolOutput {
                bytes: MAX_TOOL_OUTPUT_BYTES + 1
            }
        );
        assert!(err.message().contains("32768"));
        let fits = EventBody::ToolCallFinished {
            call_id: "c".into(),
            output: "x".repeat(MAX_TOOL_OUTPUT_BYTES),
            is_error: false,
            truncated_bytes: 5,
        };
        assert_eq!(check_event_size(40_000, &fits), Ok(()));
    }

    #[test]
    fn an_image_must_name_an_artifact_id() {
        let image = |artifact: &str| EventBody::Image {
            call_id: None,
            artifact: artifact.into(),
            width: 10,
            height: 10,
        };
        let good = image("0f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(check_event_size(200, &good), Ok(()));
        let bad = image("../../other/artifacts/0f8e2a4c");
        assert_eq!(check_event_size(200, &bad), Err(Oversize::ImageReference));
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let mut bucket = IntakeBucket::new(0, 3.0, 2.0);
        assert!(bucket.take(0));
        assert!(bucket.take(0));
        assert!(bucket.take(0));
        assert!(!bucket.take(0));
        // Half a second refills one event at 2 per second.
        assert!(bucket.take(500));
        assert!(!bucket.take(500));
        // Never more than the burst, however long it rested.
        for _ in 0..3 {
            assert!(bucket.take(60_000));
        }
        assert!(!bucket.take(60_000));
        // A clock that goes back refills nothing.
        assert!(!bucket.take(10));
    }
}
