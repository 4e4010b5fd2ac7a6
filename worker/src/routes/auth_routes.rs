//! The sign-in routes outside `/api` (`/auth/*`): the development sign-in, sign-out,
//! which providers are offered, and the GitHub and Google OAuth flows
//! ([`crate::auth::oauth`]).
//!
//! Errors use the same JSON envelope as `/api`, except the OAuth callbacks, which
//! send the browser to `/signin?error=<code>`.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::{DevLoginRequest, LoginResponse, Providers};
use worker::{Env, Headers, Method, Request, Response};

use crate::access;
use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::signin::{self, Identity, Provider};
use crate::auth::{self, SESSION_COOKIE, d1, oauth};
use crate::{body, config, hosts, rate_limit};

/// Answers one `/auth/*` request.
pub async fn handle(req: Request, env: Env) -> Response {
    match dispatch(req, &env).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Whether the development sign-in answers `req`: only with `DEV_AUTH=true`, and only
/// when the request came to a loopback host (127.0.0.1, localhost, [::1]), so a
/// deployment that was given `DEV_AUTH` by mistake still refuses it.
pub fn dev_auth_enabled(env: &Env, req: &Request) -> bool {
    let loopback = req
        .url()
        .ok()
        .and_then(|url| url.host_str().map(hosts::is_loopback_host))
        .unwrap_or(false);
    loopback && config::var(env, "DEV_AUTH").is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

/// The `/auth/*` routes that write (sign-in starts, callbacks, sign-out): every
/// route but the list of providers.
fn writes(method: &Method, path: &str) -> bool {
    !(*method == Method::Get && path == "/auth/providers")
}

/// Counts `req` against its client's sign-in budget; 429 `rate_limited` over it.
async fn check_rate(req: &Request, env: &Env) -> ApiResult<()> {
    #[derive(serde::Deserialize)]
    struct Counted {
        count: i64,
    }
    let ip = req.headers().get("cf-connecting-ip").ok().flatten();
    let key = rate_limit::client_key("auth", ip.as_deref());
    let now = crate::clock::now_ms();
    let window = rate_limit::window_start(now);
    let counted: Option<Counted> = d1::first(
        env,
        "INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN rate_limits.window_start = excluded.window_start \
                   THEN rate_limits.count + 1 ELSE 1 END, \
           window_start = excluded.window_start \
         RETURNING count",
        &[d1::Arg::Text(&key), d1::Arg::Int(window)],
    )
    .await?;
    let limit = config::var(env, "AUTH_RATE_LIMIT_PER_MINUTE")
        .and_then(|value| value.parse().ok())
        .filter(|limit: &i64| *limit > 0)
        .unwrap_or(rate_limit::DEFAULT_AUTH_LIMIT);
    if counted.is_some_and(|counted| !rate_limit::allowed(counted.count, limit)) {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "too many sign-in requests from this client; try again in {} s",
                rate_limit::retry_after_secs(now)
            ),
        ));
    }
    Ok(())
}

async fn dispatch(mut req: Request, env: &Env) -> ApiResult<Response> {
    let path = req.path();
    let method = req.method();
    if writes(&method, path.trim_end_matches('/')) {
        check_rate(&req, env).await?;
    }
    match (method, path.trim_end_matches('/')) {
        (Method::Get, "/auth/providers") => Ok(json(
            200,
            &Providers {
                github: oauth::configured(env, oauth::Kind::Github),
                google: oauth::configured(env, oauth::Kind::Google),
                dev: dev_auth_enabled(env, &req),
            },
        )),
        (Method::Post, "/auth/dev/login") => dev_login(&mut req, env).await,
        (Method::Post, "/auth/logout") => logout(&req, env).await,
        (Method::Get, "/auth/github/login") => oauth::login(&req, env, oauth::Kind::Github).await,
        (Method::Get, "/auth/github/connect") => oauth::connect(&req, env).await,
        (Method::Get, "/auth/google/login") => oauth::login(&req, env, oauth::Kind::Google).await,
        (Method::Get, "/auth/github/callback") => {
            Ok(oauth::callback(&req, env, oauth::Kind::Github).await)
        }
        (Method::Get, "/auth/google/callback") => {
            Ok(oauth::callback(&req, env, oauth::Kind::Google).await)
        }
        _ => Err(ApiError::not_found(format!("no route {path}"))),
    }
}

async fn dev_login(req: &mut Request, env: &Env) -> ApiResult<Response> {
    if !dev_auth_enabled(env, req) {
        return Err(ApiError::new(
            ErrorCode::DevAuthDisabled,
            "the development sign-in exists only on local stacks (DEV_AUTH=true, on a loopback host)",
        ));
    }
    let request: DevLoginRequest = body::read_json(req).await?;
    if !access::valid_email(&request.email) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "email is not an email address",
        ));
    }
    let identity = Identity {
        email: request.email.trim().to_owned(),
        name: request.name,
        avatar_url: None,
        provider: Provider::Dev,
    };
    let user_id = match signin::sign_in(env, &identity, request.invite.as_deref()).await? {
        Ok(user_id) => user_id,
        Err(code) => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("{code}: this email may not sign in"),
            ));
        }
    };
    let cookie = signin::start_session(env, req, &user_id).await?;
    let token = access::cookie_value(&cookie, SESSION_COOKIE)
        .map(|value| value.split(';').next().unwrap_or(value).to_owned())
        .unwrap_or_default();
    let user = auth::authenticate_cookie(env, &token).await?;
    let mut response = json(200, &LoginResponse { user: user.info() });
    response.headers_mut().append("set-cookie", &cookie)?;
    Ok(response)
}

async fn logout(req: &Request, env: &Env) -> ApiResult<Response> {
    let cookie = req
        .headers()
        .get("cookie")
        .ok()
        .flatten()
        .unwrap_or_default();
    if let Some(token) = access::cookie_value(&cookie, SESSION_COOKIE) {
        let token_hash = access::sha256_hex(token);
        d1::run(
            env,
            "DELETE FROM auth_sessions WHERE token_hash = ?",
            &[d1::Arg::Text(&token_hash)],
        )
        .await?;
        // The browser drops the cookie with this answer; other isolates may honour a
        // copy of it for at most the sign-in cache's lifetime (see `auth::cache`).
        auth::cache::forget(&token_hash);
    }
    let headers = Headers::new();
    headers.append(
        "set-cookie",
        &access::set_cookie(SESSION_COOKIE, "", 0, signin::secure_cookies(req)),
    )?;
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}
