//! Session-scoped runner tokens: what a runner presents to open its session's link.
//!
//! Format: `v2.<session_id>.<generation>.<expires_unix>.<mac>`, where `mac` is the
//! unpadded base64url HMAC-SHA256 of `v2|<session_id>|<generation>|<expires_unix>`
//! under the deployment's `RUNNER_TOKEN_SECRET`. A token names its session, the
//! sandbox generation it was issued for and its expiry in clear text and proves all
//! three with the MAC; it never contains the secret.
//!
//! The generation is a counter the session's `SessionAgent` bumps every time it
//! requests a sandbox (and whenever a sandbox is given up), so a token dies with the
//! sandbox it was issued for: the `SessionAgent` refuses any token whose generation is
//! not its current one ([`RunnerTokenClaims::check_generation`]). Tokens are
//! short-lived and renewed over the link, to the connection that holds the link only,
//! once past half their life.
//!
//! The clock is passed in (Unix seconds). This module must not depend on a platform.

use crate::signing::{MacRefusal, Signer, canonical_u64};

const VERSION: &str = "v2";

/// The shortest secret accepted, in bytes. Anything shorter is guessable.
pub const MIN_SECRET_BYTES: usize = crate::signing::MIN_KEY_BYTES;

/// Why a token could not be issued or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the runner token secret is shorter than {MIN_SECRET_BYTES} bytes")]
    WeakSecret,
    #[error("a session id must be non-empty and must not contain '.'")]
    InvalidSessionId,
    #[error("the token is not a runner token")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token is for another session")]
    WrongSession,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for a sandbox this session no longer has")]
    StaleGeneration,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerTokenClaims {
    pub session_id: String,
    /// The sandbox generation the token was issued for.
    pub generation: u64,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
}

impl RunnerTokenClaims {
    /// Refuses a token issued for another sandbox than the session's current one.
    pub fn check_generation(&self, current: u64) -> Result<(), TokenError> {
        if self.generation == current {
            Ok(())
        } else {
            Err(TokenError::StaleGeneration)
        }
    }

    /// True once less than half of a `ttl_secs` lifetime is left: time to hand the
    /// runner a fresh token, well before the old one stops working.
    pub fn needs_renewal(&self, now: u64, ttl_secs: u64) -> bool {
        needs_renewal(self.expires_at, now, ttl_secs)
    }
}

/// [`RunnerTokenClaims::needs_renewal`] for a bare expiry.
pub fn needs_renewal(expires_at: u64, now: u64, ttl_secs: u64) -> bool {
    expires_at.saturating_sub(now).saturating_mul(2) < ttl_secs
}

/// Issues and verifies runner tokens with one secret.
#[derive(Clone)]
pub struct RunnerTokenKey {
    signer: Signer,
}

impl std::fmt::Debug for RunnerTokenKey {
    // The secret never reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunnerTokenKey(<redacted>)")
    }
}

impl RunnerTokenKey {
    pub fn new(secret: &[u8]) -> Result<Self, TokenError> {
        let signer = Signer::new(secret).ok_or(TokenError::WeakSecret)?;
        Ok(Self { signer })
    }

    /// A token for `session_id`'s sandbox `generation`, valid for `ttl_secs` from `now`.
    pub fn issue(
        &self,
        session_id: &str,
        generation: u64,
        now: u64,
        ttl_secs: u64,
    ) -> Result<String, TokenError> {
        check_session_id(session_id)?;
        let expires_at = now.saturating_add(ttl_secs);
        let mac = self
            .signer
            .tag_base64(&signed_text(session_id, generation, expires_at));
        Ok(format!(
            "{VERSION}.{session_id}.{generation}.{expires_at}.{mac}"
        ))
    }

    /// Checks that `token` is genuine, names `session_id` and has not expired at `now`.
    pub fn verify(
        &self,
        token: &str,
        session_id: &str,
        now: u64,
    ) -> Result<RunnerTokenClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(version), Some(token_session), Some(generation), Some(expires), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        if version != VERSION || token_session.is_empty() {
            return Err(TokenError::Malformed);
        }
        let generation = canonical_u64(generation).ok_or(TokenError::Malformed)?;
        let expires_at = canonical_u64(expires).ok_or(TokenError::Malformed)?;
        self.signer
            .verify_base64(&signed_text(token_session, generation, expires_at), mac)
            .map_err(|refusal| match refusal {
                MacRefusal::Malformed => TokenError::Malformed,
                MacRefusal::Mismatch => TokenError::BadSignature,
            })?;
        if token_session != session_id {
            return Err(TokenError::WrongSession);
        }
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(RunnerTokenClaims {
            session_id: token_session.to_owned(),
            generation,
            expires_at,
        })
    }
}

