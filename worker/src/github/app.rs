//! The deployment's GitHub App, when it has one (`GITHUB_APP_ID`,
//! `GITHUB_APP_PRIVATE_KEY` as PKCS#8 PEM): the App's JWT (RS256, signed with
//! WebCrypto) and installation tokens narrowed to one repository with only
//! `contents` and `pull_requests` write, which is what git and the agent's pull
//! requests need and nothing more (no workflows, no administration, one hour).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use nightshift_protocol::ErrorCode;
use serde_json::json;
use worker::{Env, Method};

use super::api::{self, Auth};
use crate::api_error::{ApiError, ApiResult};
use crate::api_keys::crypto;
use crate::{clock, config};

/// The App's id and private key (DER), when both are configured.
pub fn configured(env: &Env) -> Option<(u64, String)> {
    let id = config::var(env, "GITHUB_APP_ID")?.parse().ok()?;
    let pem = config::var(env, "GITHUB_APP_PRIVATE_KEY")?;
    Some((id, pem))
}

/// The DER inside a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). A PKCS#1 key
/// (`BEGIN RSA PRIVATE KEY`, what GitHub hands out) is refused with the command
/// that converts it.
pub fn pkcs8_der(pem: &str) -> Result<Vec<u8>, String> {
    // Secrets set through a dashboard often arrive with `\n` escaped.
    let pem = pem.replace("\\n", "\n");
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        return Err(
            "GITHUB_APP_PRIVATE_KEY is PKCS#1; convert it with `openssl pkcs8 -topk8 \
                    -nocrypt -in app.pem`"
                .into(),
        );
    }
    if !pem.contains("BEGIN PRIVATE KEY") {
        return Err("GITHUB_APP_PRIVATE_KEY is not a PKCS#8 PEM private key".into());
    }
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----") && !line.is_empty())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|_| "GITHUB_APP_PRIVATE_KEY is not valid base64".to_owned())
}

/// The claims GitHub documents: issued a minute ago (clock drift), valid for nine.
pub fn jwt_signing_input(app_id: u64, now_secs: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = json!({
        "iat": now_secs.saturating_sub(60),
        "exp": now_secs + 540,
        "iss": app_id.to_string(),
    });
    format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

async fn jwt(app_id: u64, pem: &str) -> ApiResult<String> {
    let der = pkcs8_der(pem).map_err(ApiError::internal)?;
    let input = jwt_signing_input(app_id, clock::now_secs());
    let signature = crypto::sign_rs256(&der, input.as_bytes())
        .await
        .map_err(|error| ApiError::internal(error.0))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// An installation token for `full_name` only, with contents and pull requests
/// write, and when it expires (ms); `None` when the App is not installed there.
pub async fn installation_token(
    env: &Env,
    app_id: u64,
    pem: &str,
    full_name: &str,
) -> ApiResult<Option<(String, i64)>> {
    let jwt = jwt(app_id, pem).await?;
    let found = api::call(
        env,
        Method::Get,
        &format!("/repos/{full_name}/installation"),
        Auth::AppJwt(&jwt),
        None,
    )
    .await?;
    if found.status == 404 {
        return Ok(None);
    }
    if !found.ok() {
        return Err(found.into_error("finding the GitHub App's installation"));
    }
    let installation = found.body["id"]
        .as_u64()
        .ok_or_else(|| ApiError::new(ErrorCode::GithubUnavailable, "an installation without id"))?;
    let name = full_name
        .split_once('/')
        .map_or(full_name, |(_, name)| name);
    let body = json!({
        "repositories": [name],
        "permissions": {"contents": "write", "pull_requests": "write"},
    });
    let minted = api::call(
        env,
        Method::Post,
        &format!("/app/installations/{installation}/access_tokens"),
        Auth::AppJwt(&jwt),
        Some(&body),
    )
    .await?;
    if !minted.ok() {
        return Err(minted.into_error("minting an installation token"));
    }
    let token = minted.body["token"]
        .as_str()
        .ok_or_else(|| ApiError::new(ErrorCode::GithubUnavailable, "GitHub minted no token"))?;
    let expires_at = minted.body["expires_at"]
        .as_str()
        .map(worker::js_sys::Date::parse)
        .filter(|ms| ms.is_finite())
        .map_or(clock::now_ms() + 3_600_000, |ms| ms as i64);
    Ok(Some((token.to_owned(), expires_at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwt_claims_are_githubs() {
        let input = jwt_signing_input(42, 1_700_000_000);
        let (header, claims) = input.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.decode(header).unwrap();
        assert_eq!(header, br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({"iat": 1_699_999_940u64, "exp": 1_700_000_540u64, "iss": "42"})
        );
    }

    #[test]
    fn only_pkcs8_keys_are_taken() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAEC\nAwQ=\n-----END PRIVATE KEY-----\n";
        assert_eq!(pkcs8_der(pem).unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(
            pkcs8_der(&pem.replace('\n', "\\n")).unwrap(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(
            pkcs8_der("-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----")
                .unwrap_err()
                .contains("openssl pkcs8")
        );
        assert!(pkcs8_der("nothing").is_err());
    }
}
