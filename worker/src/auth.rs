//! The one authentication gate of `/api`: [`authenticate`] turns a request into the
//! [`Principal`] it acts for, or refuses it. The router calls it for every `/api`
//! request and then checks the route's access with [`crate::access`].
//!
//! Credentials, in order: a runner token on the runner's routes (the rows of
//! `routes::TABLE` with `Access::Runner`: its link and its artifact uploads); an API token
//! (`Authorization: Bearer ns_...`, stored hashed, scopes enforced here); the
//! `ns_session` cookie of a signed-in browser (stored hashed; every state-changing
//! request must carry its `X-CSRF-Token`). A user must be a member of the team.
//!
//! Submodules: [`d1`] (query helpers), [`signin`] (turning a verified identity into a
//! member and a session cookie), [`oauth`] (GitHub and Google).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::{TeamRole, TokenScope, UserInfo};
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Function, Reflect, Uint8Array, global};
use worker::{Env, Request};

use crate::access;
use crate::api_error::{ApiError, ApiResult};
use crate::{clock, config};

pub mod cache;
pub mod d1;
pub mod github_connect;
pub mod oauth;
pub mod signin;

use d1::Arg;

/// The user that owns the sessions of removed members (`migrations/0002_auth.sql`).
pub const TEAM_USER_ID: &str = "team";
/// The deployment's one team.
pub const TEAM_ID: &str = "default";

/// The session cookie of a signed-in browser.
pub const SESSION_COOKIE: &str = "ns_session";
/// The CSRF header every cookie-authenticated state-changing request carries.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a browser stays signed in.
pub const SESSION_TTL_SECS: u64 = 30 * 24 * 3600;
/// Prefix of API tokens, so they are recognizable (and scannable) when leaked.
pub const API_TOKEN_PREFIX: &str = "ns_";

/// Who a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials at all.
    Anonymous,
    User(User),
    /// A session's runner, holding a valid token for that session.
    Runner(RunnerGrant),
}

/// How a user's request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// The session cookie; `csrf_token` is what `/api/me` hands out for it.
    Cookie {
        csrf_token: String,
        token_hash: String,
    },
    /// A personal API token, with when it expires (ms; `None`: never).
    Token {
        id: String,
        scopes: Vec<TokenScope>,
        expires_at: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub name: String,
    pub avatar_url: Option<String>,
    pub role: TeamRole,
    pub default_model: Option<String>,
    pub method: AuthMethod,
}

impl User {
    pub fn info(&self) -> UserInfo {
        UserInfo {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            avatar_url: self.avatar_url.clone(),
            role: self.role,
            default_model: self.default_model.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerGrant {
    pub session_id: String,
    /// The sandbox generation the token was issued for; the session's
    /// `SessionAgent` refuses it unless it is the current one.
    pub generation: u64,
    /// When the presented token expires (Unix seconds).
    pub token_expires_at: u64,
}

impl Principal {
    /// The user behind a request to a user route.
    pub fn user(&self) -> ApiResult<&User> {
        match self {
            Principal::User(user) => Ok(user),
            Principal::Anonymous => Err(unauthenticated("sign in first")),
            Principal::Runner(_) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "a runner token only opens a runner link",
            )),
        }
    }

    /// The runner grant behind a request to the runner link of `session_id`.
    pub fn runner_of(&self, session_id: &str) -> ApiResult<&RunnerGrant> {
        match self {
            Principal::Runner(grant) if grant.session_id == session_id => Ok(grant),
            _ => Err(invalid_runner_token(
                "a runner token for this session is required",
            )),
        }
    }
}

pub fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, message)
}

/// A user row joined with their membership.
#[derive(Debug, Deserialize)]
pub struct MemberRow {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub default_model: Option<String>,
    /// `None`: not (or no longer) a member of the team.
    pub role: Option<String>,
}

pub const MEMBER_COLUMNS: &str = "u.id AS id, u.email AS email, u.display_name AS display_name, \
     u.avatar_url AS avatar_url, u.default_model AS default_model, m.role AS role";

