//! Modal's short-lived auth token, sent as `x-modal-auth-token` on every call beside the
//! token pair, as both official clients do: fetched with `AuthTokenGet` (the one call
//! made without it), kept until five minutes before the expiry its JWT states (20
//! minutes when it states none, libmodal's default), then fetched again.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

/// Fetch a new token when the current one expires within this many seconds.
pub const REFRESH_WINDOW_SECS: i64 = 5 * 60;
/// The lifetime assumed for a token whose JWT has no `exp`.
pub const DEFAULT_LIFETIME_SECS: i64 = 20 * 60;

/// A token and when it expires (seconds since the epoch).
#[derive(Clone)]
pub struct AuthToken {
    pub token: String,
    pub expiry: i64,
}

impl AuthToken {
    /// The token Modal gave, with the expiry its JWT payload states.
    pub fn new(token: String, now: i64) -> AuthToken {
        let expiry = expiry_of(&token).unwrap_or(now + DEFAULT_LIFETIME_SECS);
        AuthToken { token, expiry }
    }

    /// Whether it is still good for a call made `now`.
    pub fn fresh(&self, now: i64) -> bool {
        self.expiry - now > REFRESH_WINDOW_SECS
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

/// The `exp` claim of a JWT, read without checking its signature (only Modal checks it).
fn expiry_of(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["exp"].as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        format!("{}.{}.sig", encode(r#"{"alg":"HS256"}"#), encode(claims))
    }

    #[test]
    fn the_expiry_comes_from_the_jwt() {
        let token = AuthToken::new(jwt(r#"{"exp": 2000}"#), 1000);
        assert_eq!(token.expiry, 2000);
        assert!(token.fresh(2000 - REFRESH_WINDOW_SECS - 1));
        assert!(!token.fresh(2000 - REFRESH_WINDOW_SECS));
    }

    #[test]
    fn a_token_without_an_expiry_lives_twenty_minutes() {
        assert_eq!(
            AuthToken::new(jwt("{}"), 1000).expiry,
            1000 + DEFAULT_LIFETIME_SECS
        );
        assert_eq!(
            AuthToken::new("opaque".into(), 1000).expiry,
            1000 + DEFAULT_LIFETIME_SECS
        );
    }
}
