//! The git credential a session's runner gets for its repository (`POST
//! /api/sessions/{id}/git/credential`, runner token): for the session's own
//! repository and host only ([`repo_rules::credential_matches`]), for the user whose
//! turn is running (else the owner), and only while that user can push to it with
//! their own GitHub access, checked at GitHub on every request. The credential is a
//! GitHub App installation token narrowed to the repository (contents and pull
//! requests write) when the deployment has an App installed there, else the user's
//! own token. Either lives an hour at most; nothing long-lived is handed out.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::repo::{CredentialRequest, GitCredential};
use nightshift_session::repo_rules;
use worker::Env;

use super::{app, repos};
use crate::api_error::{ApiError, ApiResult};
use crate::clock;
use crate::internal::GitContext;

/// How long a user token without an expiry (an OAuth App's) is said to live: the
/// helper asks again after it, so a revoked authorization is noticed within this.
const UNEXPIRING_TOKEN_TTL_MS: i64 = 60 * 60 * 1000;

fn refused(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, message.to_owned())
}

/// Answers `asked` for the session described by `context`. A user whose GitHub
/// authorization is gone gets 409 `github_not_connected` (the caller raises the
/// reconnect event).
pub async fn issue(
    env: &Env,
    context: &GitContext,
    asked: &CredentialRequest,
) -> ApiResult<GitCredential> {
    let repo = &context.repo;
    if !repo_rules::credential_matches(&repo.clone_url, &asked.protocol, &asked.host, &asked.path) {
        return Err(refused(
            "credentials are answered only for the session's repository on its host",
        ));
    }
    let token = repos::require_push(env, &context.user_id, &repo.full_name).await?;
    if let Some((app_id, pem)) = app::configured(env) {
        match app::installation_token(env, app_id, &pem, &repo.full_name).await? {
            Some((token, expires_at)) => {
                return Ok(GitCredential {
                    username: "x-access-token".to_owned(),
                    password: token.into(),
                    expires_at,
                });
            }
            None => worker::console_warn!(
                "the GitHub App is not installed on {}; using the user's token",
                repo.full_name
            ),
        }
    }
    let now = clock::now_ms();
    Ok(GitCredential {
        username: "x-access-token".to_owned(),
        password: token.access_token,
        expires_at: token
            .expires_at
            .unwrap_or(now + UNEXPIRING_TOKEN_TTL_MS)
            .min(now + UNEXPIRING_TOKEN_TTL_MS),
    })
}
