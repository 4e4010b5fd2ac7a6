//! The Worker's clock. All of `nightshift_session` takes time as an argument; this is
//! where the Worker reads it.

use worker::Date;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    i64::try_from(Date::now().as_millis()).unwrap_or(i64::MAX)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    Date::now().as_millis() / 1000
}
