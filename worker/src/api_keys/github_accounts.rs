//! Users' GitHub connections in the `APIKeys` Durable Object: the OAuth (or GitHub
//! App user-to-server) token with its refresh token, encrypted together with
//! AES-256-GCM bound to the user ([`super::crypto`]), the GitHub account they belong
//! to, and when they expire.
//!
//! The token is refreshed here, before it expires
//! ([`repo_rules::token_needs_refresh`]) or
//! when a caller found it refused, so one object serializes the refreshes of a
//! user's single-use refresh tokens: a caller that reports a token already replaced
//! gets the new one instead of spending the refresh token again. A refresh GitHub
//! refuses (revoked, expired) marks the connection revoked: the user reconnects.
//!
//! Internal routes: `PUT /github/{user}` (store), `GET /github/{user}` (the account,
//! no secret), `POST /github/{user}/token?failed=<sha256 of a refused token>` (a live
//! token), `DELETE /github/{user}` (forget).

use std::time::Duration;

use nightshift_protocol::ErrorCode;
use nightshift_protocol::redacted::Redacted;
use nightshift_session::repo_rules;
use serde::{Deserialize, Serialize};
use worker::{Fetch, Headers, Method, Request, RequestInit, SqlStorageValue};

use super::{APIKeys, crypto};
use crate::api_error::{ApiError, ApiResult};
use crate::timeout::with_timeout;
use crate::{access, clock, config};

const REFRESH_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS github_accounts (
    user_id TEXT PRIMARY KEY,
    github_id INTEGER NOT NULL,
    login TEXT NOT NULL,
    name TEXT,
    scopes TEXT NOT NULL,
    expires_at INTEGER,
    refresh_expires_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    iv TEXT NOT NULL,
    ciphertext TEXT NOT NULL
)";

/// `PUT /github/{user}`: a connection just made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreGithub {
    pub github_id: u64,
    pub login: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub access_token: Redacted<String>,
    pub refresh_token: Option<Redacted<String>>,
    /// ms since the epoch; `None` for a token that does not expire (OAuth Apps).
    pub expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
}

/// `GET /github/{user}`: the connected account, without its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GithubAccount {
    pub github_id: u64,
    pub login: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub revoked: bool,
}

/// `POST /github/{user}/token`: a token good for a while.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveToken {
    pub access_token: Redacted<String>,
    pub expires_at: Option<i64>,
    pub account: GithubAccount,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    access: String,
    refresh: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    github_id: i64,
    login: String,
    name: Option<String>,
    scopes: String,
    expires_at: Option<i64>,
    refresh_expires_at: Option<i64>,
    revoked: i64,
    iv: String,
    ciphertext: String,
}

impl Row {
    fn account(&self) -> GithubAccount {
        GithubAccount {
            github_id: u64::try_from(self.github_id).unwrap_or_default(),
            login: self.login.clone(),
            name: self.name.clone(),
            scopes: serde_json::from_str(&self.scopes).unwrap_or_default(),
            revoked: self.revoked != 0,
        }
    }
}

/// What GitHub's token endpoint answers to a refresh (errors come with 200 too).
#[derive(Deserialize)]
struct Refreshed {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    refresh_token_expires_in: Option<i64>,
    error: Option<String>,
}

pub fn not_connected(message: &str) -> ApiError {
    ApiError::new(ErrorCode::GithubNotConnected, message.to_owned())
}

fn aad(user_id: &str) -> String {
    format!("github:{user_id}")
}

impl APIKeys {
    fn github_row(&self, user_id: &str) -> ApiResult<Option<Row>> {
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT * FROM github_accounts WHERE user_id = ?",
                vec![SqlStorageValue::String(user_id.to_owned())],
            )?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    pub(super) fn github_account(&self, user_id: &str) -> ApiResult<Option<GithubAccount>> {
        Ok(self.github_row(user_id)?.map(|row| row.account()))
    }

