//! Panel capabilities: the one DNS label that names a session's panel origin,
//! `<capability>.<panel domain>`, where the Worker proxies VS Code, the desktop and
//! the terminals to the session's gateway.
//!
//! A DNS label holds at most 63 characters and browsers lower-case host names, so the
//! capability cannot carry a session, a user, a role and an expiry with a strong MAC.
//! It carries what the Worker needs to find and check the rest:
//!
//! `<session: 32 hex><expiry: 8 hex Unix seconds><grant: 8 hex><mac: 14 hex>` (62
//! lower-case hex characters), where `mac` is the first 7 bytes of
//! `HMAC-SHA256(panel key, "p1|" + session + "|" + expiry + "|" + grant)`, and the
//! panel key is `HMAC-SHA256(RUNNER_TOKEN_SECRET, "nightshift-panel-key-v1|" +
//! session)` (its own label, so it is never the gateway key the sandbox holds).
//! The grant id names a record the session's `SessionAgent` keeps (the user, their
//! role when it was minted and the same expiry); the MAC lets the Worker refuse a
//! forged or expired label without asking anyone, and the grant lets the
//! `SessionAgent` re-check the user's access on every request.
//!
//! Only sessions whose id is a UUID (every session the Worker creates) have panels.
//! The clock is passed in; this module must not depend on a platform.

use crate::signing::{Signer, constant_time_eq};

/// What the panel key is derived with, before the session id.
pub const KEY_CONTEXT: &str = "nightshift-panel-key-v1|";

/// The capability's length in characters (within a DNS label's 63).
pub const LABEL_LEN: usize = 32 + 8 + 8 + MAC_HEX_LEN;

const MAC_HEX_LEN: usize = 14;
const MIN_SECRET_BYTES: usize = crate::signing::MIN_KEY_BYTES;

/// Why a capability could not be minted or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("the deployment secret is shorter than {MIN_SECRET_BYTES} bytes")]
    WeakKey,
    #[error("panels need a session whose id is a UUID")]
    NotAUuid,
    #[error("the host is not a panel capability")]
    Malformed,
    #[error("the capability's signature does not match")]
    BadSignature,
    #[error("the capability has expired")]
    Expired,
}

/// What a genuine capability says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelCapability {
    /// The session id in its canonical UUID form (lower case, with dashes).
    pub session_id: String,
    /// Unix seconds from which the capability is refused.
    pub expires_at_secs: u32,
    /// The `SessionAgent`'s grant record: 8 lower-case hex digits.
    pub grant_id: String,
}

/// Mints the capability label for `capability` under the deployment's secret.
pub fn mint(secret: &[u8], capability: &PanelCapability) -> Result<String, CapabilityError> {
    let session_hex = uuid_hex(&capability.session_id)?;
    if !is_hex(&capability.grant_id, 8) {
        return Err(CapabilityError::Malformed);
    }
    let expiry = format!("{:08x}", capability.expires_at_secs);
    let mac = mac_hex(
        secret,
        &capability.session_id,
        &expiry,
        &capability.grant_id,
    )?;
    Ok(format!("{session_hex}{expiry}{}{mac}", capability.grant_id))
}

/// Checks a capability label (case-insensitive, as host names are) at `now_secs`.
pub fn verify(
    secret: &[u8],
    label: &str,
    now_secs: u64,
) -> Result<PanelCapability, CapabilityError> {
    let label = label.to_ascii_lowercase();
    if !is_hex(&label, LABEL_LEN) {
        return Err(CapabilityError::Malformed);
    }
    let (session_hex, rest) = label.split_at(32);
    let (expiry, rest) = rest.split_at(8);
    let (grant_id, mac) = rest.split_at(8);
    let session_id = format!(
        "{}-{}-{}-{}-{}",
        &session_hex[..8],
        &session_hex[8..12],
        &session_hex[12..16],
        &session_hex[16..20],
        &session_hex[20..]
    );
    let wanted = mac_hex(secret, &session_id, expiry, grant_id)?;
    // Compared in constant time: the expected MAC must not leak byte by byte.
    if !constant_time_eq(wanted.as_bytes(), mac.as_bytes()) {
        return Err(CapabilityError::BadSignature);
    }
    let expires_at_secs =
        u32::from_str_radix(expiry, 16).map_err(|_| CapabilityError::Malformed)?;
    if now_secs >= u64::from(expires_at_secs) {
        return Err(CapabilityError::Expired);
    }
    Ok(PanelCapability {
        session_id,
        expires_at_secs,
        grant_id: grant_id.to_owned(),
    })
}

/// The capability part of a request's `Host` when it is `<label>.<panel domain>`
/// (an optional `:port` on both sides must match); `None` for any other host,
/// including the app's own.
pub fn label_of_host<'a>(host: &'a str, panel_domain: &str) -> Option<&'a str> {
    let suffix = format!(".{}", panel_domain.to_ascii_lowercase());
    let lower = host.to_ascii_lowercase();
    if !lower.ends_with(&suffix) {
        return None;
    }
    let label = &host[..host.len() - suffix.len()];
    (!label.is_empty() && !label.contains('.')).then_some(label)
}

fn mac_hex(
    secret: &[u8],
    session_id: &str,
    expiry: &str,
    grant_id: &str,
) -> Result<String, CapabilityError> {
    let deployment = Signer::new(secret).ok_or(CapabilityError::WeakKey)?;
    let panel_key =
        Signer::new(&deployment.derive(KEY_CONTEXT, session_id)).ok_or(CapabilityError::WeakKey)?;
    let full =
        hex::encode(panel_key.tag(&[format!("p1|{session_id}|{expiry}|{grant_id}").as_bytes()]));
    Ok(full[..MAC_HEX_LEN].to_owned())
}

