//! The signing steps the three token kinds share (runner tokens, gateway tokens and
//! panel capabilities): an HMAC-SHA256 key checked for length once, per-session keys
//! derived under a context label, MACs compared in constant time, and numbers that
//! parse only from their one canonical spelling.
//!
//! Each token module keeps its own format and its own error type; this module only
//! says *whether* something matched, so a token kind cannot drift from the others in
//! how it compares or parses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret or key accepted, in bytes. Anything shorter is guessable.
pub const MIN_KEY_BYTES: usize = 16;

/// An HMAC-SHA256 key, keyed once and cloned for every message.
#[derive(Clone)]
pub(crate) struct Signer {
    keyed: HmacSha256,
}

impl std::fmt::Debug for Signer {
    // The key never reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

/// Why a presented MAC was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacRefusal {
    /// Not base64url at all.
    Malformed,
    /// Well-formed, but not this message's MAC under this key.
    Mismatch,
}

impl Signer {
    /// `None` for a key shorter than [`MIN_KEY_BYTES`].
    pub fn new(key: &[u8]) -> Option<Self> {
        if key.len() < MIN_KEY_BYTES {
            return None;
        }
        HmacSha256::new_from_slice(key)
            .ok()
            .map(|keyed| Self { keyed })
    }

    /// The full MAC of `parts`, fed in order.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A key of its own for `id` under `context` (`HMAC(key, context + id)`), so keys
    /// derived for different purposes or ids never coincide.
    pub fn derive(&self, context: &str, id: &str) -> [u8; 32] {
        self.tag(&[context.as_bytes(), id.as_bytes()])
    }

    /// The unpadded base64url MAC of `message`.
    pub fn tag_base64(&self, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(&[message.as_bytes()]))
    }

    /// Checks a base64url MAC of `message` in constant time.
    pub fn verify_base64(&self, message: &str, mac: &str) -> Result<(), MacRefusal> {
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| MacRefusal::Malformed)?;
        if constant_time_eq(&self.tag(&[message.as_bytes()]), &mac) {
            Ok(())
        } else {
            Err(MacRefusal::Mismatch)
        }
    }
}

/// Equal bytes, compared without stopping at the first difference, so the time taken
/// says nothing about how much of a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A decimal number in its only canonical spelling: "+5", "05" or "" would sign
/// differently than they parse, so they are refused.
pub(crate) fn canonical_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = text.parse().ok()?;
    (value.to_string() == text).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn short_keys_are_refused() {
        assert!(Signer::new(b"0123456789abcde").is_none());
        assert!(Signer::new(b"0123456789abcdef").is_some());
    }

    #[test]
    fn a_mac_verifies_only_for_its_message_and_key() {
        let signer = Signer::new(KEY).unwrap();
        let mac = signer.tag_base64("v2|s1|7");
        assert_eq!(signer.verify_base64("v2|s1|7", &mac), Ok(()));
        assert_eq!(
            signer.verify_base64("v2|s1|8", &mac),
            Err(MacRefusal::Mismatch)
        );
        let other = Signer::new(b"another-key-of-enough-length").unwrap();
        assert_eq!(
            other.verify_base64("v2|s1|7", &mac),
            Err(MacRefusal::Mismatch)
        );
        assert_eq!(
            signer.verify_base64("v2|s1|7", &mac[..40]),
            Err(MacRefusal::Mismatch)
        );
        assert_eq!(
            signer.verify_base64("v2|s1|7", "!!!"),
            Err(MacRefusal::Malformed)
        );
    }

    #[test]
    fn a_derived_key_depends_on_context_and_id() {
        let signer = Signer::new(KEY).unwrap();
        let a = signer.derive("ctx-a|", "s1");
        assert_ne!(a, signer.derive("ctx-b|", "s1"));
        assert_ne!(a, signer.derive("ctx-a|", "s2"));
        assert_eq!(a, signer.tag(&[b"ctx-a|s1"]));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn only_canonical_decimals_parse() {
        assert_eq!(canonical_u64("0"), Some(0));
        assert_eq!(canonical_u64("1700000000"), Some(1_700_000_000));
        for text in ["", "05", "+5", "-1", "5 ", "x", "99999999999999999999"] {
            assert_eq!(canonical_u64(text), None, "{text:?}");
        }
    }
}
