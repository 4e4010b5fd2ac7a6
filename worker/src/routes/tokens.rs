//! Personal API tokens: `GET`/`POST /api/tokens`, `DELETE /api/tokens/{id}`.
//!
//! A token is shown once, when it is created; only its SHA-256 is stored. Its scopes
//! are enforced by the authentication gate (`read` tokens cannot change anything).
//! A token created with a token has no scope its parent lacks and expires no later
//! than its parent (the expiry is capped at the parent's).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::{ApiTokenInfo, CreateTokenRequest, CreatedToken};
use serde::Deserialize;
use worker::{Env, Request, Response};

use crate::access;
use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::d1::{self, Arg};
use crate::auth::{API_TOKEN_PREFIX, AuthMethod, User, random_token};
use crate::{body, clock, ids};

/// The longest lifetime a token may be given.
const MAX_DAYS: u32 = 3650;

#[derive(Deserialize)]
struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: Option<i64>,
}

impl From<TokenRow> for ApiTokenInfo {
    fn from(row: TokenRow) -> Self {
        ApiTokenInfo {
            id: row.id,
            name: row.name,
            scopes: access::parse_scopes(&row.scopes),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
        }
    }
}

pub async fn list(env: &Env, user: &User) -> ApiResult<Response> {
    let rows: Vec<TokenRow> = d1::all(
        env,
        "SELECT id, name, scopes, created_at, last_used_at, expires_at FROM api_tokens \
         WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC",
        &[Arg::Text(&user.id)],
    )
    .await?;
    let tokens: Vec<ApiTokenInfo> = rows.into_iter().map(ApiTokenInfo::from).collect();
    Ok(json(200, &tokens))
}

pub async fn create(req: &mut Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: CreateTokenRequest = body::read_json(req).await?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("a token's name has 1 to 100 characters"));
    }
    if request.scopes.is_empty() {
        return Err(invalid("a token needs at least one scope: read, write"));
    }
    if request
        .expires_in_days
        .is_some_and(|days| days == 0 || days > MAX_DAYS)
    {
        return Err(invalid(format!("expires_in_days is 1 to {MAX_DAYS}")));
    }
    let now = clock::now_ms();
    let requested_expiry = request
        .expires_in_days
        .map(|days| now + i64::from(days) * 86_400_000);
    let scopes = access::parse_scopes(&access::format_scopes(&request.scopes));
    // A token mints no child with more scopes, and none that outlives it.
    let expires_at = match &user.method {
        AuthMethod::Token {
            scopes: parent_scopes,
            expires_at: parent_expiry,
            ..
        } => {
            if !access::scopes_within(&scopes, parent_scopes) {
                return Err(ApiError::new(
                    ErrorCode::InsufficientScope,
                    "a token cannot create a token with scopes it does not have",
                ));
            }
            access::child_expiry(requested_expiry, *parent_expiry)
        }
        AuthMethod::Cookie { .. } => requested_expiry,
    };
    let info = ApiTokenInfo {
        id: ids::new_id()?,
        name: name.to_owned(),
        scopes,
        created_at: now,
        last_used_at: None,
        expires_at,
    };
    let token = random_token(API_TOKEN_PREFIX, 32)?;
    d1::run(
        env,
        "INSERT INTO api_tokens (id, user_id, name, token_hash, scopes, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            Arg::Text(&info.id),
            Arg::Text(&user.id),
            Arg::Text(&info.name),
            Arg::Text(&access::sha256_hex(&token)),
            Arg::Text(&access::format_scopes(&info.scopes)),
            Arg::Int(now),
            Arg::OptInt(info.expires_at),
        ],
    )
    .await?;
    Ok(json(201, &CreatedToken { token, info }))
}

pub async fn delete(env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let changed = d1::run(
        env,
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        &[
            Arg::Int(clock::now_ms()),
            Arg::Text(id),
            Arg::Text(&user.id),
        ],
    )
    .await?;
    if changed == 0 {
        return Err(ApiError::not_found(format!("no token {id}")));
    }
    crate::auth::cache::wait_out(&user.id).await;
    Ok(Response::empty()?.with_status(204))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}
