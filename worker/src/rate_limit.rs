//! Rate limits of the routes that write without a signed-in user (`/auth/*` sign-in
//! starts, callbacks and sign-out), and how often an API token's use is recorded.
//!
//! - A client is its IP from `CF-Connecting-IP` (set by Cloudflare's edge), else one
//!   fixed key (`local`: a local stack, where every caller is the developer).
//! - Each client gets `limit` such requests per fixed one-minute window, counted in
//!   D1 (`rate_limits`) with one atomic upsert; over it, 429 `rate_limited` and
//!   nothing else happens.
//! - An API token's `last_used_at` is written at most once per
//!   [`LAST_USED_RESOLUTION_MS`], so reading with a token does not write D1 each time.
//!
//! Must not depend on `worker`.

/// The counting window.
pub const WINDOW_MS: i64 = 60_000;
/// Sign-in writes per client per window, unless `AUTH_RATE_LIMIT_PER_MINUTE` says.
pub const DEFAULT_AUTH_LIMIT: i64 = 30;
/// `last_used_at` is kept to this resolution.
pub const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// The counter key of a client on `bucket` (e.g. `auth`).
pub fn client_key(bucket: &str, connecting_ip: Option<&str>) -> String {
    match connecting_ip.map(str::trim).filter(|ip| !ip.is_empty()) {
        Some(ip) => format!("{bucket}:ip:{ip}"),
        None => format!("{bucket}:local"),
    }
}

/// The start of the window `now_ms` falls in.
pub fn window_start(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(WINDOW_MS)
}

/// Whether the `count`th request of a window is within `limit`.
pub fn allowed(count: i64, limit: i64) -> bool {
    count <= limit
}

/// Seconds until the window of `now_ms` ends, for the refusal's message.
pub fn retry_after_secs(now_ms: i64) -> i64 {
    (window_start(now_ms) + WINDOW_MS - now_ms + 999) / 1000
}

/// Whether a token last used at `last_used_at` should have its use recorded now.
pub fn last_used_due(last_used_at: Option<i64>, now_ms: i64) -> bool {
    last_used_at.is_none_or(|last| now_ms - last >= LAST_USED_RESOLUTION_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_told_apart_by_ip_else_share_one_key() {
        assert_eq!(
            client_key("auth", Some("203.0.113.7")),
            "auth:ip:203.0.113.7"
        );
        assert_eq!(client_key("auth", Some("  ")), "auth:local");
        assert_eq!(client_key("auth", None), "auth:local");
    }

    #[test]
    fn windows_are_fixed_minutes() {
        assert_eq!(window_start(120_500), 120_000);
        assert_eq!(window_start(179_999), 120_000);
        assert_eq!(retry_after_secs(120_500), 60);
        assert_eq!(retry_after_secs(179_500), 1);
        assert!(allowed(30, 30));
        assert!(!allowed(31, 30));
    }

    #[test]
    fn token_use_is_recorded_once_a_minute() {
        assert!(last_used_due(None, 1_000));
        assert!(!last_used_due(Some(1_000), 60_999));
        assert!(last_used_due(Some(1_000), 61_000));
    }
}