/// Joins a user (`u`) with their membership (`m`) in the team.
pub const MEMBER_JOIN: &str =
    "LEFT JOIN memberships m ON m.user_id = u.id AND m.team_id = 'default'";

impl MemberRow {
    fn into_user(self, method: AuthMethod) -> ApiResult<User> {
        let role = self
            .role
            .as_deref()
            .and_then(TeamRole::parse)
            .ok_or_else(|| {
                ApiError::new(ErrorCode::Forbidden, "you are not a member of this team")
            })?;
        Ok(User {
            id: self.id,
            email: self.email,
            name: self.display_name,
            avatar_url: self.avatar_url,
            role,
            default_model: self.default_model,
            method,
        })
    }
}

/// Decides who `req` acts for. Credentials that are present but not valid are
/// refused here (401); no credentials at all is [`Principal::Anonymous`], which the
/// router refuses unless the route is public.
pub async fn authenticate(req: &Request, env: &Env) -> ApiResult<Principal> {
    let path = req.path();
    if let Some(session_id) = runner_route_session(&req.method(), &path) {
        return authenticate_runner(req, env, session_id);
    }
    let method = req.method().to_string();
    let header = |name: &str| req.headers().get(name).ok().flatten();
    if let Some(authorization) = header("authorization") {
        let token = bearer_token(&authorization)
            .ok_or_else(|| unauthenticated("expected `Authorization: Bearer <API token>`"))?;
        let user = authenticate_api_token(env, token).await?;
        if let AuthMethod::Token { scopes, .. } = &user.method
            && !access::scope_allows(scopes, &method)
        {
            return Err(ApiError::new(
                ErrorCode::InsufficientScope,
                "this API token is read-only; a token with the `write` scope is needed",
            ));
        }
        return Ok(Principal::User(user));
    }
    let cookie = header("cookie").unwrap_or_default();
    let Some(session_token) = access::cookie_value(&cookie, SESSION_COOKIE) else {
        return Ok(Principal::Anonymous);
    };
    let user = authenticate_cookie(env, session_token).await?;
    if !access::csrf_ok(&method, session_token, header(CSRF_HEADER).as_deref()) {
        return Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "send the `X-CSRF-Token` header with the csrf_token from GET /api/me",
        ));
    }
    Ok(Principal::User(user))
}

/// The user signed in with the session cookie `session_token`.
pub async fn authenticate_cookie(env: &Env, session_token: &str) -> ApiResult<User> {
    let token_hash = access::sha256_hex(session_token);
    let now = clock::now_ms();
    if let Some(user) = cache::get(&token_hash, now) {
        return Ok(user);
    }
    let row: Option<MemberRow> = d1::first(
        env,
        &format!(
            "SELECT {MEMBER_COLUMNS} FROM auth_sessions s JOIN users u ON u.id = s.user_id {MEMBER_JOIN} \
             WHERE s.token_hash = ? AND s.expires_at > ?"
        ),
        &[Arg::Text(&token_hash), Arg::Int(clock::now_ms())],
    )
    .await?;
    let row = row.ok_or_else(|| unauthenticated("the session has expired or was signed out"))?;
    let user = row.into_user(AuthMethod::Cookie {
        csrf_token: access::csrf_token(session_token),
        token_hash: token_hash.clone(),
    })?;
    cache::put(token_hash, user.clone(), now);
    Ok(user)
}

#[derive(Deserialize)]
struct TokenRow {
    token_id: String,
    scopes: String,
    token_expires_at: Option<i64>,
    token_last_used_at: Option<i64>,
    #[serde(flatten)]
    member: MemberRow,
}