/// What the MAC covers: every claim, `|`-separated.
fn signed_text(session_id: &str, generation: u64, expires_at: u64) -> String {
    format!("{VERSION}|{session_id}|{generation}|{expires_at}")
}

fn check_session_id(session_id: &str) -> Result<(), TokenError> {
    if session_id.is_empty() || session_id.contains('.') {
        Err(TokenError::InvalidSessionId)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn key() -> RunnerTokenKey {
        RunnerTokenKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_fresh_token_verifies_for_its_session() {
        let token = key().issue("s1", 7, NOW, 3600).unwrap();
        assert!(token.starts_with("v2.s1.7.1700003600."));
        let claims = key().verify(&token, "s1", NOW + 10).unwrap();
        assert_eq!(
            claims,
            RunnerTokenClaims {
                session_id: "s1".into(),
                generation: 7,
                expires_at: NOW + 3600
            }
        );
        assert_eq!(claims.check_generation(7), Ok(()));
    }

    #[test]
    fn the_token_never_contains_the_secret() {
        let token = key().issue("s1", 7, NOW, 3600).unwrap();
        assert!(!token.contains("0123456789abcdef"));
        assert!(!format!("{:?}", key()).contains("0123456789abcdef"));
    }

    #[test]
    fn another_session_is_refused() {
        let token = key().issue("s1", 7, NOW, 3600).unwrap();
        assert_eq!(
            key().verify(&token, "s2", NOW),
            Err(TokenError::WrongSession)
        );
    }

    #[test]
    fn expiry_is_enforced() {
        let token = key().issue("s1", 7, NOW, 60).unwrap();
        assert!(key().verify(&token, "s1", NOW + 59).is_ok());
        assert_eq!(
            key().verify(&token, "s1", NOW + 60),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_dies_with_its_sandbox_generation() {
        let token = key().issue("s1", 3, NOW, 3600).unwrap();
        let claims = key().verify(&token, "s1", NOW).unwrap();
        assert_eq!(claims.check_generation(3), Ok(()));
        assert_eq!(claims.check_generation(4), Err(TokenError::StaleGeneration));
        assert_eq!(claims.check_generation(2), Err(TokenError::StaleGeneration));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let token = key().issue("s1", 7, NOW, 60).unwrap();
        let longer = token.replace(".1700000060.", ".1700009999.");
        assert_eq!(
            key().verify(&longer, "s1", NOW),
            Err(TokenError::BadSignature)
        );
        let other_generation = token.replacen("v2.s1.7.", "v2.s1.8.", 1);
        assert_eq!(
            key().verify(&other_generation, "s1", NOW),
            Err(TokenError::BadSignature)
        );
        let other_session = token.replacen("v2.s1.", "v2.s2.", 1);
        assert_eq!(
            key().verify(&other_session, "s2", NOW),
            Err(TokenError::BadSignature)
        );
        let other_key = RunnerTokenKey::new(b"another-secret-of-enough-length").unwrap();
        assert_eq!(
            other_key.verify(&token, "s1", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for token in [
            "",
            "v2",
            "v2.s1.5",
            "v2.s1.5.abc",
            "v1.s1.1.5.abc",
            "v2..1.5.abc",
            "v2.s1.1.x.abc",
            "v2.s1.x.5.abc",
            "v2.s1.1.05.abc",
            "v2.s1.01.5.abc",
            "v2.s1.1.+5.abc",
            "v2.s1.1.5.!!!",
            "v2.s1.1.5.abc.extra",
        ] {
            assert_eq!(
                key().verify(token, "s1", NOW),
                Err(TokenError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn weak_secrets_and_bad_session_ids_are_refused() {
        assert_eq!(
            RunnerTokenKey::new(b"short").unwrap_err(),
            TokenError::WeakSecret
        );
        assert_eq!(
            key().issue("a.b", 7, NOW, 60),
            Err(TokenError::InvalidSessionId)
        );
        assert_eq!(
            key().issue("", 7, NOW, 60),
            Err(TokenError::InvalidSessionId)
        );
    }

    #[test]
    fn renewal_is_due_past_half_the_life() {
        let claims = RunnerTokenClaims {
            session_id: "s".into(),
            generation: 1,
            expires_at: NOW + 3600,
        };
        assert!(!claims.needs_renewal(NOW, 3600));
        assert!(!claims.needs_renewal(NOW + 1800, 3600));
        assert!(claims.needs_renewal(NOW + 1801, 3600));
        assert!(claims.needs_renewal(NOW + 4000, 3600));
    }
}
