//! `GET /api/github` (is the caller's GitHub connected, where to connect, what the
//! team allows), `GET /api/github/repos?q=&page=`, `GET /api/github/repos/{owner}/
//! {repo}/branches`, and the admins' `GET`/`PUT /api/admin/github`.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::repo::{GithubConnection, GithubSettings};
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::User;
use crate::body;
use crate::github::{repos, settings, tokens};

fn query(req: &Request, name: &str) -> Option<String> {
    req.url()
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `GET /api/github`.
pub async fn connection(env: &Env, user: &User) -> ApiResult<Response> {
    let account = tokens::account(env, &user.id).await?;
    let team = settings::get(env).await?;
    Ok(json(
        200,
        &GithubConnection {
            connected: account.as_ref().is_some_and(|account| !account.revoked),
            login: account.map(|account| account.login),
            connect_url: tokens::CONNECT_PATH.to_owned(),
            allowed: team.allowed_repos,
        },
    ))
}

/// `GET /api/github/repos?q=&page=`.
pub async fn list_repos(req: &Request, env: &Env, user: &User) -> ApiResult<Response> {
    let page = match query(req, "page") {
        None => 1,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|page| (1..=1000).contains(page))
            .ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidRequest, "page is a number from 1 to 1000")
            })?,
    };
    let q = query(req, "q").unwrap_or_default();
    if q.len() > 200 {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "q is too long"));
    }
    let team = settings::get(env).await?;
    let list = repos::list(env, &user.id, &team, &q, page).await?;
    Ok(json(200, &list))
}

/// `GET /api/github/repos/{owner}/{repo}/branches`.
pub async fn list_branches(env: &Env, user: &User, owner: &str, repo: &str) -> ApiResult<Response> {
    let team = settings::get(env).await?;
    let list = repos::branches(env, &user.id, &team, &format!("{owner}/{repo}")).await?;
    Ok(json(200, &list))
}

/// `GET /api/admin/github`.
pub async fn get_settings(env: &Env) -> ApiResult<Response> {
    Ok(json(200, &settings::get(env).await?))
}

/// `PUT /api/admin/github`: replaces the settings; answers them as stored.
pub async fn put_settings(req: &mut Request, env: &Env) -> ApiResult<Response> {
    let asked: GithubSettings = body::read_json(req).await?;
    let checked = settings::check(asked)?;
    settings::put(env, &checked).await?;
    Ok(json(200, &checked))
}
