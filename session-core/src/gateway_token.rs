//! Gateway tokens: what a browser (through the Worker) presents to a sandbox's
//! gateway to reach its VS Code, desktop and terminals.
//!
//! Keys are per session. The Worker derives a session's gateway key as
//! `HMAC-SHA256(RUNNER_TOKEN_SECRET, "nightshift-gateway-key-v1|" + session_id)` and
//! hands only that derived key to the session's sandbox, so a sandbox never holds a
//! deployment secret and a key (or a token) taken from one session is useless on
//! another.
//!
//! Format: `g1.<session>.<user>.<role>.<expires_ms>.<mac>`, where `mac` is the unpadded
//! base64url HMAC-SHA256, under the session key, of everything before the last `.`.
//! The role is one of `viewer`, `collaborator`, `owner` ([`GatewayRole`]); the expiry
//! is Unix milliseconds. The token carries its claims in clear text and proves them
//! with the MAC; the MAC is compared in constant time.
//!
//! The clock is passed in. This module must not depend on a platform: it builds for
//! wasm32 because the Worker mints these tokens, and natively for the gateway.

use nightshift_protocol::roles::SessionRole;

use crate::signing::{MacRefusal, Signer, canonical_u64};

const VERSION: &str = "g1";

/// What the session key is derived with, before the session id.
pub const KEY_CONTEXT: &str = "nightshift-gateway-key-v1|";

/// The shortest deployment secret or session key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = crate::signing::MIN_KEY_BYTES;

/// The longest session or user id a token may name; ids are UUIDs in practice.
pub const MAX_ID_BYTES: usize = 128;

/// Why a key could not be made, a token could not be minted, or a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayTokenError {
    #[error("the key is shorter than {MIN_KEY_BYTES} bytes or is not hex")]
    WeakKey,
    #[error(
        "a session or user id must be 1 to {MAX_ID_BYTES} characters of letters, digits, '-', '_' or ':'"
    )]
    InvalidId,
    #[error("the token is not a gateway token")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token is for another session")]
    WrongSession,
    #[error("the token has expired")]
    Expired,
}

/// What a token's holder may do in the gateway. Ordered: a later role can do
/// everything an earlier one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GatewayRole {
    /// Watches the desktop (view-only); no VS Code, no terminal.
    Viewer,
    /// Also uses VS Code and the terminals and drives the desktop.
    Collaborator,
    /// The session's owner (and anyone who manages it): everything.
    Owner,
}

impl GatewayRole {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayRole::Viewer => "viewer",
            GatewayRole::Collaborator => "collaborator",
            GatewayRole::Owner => "owner",
        }
    }

    /// Exactly one of the three names; anything else is refused.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(GatewayRole::Viewer),
            "collaborator" => Some(GatewayRole::Collaborator),
            "owner" => Some(GatewayRole::Owner),
            _ => None,
        }
    }

    /// The gateway role of a user with `role` in the session: everyone who manages the
    /// session (co-owners and admins too) gets `owner`.
    pub fn for_session_role(role: SessionRole) -> Self {
        match role {
            SessionRole::Viewer => GatewayRole::Viewer,
            SessionRole::Collaborator => GatewayRole::Collaborator,
            SessionRole::CoOwner | SessionRole::Admin | SessionRole::Owner => GatewayRole::Owner,
        }
    }

    /// VS Code and the terminals can change the workspace: viewers get neither
    /// (not even read-only, since code-server has no read-only mode to trust).
    pub fn may_change_workspace(self) -> bool {
        self >= GatewayRole::Collaborator
    }

    /// Whether the holder drives the desktop's mouse and keyboard, or only watches.
    pub fn drives_desktop(self) -> bool {
        self >= GatewayRole::Collaborator
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayClaims {
    pub session_id: String,
    pub user_id: String,
    pub role: GatewayRole,
    /// Unix milliseconds from which the token is refused.
    pub expires_at_ms: u64,
}

/// A session's gateway key: mints (in the Worker) and verifies (in the gateway).
#[derive(Clone)]
pub struct GatewayKey {
    signer: Signer,
}

impl std::fmt::Debug for GatewayKey {
    // The key never reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayKey(<redacted>)")
    }
}

