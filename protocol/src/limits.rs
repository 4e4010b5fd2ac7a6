//! Limits that both sides of a wire must agree on.

/// The largest prompt a user may send, in bytes of UTF-8 (64 KiB). Larger prompts are
/// refused with [`crate::ErrorCode::MessageTooLarge`] and nothing is stored.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The largest request body the Worker reads for any JSON route (256 KiB).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The longest session title, in characters; longer titles are refused.
pub const MAX_TITLE_CHARS: usize = 200;

/// Tool output kept inline in an event, in bytes; the rest is cut and the event says
/// how much was dropped.
pub const MAX_TOOL_OUTPUT_BYTES: usize = 32 * 1024;

/// How many unacknowledged events a runner keeps for resending after a reconnect.
pub const RUNNER_OUTBOX_CAPACITY: usize = 10_000;
