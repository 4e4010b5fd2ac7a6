//! A GitHub App's identity: its RSA key pair and the RS256 JWTs it signs to ask for
//! installation tokens, and the fake's check of them (signature with the App's
//! public key, `iss` = the App id, `iat`/`exp` within GitHub's ten minutes).
//!
//! The key is made by the `openssl` command (ring can sign and verify RSA but not
//! generate keys); signing and verifying use ring.

use base64::Engine;
use ring::signature::{self, KeyPair, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A GitHub App as a deployment would configure it: its id and private key.
pub struct GithubApp {
    pub app_id: u64,
    key: RsaKeyPair,
    /// The PKCS#8 PEM of the private key, as GitHub hands it to the App's owner.
    pub private_key_pem: String,
}

impl GithubApp {
    /// Makes a fresh 2048-bit key with `openssl`.
    pub fn generate(app_id: u64) -> anyhow::Result<GithubApp> {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()?;
        anyhow::ensure!(out.status.success(), "openssl genpkey failed");
        let pem = String::from_utf8(out.stdout)?;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body)?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| anyhow::anyhow!("the generated key is not usable: {e}"))?;
        Ok(GithubApp {
            app_id,
            key,
            private_key_pem: pem,
        })
    }

    /// The public key (PKCS#1 DER), which GitHub keeps to verify the App's JWTs.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// A JWT with these claims, signed RS256.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
        let payload = b64(serde_json::to_string(claims)?.as_bytes());
        let input = format!("{header}.{payload}");
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(format!("{input}.{}", b64(&sig)))
    }

    /// The JWT GitHub documents: issued a minute ago (clock drift), valid for nine.
    pub fn jwt(&self, now: u64) -> anyhow::Result<String> {
        self.sign(&json!({"iat": now - 60, "exp": now + 540, "iss": self.app_id.to_string()}))
    }
}

/// Checks an App JWT the way GitHub does; the error is GitHub's message.
pub fn verify(token: &str, public_key: &[u8], app_id: u64, now: u64) -> Result<(), &'static str> {
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(UNDECODABLE);
    };
    let decode = |part: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part);
    let header: Value = decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(UNDECODABLE)?;
    if header["alg"] != "RS256" {
        return Err(UNDECODABLE);
    }
    let sig = decode(sig).map_err(|_| UNDECODABLE)?;
    let signed = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| UNDECODABLE)?;
    let claims: Value = decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(UNDECODABLE)?;
    let issuer = match &claims["iss"] {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    if issuer != Some(app_id) {
        return Err("Integration not found");
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return Err(UNDECODABLE);
    };
    if iat > now + 60 {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing a time in the past.",
        );
    }
    if exp <= now {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
        );
    }
    if exp.saturating_sub(iat) > 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_is_checked_for_signature_issuer_and_time() {
        let app = GithubApp::generate(42).unwrap();
        let other = GithubApp::generate(42).unwrap();
        let now = 1_700_000_000;
        let key = app.public_key();
        assert_eq!(verify(&app.jwt(now).unwrap(), &key, 42, now), Ok(()));
        assert!(verify(&other.jwt(now).unwrap(), &key, 42, now).is_err());
        assert!(verify(&app.jwt(now).unwrap(), &key, 7, now).is_err());
        assert!(verify(&app.jwt(now - 600).unwrap(), &key, 42, now).is_err());
        let long = app
            .sign(&json!({"iat": now, "exp": now + 3600, "iss": "42"}))
            .unwrap();
        assert!(verify(&long, &key, 42, now).is_err());
        let mut tampered = app.jwt(now).unwrap();
        tampered.insert(40, 'x');
        assert!(verify(&tampered, &key, 42, now).is_err());
    }
}
