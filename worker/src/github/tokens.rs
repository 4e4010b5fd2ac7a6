//! Users' GitHub tokens as the Worker uses them: asked for live from the `APIKeys`
//! object ([`crate::api_keys::github_accounts`] refreshes them there), and GitHub
//! calls made as a user that survive an expired token: a 401 gets the token refreshed
//! once and the call repeated; a second 401, or a refresh GitHub refuses, means the
//! user must reconnect (409 `github_not_connected`).

use serde_json::Value;
use worker::{Env, Method};

use super::api::{self, Answer, Auth};
use crate::access;
use crate::api_error::ApiResult;
use crate::api_keys::github_accounts::{GithubAccount, LiveToken, StoreGithub, not_connected};
use crate::api_keys::{call, encode};

/// Where a browser connects (or reconnects) GitHub.
pub const CONNECT_PATH: &str = "/auth/github/connect";

/// Stores the connection a user just made.
pub async fn store(env: &Env, user_id: &str, connection: &StoreGithub) -> ApiResult<()> {
    call(
        env,
        Method::Put,
        &format!("/github/{}", encode(user_id)),
        Some(serde_json::to_string(connection)?),
    )
    .await?;
    Ok(())
}

/// The user's connected GitHub account (revoked ones included), if any.
pub async fn account(env: &Env, user_id: &str) -> ApiResult<Option<GithubAccount>> {
    let mut response = call(
        env,
        Method::Get,
        &format!("/github/{}", encode(user_id)),
        None,
    )
    .await?;
    Ok(response.json().await?)
}

/// A live token for the user, or 409 `github_not_connected`. `failed` is a token the
/// caller saw GitHub refuse: it is replaced rather than answered again.
pub async fn live(env: &Env, user_id: &str, failed: Option<&str>) -> ApiResult<LiveToken> {
    let failed = failed
        .map(|token| format!("?failed={}", access::sha256_hex(token)))
        .unwrap_or_default();
    let mut response = call(
        env,
        Method::Post,
        &format!("/github/{}/token{failed}", encode(user_id)),
        None,
    )
    .await?;
    Ok(response.json().await?)
}

/// Forgets the user's connection (GitHub refused it for good).
pub async fn forget(env: &Env, user_id: &str) -> ApiResult<()> {
    call(
        env,
        Method::Delete,
        &format!("/github/{}", encode(user_id)),
        None,
    )
    .await?;
    Ok(())
}

/// One GitHub call as `user_id`, with the refresh-once rule above. Answers the
/// token used too, for callers that hand it on (the credential route).
pub async fn as_user(
    env: &Env,
    user_id: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> ApiResult<(Answer, LiveToken)> {
    let token = live(env, user_id, None).await?;
    let answer = api::call(
        env,
        method.clone(),
        path,
        Auth::Token(token.access_token.expose()),
        body,
    )
    .await?;
    if answer.status != 401 {
        return Ok((answer, token));
    }
    let token = live(env, user_id, Some(token.access_token.expose())).await?;
    let answer = api::call(
        env,
        method,
        path,
        Auth::Token(token.access_token.expose()),
        body,
    )
    .await?;
    if answer.status == 401 {
        forget(env, user_id).await?;
        return Err(not_connected(
            "GitHub no longer accepts your authorization; reconnect GitHub",
        ));
    }
    Ok((answer, token))
}