    pub(super) async fn github_store(&self, user_id: &str, store: StoreGithub) -> ApiResult<()> {
        let sealed = Sealed {
            access: store.access_token.into_inner(),
            refresh: store.refresh_token.map(Redacted::into_inner),
        };
        let (iv, ciphertext) = crypto::encrypt(
            &self.encryption_key()?,
            &aad(user_id),
            &serde_json::to_string(&sealed)?,
        )
        .await
        .map_err(|error| ApiError::internal(error.0))?;
        let opt =
            |value: Option<i64>| value.map_or(SqlStorageValue::Null, SqlStorageValue::Integer);
        self.sql.exec(
            "INSERT OR REPLACE INTO github_accounts (user_id, github_id, login, name, scopes, \
             expires_at, refresh_expires_at, revoked, updated_at, iv, ciphertext) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            vec![
                SqlStorageValue::String(user_id.to_owned()),
                SqlStorageValue::Integer(i64::try_from(store.github_id).unwrap_or_default()),
                SqlStorageValue::String(store.login),
                store
                    .name
                    .map_or(SqlStorageValue::Null, SqlStorageValue::String),
                SqlStorageValue::String(serde_json::to_string(&store.scopes)?),
                opt(store.expires_at),
                opt(store.refresh_expires_at),
                SqlStorageValue::Integer(clock::now_ms()),
                SqlStorageValue::String(iv),
                SqlStorageValue::String(ciphertext),
            ],
        )?;
        Ok(())
    }

    pub(super) fn github_forget(&self, user_id: &str) -> ApiResult<()> {
        self.sql.exec(
            "UPDATE github_accounts SET revoked = 1 WHERE user_id = ?",
            vec![SqlStorageValue::String(user_id.to_owned())],
        )?;
        Ok(())
    }

    /// A token for `user_id` that is not about to expire and is not the one the
    /// caller saw refused (`failed`: its SHA-256, hex).
    pub(super) async fn github_token(
        &self,
        user_id: &str,
        failed: Option<&str>,
    ) -> ApiResult<LiveToken> {
        let Some(row) = self.github_row(user_id)? else {
            return Err(not_connected(
                "connect your GitHub account first (GET /auth/github/connect)",
            ));
        };
        if row.revoked != 0 {
            return Err(not_connected(
                "your GitHub authorization was revoked or has expired; reconnect GitHub",
            ));
        }
        let key = self.encryption_key()?;
        let sealed: Sealed = serde_json::from_str(
            &crypto::decrypt(&key, &aad(user_id), &row.iv, &row.ciphertext)
                .await
                .map_err(|error| ApiError::internal(error.0))?,
        )?;
        let now = clock::now_ms();
        let refused = failed.is_some_and(|hash| {
            access::constant_time_eq(hash, &access::sha256_hex(&sealed.access))
        });
        if !repo_rules::token_needs_refresh(row.expires_at, now, refused) {
            return Ok(LiveToken {
                access_token: sealed.access.into(),
                expires_at: row.expires_at,
                account: row.account(),
            });
        }
        let usable_refresh = sealed
            .refresh
            .filter(|_| row.refresh_expires_at.is_none_or(|at| at > now));
        let Some(refresh) = usable_refresh else {
            self.github_forget(user_id)?;
            return Err(not_connected(
                "your GitHub authorization has expired; reconnect GitHub",
            ));
        };
        let Some(fresh) = self.refresh(&refresh).await? else {
            self.github_forget(user_id)?;
            return Err(not_connected(
                "GitHub refused to renew your authorization (revoked?); reconnect GitHub",
            ));
        };
        let account = row.account();
        let store = StoreGithub {
            github_id: account.github_id,
            login: account.login.clone(),
            name: account.name.clone(),
            scopes: account.scopes.clone(),
            access_token: fresh.0.clone().into(),
            refresh_token: Some(fresh.1.unwrap_or(refresh).into()),
            expires_at: fresh.2.map(|secs| now + secs * 1000),
            refresh_expires_at: fresh.3.map(|secs| now + secs * 1000),
        };
        let expires_at = store.expires_at;
        self.github_store(user_id, store).await?;
        Ok(LiveToken {
            access_token: fresh.0.into(),
            expires_at,
            account,
        })
    }

    /// Spends `refresh` at GitHub's token endpoint: the new access token, refresh
    /// token and their lifetimes (s), or `None` when GitHub refused it.
    #[allow(clippy::type_complexity)]
    async fn refresh(
        &self,
        refresh: &str,
    ) -> ApiResult<Option<(String, Option<String>, Option<i64>, Option<i64>)>> {
        let (Some(id), Some(secret)) = (
            config::var(&self.env, "GITHUB_CLIENT_ID"),
            config::var(&self.env, "GITHUB_CLIENT_SECRET"),
        ) else {
            return Ok(None);
        };
        let url = config::var(&self.env, "GITHUB_TOKEN_URL")
            .unwrap_or_else(|| "https://github.com/login/oauth/access_token".to_owned());
        let encode = crate::github::api::encode;
        let form = format!(
            "client_id={}&client_secret={}&grant_type=refresh_token&refresh_token={}",
            encode(&id),
            encode(&secret),
            encode(refresh)
        );
        let headers = Headers::new();
        headers.set("content-type", "application/x-www-form-urlencoded")?;
        headers.set("accept", "application/json")?;
        headers.set("user-agent", "nightshift")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(wasm_bindgen::JsValue::from_str(&form)));
        let request = Request::new_with_init(&url, &init)?;
        let mut response = with_timeout(REFRESH_TIMEOUT, Fetch::Request(request).send())
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::GithubUnavailable,
                    "GitHub's token endpoint did not answer",
                )
            })?
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::GithubUnavailable,
                    "GitHub's token endpoint could not be reached",
                )
            })?;
        let answer: Refreshed = match response.json().await {
            Ok(answer) => answer,
            Err(_) => return Ok(None),
        };
        if let Some(error) = answer.error {
            worker::console_warn!("a GitHub token refresh was refused: {error}");
            return Ok(None);
        }
        Ok(answer.access_token.map(|token| {
            (
                token,
                answer.refresh_token,
                answer.expires_in,
                answer.refresh_token_expires_in,
            )
        }))
    }
}