/// The 32 hex digits of a canonical UUID (lower case, dashes at 8-4-4-4-12).
fn uuid_hex(id: &str) -> Result<String, CapabilityError> {
    let parts: Vec<&str> = id.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    if parts.len() != 5
        || parts
            .iter()
            .zip(lengths)
            .any(|(part, len)| !is_hex(part, len))
    {
        return Err(CapabilityError::NotAUuid);
    }
    Ok(parts.concat())
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    // An independent HMAC, so the derivation is checked against the primitive itself.
    use hmac::{Hmac, Mac};
    type HmacSha256 = Hmac<sha2::Sha256>;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const SESSION: &str = "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b";
    const NOW: u64 = 1_800_000_000;

    fn capability(expires_at_secs: u32) -> PanelCapability {
        PanelCapability {
            session_id: SESSION.into(),
            expires_at_secs,
            grant_id: "00c0ffee".into(),
        }
    }

    #[test]
    fn a_fresh_capability_fits_a_dns_label_and_verifies_with_its_claims() {
        let wanted = capability(NOW as u32 + 600);
        let label = mint(SECRET, &wanted).unwrap();
        assert_eq!(label.len(), LABEL_LEN);
        assert!(label.len() <= 63);
        assert!(label.starts_with("0f8e2a4c1b3d4e5f8a9b0c1d2e3f4a5b"));
        assert_eq!(verify(SECRET, &label, NOW), Ok(wanted.clone()));
        // Host names reach the Worker in any case.
        assert_eq!(verify(SECRET, &label.to_ascii_uppercase(), NOW), Ok(wanted));
    }

    #[test]
    fn expiry_is_enforced_to_the_second() {
        let label = mint(SECRET, &capability(NOW as u32 + 1)).unwrap();
        assert!(verify(SECRET, &label, NOW).is_ok());
        assert_eq!(
            verify(SECRET, &label, NOW + 1),
            Err(CapabilityError::Expired)
        );
    }

    #[test]
    fn tampering_with_any_part_breaks_the_signature() {
        let label = mint(SECRET, &capability(NOW as u32 + 600)).unwrap();
        for position in [0, 31, 32, 39, 40, 47, 48, LABEL_LEN - 1] {
            let mut bytes = label.clone().into_bytes();
            bytes[position] = if bytes[position] == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert_eq!(
                verify(SECRET, &tampered, NOW),
                Err(CapabilityError::BadSignature),
                "{position}"
            );
        }
    }

    #[test]
    fn another_deployment_or_another_session_cannot_mint_one() {
        let label = mint(
            b"another-deployment-secret-000000",
            &capability(NOW as u32 + 600),
        )
        .unwrap();
        assert_eq!(
            verify(SECRET, &label, NOW),
            Err(CapabilityError::BadSignature)
        );
        // The session is bound by the MAC: the same grant and MAC under another id fail.
        let label = mint(SECRET, &capability(NOW as u32 + 600)).unwrap();
        let moved = format!("1{}", &label[1..]);
        assert_eq!(
            verify(SECRET, &moved, NOW),
            Err(CapabilityError::BadSignature)
        );
    }

    #[test]
    fn the_panel_key_is_not_the_gateway_key() {
        let gateway = crate::gateway_token::derive_session_key_hex(SECRET, SESSION).unwrap();
        let mut derive = HmacSha256::new_from_slice(SECRET).unwrap();
        derive.update(KEY_CONTEXT.as_bytes());
        derive.update(SESSION.as_bytes());
        assert_ne!(gateway, hex::encode(derive.finalize().into_bytes()));
    }

    #[test]
    fn malformed_labels_and_ids_are_refused() {
        for label in [
            "",
            "abc",
            &"g".repeat(LABEL_LEN),
            &"0".repeat(LABEL_LEN + 1),
        ] {
            assert_eq!(
                verify(SECRET, label, NOW),
                Err(CapabilityError::Malformed),
                "{label}"
            );
        }
        let mut bad = capability(1);
        bad.session_id = "not-a-uuid".into();
        assert_eq!(mint(SECRET, &bad), Err(CapabilityError::NotAUuid));
        bad.session_id = SESSION.to_uppercase();
        assert_eq!(mint(SECRET, &bad), Err(CapabilityError::NotAUuid));
        let mut bad = capability(1);
        bad.grant_id = "xyz".into();
        assert_eq!(mint(SECRET, &bad), Err(CapabilityError::Malformed));
        assert_eq!(
            mint(b"short", &capability(1)),
            Err(CapabilityError::WeakKey)
        );
    }

    #[test]
    fn only_a_single_label_under_the_panel_domain_is_a_capability() {
        let domain = "ws.localhost:8787";
        assert_eq!(label_of_host("abc.ws.localhost:8787", domain), Some("abc"));
        assert_eq!(label_of_host("ABC.WS.localhost:8787", domain), Some("ABC"));
        assert_eq!(label_of_host("ws.localhost:8787", domain), None);
        assert_eq!(label_of_host(".ws.localhost:8787", domain), None);
        assert_eq!(label_of_host("a.b.ws.localhost:8787", domain), None);
        assert_eq!(label_of_host("abc.ws.localhost:9999", domain), None);
        assert_eq!(label_of_host("127.0.0.1:8787", domain), None);
        assert_eq!(label_of_host("abc.evilws.localhost:8787", domain), None);
    }
}