async fn authenticate_api_token(env: &Env, token: &str) -> ApiResult<User> {
    if !token.starts_with(API_TOKEN_PREFIX) {
        return Err(unauthenticated("not a Nightshift API token"));
    }
    let now = clock::now_ms();
    let token_hash = access::sha256_hex(token);
    if let Some(user) = cache::get(&token_hash, now)
        && let AuthMethod::Token { expires_at, .. } = &user.method
        && expires_at.is_none_or(|expires_at| expires_at > now)
    {
        return Ok(user);
    }
    let row: Option<TokenRow> = d1::first(
        env,
        &format!(
            "SELECT t.id AS token_id, t.scopes AS scopes, t.expires_at AS token_expires_at, \
             t.last_used_at AS token_last_used_at, \
             {MEMBER_COLUMNS} \
             FROM api_tokens t JOIN users u ON u.id = t.user_id {MEMBER_JOIN} \
             WHERE t.token_hash = ? AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > ?)"
        ),
        &[Arg::Text(&token_hash), Arg::Int(now)],
    )
    .await?;
    let row = row.ok_or_else(|| unauthenticated("the API token is unknown, expired or revoked"))?;
    // Recorded at most once a minute: reading with a token does not write D1 each time.
    if crate::rate_limit::last_used_due(row.token_last_used_at, now) {
        d1::run(
            env,
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
            &[Arg::Int(now), Arg::Text(&row.token_id)],
        )
        .await?;
    }
    let scopes = access::parse_scopes(&row.scopes);
    let user = row.member.into_user(AuthMethod::Token {
        id: row.token_id,
        scopes,
        expires_at: row.token_expires_at,
    })?;
    cache::put(token_hash, user.clone(), now);
    Ok(user)
}

fn authenticate_runner(req: &Request, env: &Env, session_id: &str) -> ApiResult<Principal> {
    let header = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let token = bearer_token(&header)
        .ok_or_else(|| invalid_runner_token("expected `Authorization: Bearer <runner token>`"))?;
    let key = config::runner_token_key(env).map_err(ApiError::internal)?;
    let claims = key
        .verify(token, session_id, clock::now_secs())
        .map_err(|error| invalid_runner_token(error.to_string()))?;
    Ok(Principal::Runner(RunnerGrant {
        session_id: claims.session_id,
        generation: claims.generation,
        token_expires_at: claims.expires_at,
    }))
}

fn invalid_runner_token(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRunnerToken, message)
}

/// The session id of a request to one of the runner's routes (the runner link,
/// artifact uploads), whose only credential is a runner token.
pub fn runner_route_session<'a>(method: &worker::Method, path: &'a str) -> Option<&'a str> {
    let route = crate::routes::resolve(method, path).ok()?;
    if route.access != nightshift_protocol::auth::Access::Runner {
        return None;
    }
    route.session_id().filter(|id| !id.is_empty())
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `bytes` random bytes from the runtime's cryptographic generator, base64url
/// encoded (no padding), after `prefix`.
pub fn random_token(prefix: &str, bytes: u32) -> ApiResult<String> {
    let crypto = Reflect::get(&global(), &JsValue::from_str("crypto"))
        .map_err(|_| ApiError::internal("crypto is not available"))?;
    let get_random_values: Function = Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| ApiError::internal("crypto.getRandomValues is not available"))?;
    let array = Uint8Array::new_with_length(bytes);
    get_random_values
        .call1(&crypto, &array)
        .map_err(|_| ApiError::internal("crypto.getRandomValues failed"))?;
    Ok(format!("{prefix}{}", base64url(&array.to_vec())))
}

/// Base64url without padding (RFC 4648 section 5).
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_link_paths_are_recognized() {
        use worker::Method;
        let runner = |method: Method, path: &'static str| runner_route_session(&method, path);
        assert_eq!(runner(Method::Get, "/api/sessions/abc/runner"), Some("abc"));
        assert_eq!(
            runner(Method::Post, "/api/sessions/abc/artifacts"),
            Some("abc")
        );
        assert_eq!(runner(Method::Get, "/api/sessions/abc/artifacts/x"), None);
        assert_eq!(runner(Method::Get, "/api/sessions/abc/events"), None);
        assert_eq!(runner(Method::Get, "/api/sessions//runner"), None);
        assert_eq!(runner(Method::Get, "/api/sessions/abc/runner/x"), None);
        assert_eq!(runner(Method::Get, "/api/sessions"), None);
    }

    #[test]
    fn bearer_tokens_are_parsed() {
        assert_eq!(bearer_token("Bearer v2.a.1.1.x"), Some("v2.a.1.1.x"));
        assert_eq!(bearer_token("bearer  tok "), Some("tok"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token(""), None);
    }

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