/// The session key of `session_id` under the deployment's `RUNNER_TOKEN_SECRET`.
pub fn derive_session_key(secret: &[u8], session_id: &str) -> Result<[u8; 32], GatewayTokenError> {
    let deployment = Signer::new(secret).ok_or(GatewayTokenError::WeakKey)?;
    check_id(session_id)?;
    Ok(deployment.derive(KEY_CONTEXT, session_id))
}

/// [`derive_session_key`] as the lowercase hex the sandbox backend is given.
pub fn derive_session_key_hex(
    secret: &[u8],
    session_id: &str,
) -> Result<String, GatewayTokenError> {
    Ok(hex::encode(derive_session_key(secret, session_id)?))
}

impl GatewayKey {
    /// The key of `session_id`, derived from the deployment's secret (the Worker's side).
    pub fn derive(secret: &[u8], session_id: &str) -> Result<Self, GatewayTokenError> {
        Self::from_bytes(&derive_session_key(secret, session_id)?)
    }

    /// A session key as raw bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Self, GatewayTokenError> {
        let signer = Signer::new(key).ok_or(GatewayTokenError::WeakKey)?;
        Ok(Self { signer })
    }

    /// A session key as hex (the gateway's key file; surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, GatewayTokenError> {
        let bytes = hex::decode(text.trim()).map_err(|_| GatewayTokenError::WeakKey)?;
        Self::from_bytes(&bytes)
    }

    /// A token for `claims`.
    pub fn mint(&self, claims: &GatewayClaims) -> Result<String, GatewayTokenError> {
        check_id(&claims.session_id)?;
        check_id(&claims.user_id)?;
        let body = format!(
            "{VERSION}.{}.{}.{}.{}",
            claims.session_id,
            claims.user_id,
            claims.role.as_str(),
            claims.expires_at_ms
        );
        let mac = self.signer.tag_base64(&body);
        Ok(format!("{body}.{mac}"))
    }

    /// Checks that `token` is genuine, names `session_id` and has not expired at `now_ms`.
    pub fn verify(
        &self,
        token: &str,
        session_id: &str,
        now_ms: u64,
    ) -> Result<GatewayClaims, GatewayTokenError> {
        let (body, mac) = token.rsplit_once('.').ok_or(GatewayTokenError::Malformed)?;
        let mut fields = body.split('.');
        let (Some(version), Some(token_session), Some(user), Some(role), Some(expires), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(GatewayTokenError::Malformed);
        };
        if version != VERSION || check_id(token_session).is_err() || check_id(user).is_err() {
            return Err(GatewayTokenError::Malformed);
        }
        let role = GatewayRole::parse(role).ok_or(GatewayTokenError::Malformed)?;
        let expires_at_ms = canonical_u64(expires).ok_or(GatewayTokenError::Malformed)?;
        self.signer
            .verify_base64(body, mac)
            .map_err(|refusal| match refusal {
                MacRefusal::Malformed => GatewayTokenError::Malformed,
                MacRefusal::Mismatch => GatewayTokenError::BadSignature,
            })?;
        if token_session != session_id {
            return Err(GatewayTokenError::WrongSession);
        }
        if now_ms >= expires_at_ms {
            return Err(GatewayTokenError::Expired);
        }
        Ok(GatewayClaims {
            session_id: token_session.to_owned(),
            user_id: user.to_owned(),
            role,
            expires_at_ms,
        })
    }
}

