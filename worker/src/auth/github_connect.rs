//! The end of `/auth/github/connect`: the token GitHub issued for repository access
//! is tied to the signed-in user and stored encrypted (with its refresh token and
//! expiries) by the `APIKeys` object ([`crate::github::tokens`]).
//!
//! A GitHub account connects to one member only: when the member signed in with
//! GitHub, it must be that same account; an account another member holds is refused
//! (`github_account_mismatch`), so nobody borrows someone else's GitHub identity for
//! their commits.

use oauth2::TokenResponse;
use serde::Deserialize;
use worker::Env;

use super::d1::{self, Arg};
use super::oauth::{GithubUser, ProviderToken, get_json};
use crate::api_error::ApiResult;
use crate::api_keys::github_accounts::StoreGithub;
use crate::{clock, github};

#[derive(Deserialize)]
struct Linked {
    id: String,
    github_id: Option<String>,
}

/// Stores `token` as `user_id`'s GitHub connection; the refusal code otherwise.
pub async fn finish(
    env: &Env,
    user_id: &str,
    token: &ProviderToken,
) -> ApiResult<Result<(), &'static str>> {
    let access_token = token.access_token().secret();
    let api = github::api::api_url(env);
    let Some(account) = get_json::<GithubUser>(&format!("{api}/user"), access_token).await? else {
        return Ok(Err("oauth_failed"));
    };
    let github_id = account.id.to_string();
    let holders: Vec<Linked> = d1::all(
        env,
        "SELECT id, github_id FROM users WHERE id = ? OR github_id = ?",
        &[Arg::Text(user_id), Arg::Text(&github_id)],
    )
    .await?;
    // Another member holding this GitHub account, or this member holding another.
    let mismatch = holders
        .iter()
        .any(|row| row.id != user_id || row.github_id.as_deref().is_some_and(|id| id != github_id));
    if mismatch {
        return Ok(Err("github_account_mismatch"));
    }
    d1::run(
        env,
        "UPDATE users SET github_id = ? WHERE id = ? AND github_id IS NULL",
        &[Arg::Text(&github_id), Arg::Text(user_id)],
    )
    .await?;
    let now = clock::now_ms();
    let scopes = token
        .scopes()
        .map(|scopes| {
            scopes
                .iter()
                .flat_map(|scope| scope.split([',', ' ']))
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let connection = StoreGithub {
        github_id: account.id,
        login: account.login,
        name: account.name,
        scopes,
        access_token: access_token.clone().into(),
        refresh_token: token.refresh_token().map(|t| t.secret().clone().into()),
        expires_at: token
            .expires_in()
            .map(|ttl| now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)),
        refresh_expires_at: token
            .extra_fields()
            .refresh_token_expires_in
            .filter(|_| token.refresh_token().is_some())
            .map(|secs| now.saturating_add(secs.saturating_mul(1000))),
    };
    github::tokens::store(env, user_id, &connection).await?;
    Ok(Ok(()))
}