/// Ids travel in cookies and query strings unescaped, so they keep to characters that
/// mean nothing in either (and never the `.` separator).
fn check_id(id: &str) -> Result<(), GatewayTokenError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'));
    if valid {
        Ok(())
    } else {
        Err(GatewayTokenError::InvalidId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // An independent HMAC, so the derivation is checked against the primitive itself.
    use hmac::{Hmac, Mac};
    type HmacSha256 = Hmac<sha2::Sha256>;

    const NOW: u64 = 1_700_000_000_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn key(session: &str) -> GatewayKey {
        GatewayKey::derive(SECRET, session).unwrap()
    }

    fn claims(role: GatewayRole, expires_at_ms: u64) -> GatewayClaims {
        GatewayClaims {
            session_id: "s1".into(),
            user_id: "u1".into(),
            role,
            expires_at_ms,
        }
    }

    #[test]
    fn a_fresh_token_verifies_for_its_session_with_its_claims() {
        let wanted = claims(GatewayRole::Collaborator, NOW + 60_000);
        let token = key("s1").mint(&wanted).unwrap();
        assert!(token.starts_with("g1.s1.u1.collaborator.1700000060000."));
        assert_eq!(key("s1").verify(&token, "s1", NOW), Ok(wanted));
    }

    #[test]
    fn the_key_the_sandbox_holds_verifies_what_the_worker_mints() {
        let hex = derive_session_key_hex(SECRET, "s1").unwrap();
        assert_eq!(hex.len(), 64);
        let sandbox = GatewayKey::from_hex(&format!("{hex}\n")).unwrap();
        let token = key("s1")
            .mint(&claims(GatewayRole::Owner, NOW + 1))
            .unwrap();
        assert!(sandbox.verify(&token, "s1", NOW).is_ok());
        // The derivation is fixed: the Worker and every gateway must agree on it.
        let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
        mac.update(b"nightshift-gateway-key-v1|s1");
        assert_eq!(hex, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn neither_the_secret_nor_the_key_shows_in_a_token_or_a_debug_print() {
        let hex = derive_session_key_hex(SECRET, "s1").unwrap();
        let token = key("s1").mint(&claims(GatewayRole::Owner, NOW)).unwrap();
        assert!(!token.contains("0123456789abcdef"));
        assert!(!token.contains(&hex));
        assert_eq!(format!("{:?}", key("s1")), "GatewayKey(<redacted>)");
    }

    #[test]
    fn a_token_for_another_session_is_refused() {
        let token = key("s1")
            .mint(&claims(GatewayRole::Owner, NOW + 1))
            .unwrap();
        // Under the other session's own key the MAC cannot match...
        assert_eq!(
            key("s2").verify(&token, "s2", NOW),
            Err(GatewayTokenError::BadSignature)
        );
        // ...and a gateway that somehow held s1's key still checks the session.
        assert_eq!(
            key("s1").verify(&token, "s2", NOW),
            Err(GatewayTokenError::WrongSession)
        );
    }

    #[test]
    fn expiry_is_enforced_to_the_millisecond() {
        let token = key("s1")
            .mint(&claims(GatewayRole::Viewer, NOW + 5))
            .unwrap();
        assert!(key("s1").verify(&token, "s1", NOW + 4).is_ok());
        assert_eq!(
            key("s1").verify(&token, "s1", NOW + 5),
            Err(GatewayTokenError::Expired)
        );
    }

    #[test]
    fn tampering_with_any_field_breaks_the_signature() {
        let token = key("s1")
            .mint(&claims(GatewayRole::Viewer, NOW + 60_000))
            .unwrap();
        for tampered in [
            token.replacen(".viewer.", ".owner.", 1),
            token.replacen(".viewer.", ".collaborator.", 1),
            token.replacen(".u1.", ".u2.", 1),
            token.replacen(".1700000060000.", ".1800000060000.", 1),
        ] {
            assert_ne!(tampered, token);
            assert_eq!(
                key("s1").verify(&tampered, "s1", NOW),
                Err(GatewayTokenError::BadSignature),
                "{tampered}"
            );
        }
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            key("s1").verify(&String::from_utf8(flipped).unwrap(), "s1", NOW),
            Err(GatewayTokenError::BadSignature)
        );
    }

    #[test]
    fn a_token_under_another_key_is_refused() {
        let other = GatewayKey::derive(b"another-deployment-secret-000000", "s1").unwrap();
        let token = other.mint(&claims(GatewayRole::Owner, NOW + 1)).unwrap();
        assert_eq!(
            key("s1").verify(&token, "s1", NOW),
            Err(GatewayTokenError::BadSignature)
        );
    }

    #[test]
    fn roles_parse_exactly_and_map_from_session_roles() {
        for role in [
            GatewayRole::Viewer,
            GatewayRole::Collaborator,
            GatewayRole::Owner,
        ] {
            assert_eq!(GatewayRole::parse(role.as_str()), Some(role));
        }
        for text in ["", "Owner", "admin", "co_owner", "viewer "] {
            assert_eq!(GatewayRole::parse(text), None, "{text}");
        }
        assert_eq!(
            GatewayRole::for_session_role(SessionRole::Viewer),
            GatewayRole::Viewer
        );
        assert_eq!(
            GatewayRole::for_session_role(SessionRole::Collaborator),
            GatewayRole::Collaborator
        );
        for managing in [SessionRole::CoOwner, SessionRole::Admin, SessionRole::Owner] {
            assert_eq!(GatewayRole::for_session_role(managing), GatewayRole::Owner);
        }
        assert!(!GatewayRole::Viewer.may_change_workspace());
        assert!(!GatewayRole::Viewer.drives_desktop());
        assert!(GatewayRole::Collaborator.may_change_workspace());
        assert!(GatewayRole::Owner.drives_desktop());
    }

    #[test]
    fn an_unknown_role_is_refused_even_when_signed() {
        // Only a key holder could sign it, but the gateway still grants nothing unknown.
        let body = format!("g1.s1.u1.admin.{}", NOW + 1);
        let mac = key("s1").signer.tag_base64(&body);
        assert_eq!(
            key("s1").verify(&format!("{body}.{mac}"), "s1", NOW),
            Err(GatewayTokenError::Malformed)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for token in [
            "",
            "g1",
            "g1.s1.u1.owner.5",
            "g2.s1.u1.owner.5.abc",
            "g1..u1.owner.5.abc",
            "g1.s1..owner.5.abc",
            "g1.s1.u1.owner.x.abc",
            "g1.s1.u1.owner.05.abc",
            "g1.s1.u1.owner.+5.abc",
            "g1.s1.u1.owner.5.!!!",
            "g1.s1.u1.owner.5.abc.extra",
            "g1.s 1.u1.owner.5.abc",
            "g1.s1.u;1.owner.5.abc",
        ] {
            assert_eq!(
                key("s1").verify(token, "s1", NOW),
                Err(GatewayTokenError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn weak_keys_and_bad_ids_are_refused() {
        assert_eq!(
            GatewayKey::derive(b"short", "s1").unwrap_err(),
            GatewayTokenError::WeakKey
        );
        assert_eq!(
            GatewayKey::from_hex("00ff").unwrap_err(),
            GatewayTokenError::WeakKey
        );
        assert_eq!(
            GatewayKey::from_hex("not hex at all, not hex at all").unwrap_err(),
            GatewayTokenError::WeakKey
        );
        assert_eq!(
            derive_session_key(SECRET, "a.b").unwrap_err(),
            GatewayTokenError::InvalidId
        );
        let mut bad_user = claims(GatewayRole::Owner, NOW);
        bad_user.user_id = "a.b".into();
        assert_eq!(key("s1").mint(&bad_user), Err(GatewayTokenError::InvalidId));
        bad_user.user_id = "x".repeat(MAX_ID_BYTES + 1);
        assert_eq!(key("s1").mint(&bad_user), Err(GatewayTokenError::InvalidId));
    }
}
