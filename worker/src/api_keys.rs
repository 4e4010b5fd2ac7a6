//! The `APIKeys` Durable Object: users' and the team's LLM keys, encrypted at rest
//! with AES-256-GCM ([`crypto`], WebCrypto, key from the `ENCRYPTION_KEY` secret).
//!
//! One global instance, SQLite-backed. A key is never answered back once stored:
//! listings carry its last four characters; only [`secret`] (used by
//! `crate::llm_config` when a turn starts) decrypts one, and that value goes to the
//! session's runner only. Nothing here logs a key.
//!
//! Internal routes: `GET /keys?user_id=` (the user's and the team's, no secrets),
//! `POST /keys` (store), `DELETE /keys/{id}?user_id=&admin=`,
//! `GET /secret/{id}?user_id=` (decrypt one the user may use); and users' GitHub
//! connections ([`github_accounts`]), under `/github/{user}`.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::{KeyInfo, KeyProvider, KeyScope};
use nightshift_protocol::redacted::Redacted;
use serde::{Deserialize, Serialize};
use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, Result, SqlStorage,
    SqlStorageValue, State, Stub, durable_object,
};

use crate::api_error::{self, ApiError, ApiResult, json};
use crate::timeout::with_timeout;
use crate::{body, config};

pub mod crypto;
pub mod github_accounts;

const KEYS_NAME: &str = "keys";
const KEYS_ORIGIN: &str = "https://api-keys.internal";
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /keys`: a key to store, validated by the Worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreKey {
    pub id: String,
    pub scope: KeyScope,
    /// The user storing it (the owner of a user key).
    pub user_id: String,
    pub provider: KeyProvider,
    pub api_key: Redacted<String>,
    pub base_url: Option<String>,
    pub models: Vec<String>,
    pub name: String,
    pub created_at: i64,
    /// How many keys of its scope its owner (or the team) may hold, this one
    /// included.
    pub max_keys: u32,
}

/// `GET /secret/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    pub api_key: Redacted<String>,
}

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    scope: String,
    user_id: Option<String>,
    provider: String,
    name: String,
    base_url: Option<String>,
    models: String,
    last4: String,
    created_at: i64,
    iv: String,
    ciphertext: String,
}

/// A stored provider name; anything unknown is an OpenAI-compatible endpoint.
fn provider_parse(text: &str) -> KeyProvider {
    KeyProvider::parse(text).unwrap_or(KeyProvider::OpenaiCompatible)
}

impl KeyRow {
    fn info(&self) -> KeyInfo {
        KeyInfo {
            id: self.id.clone(),
            scope: if self.scope == "team" {
                KeyScope::Team
            } else {
                KeyScope::User
            },
            provider: provider_parse(&self.provider),
            name: self.name.clone(),
            base_url: self.base_url.clone(),
            models: serde_json::from_str(&self.models).unwrap_or_default(),
            last4: self.last4.clone(),
            created_at: self.created_at,
        }
    }

    /// Whether `user_id` may use (and see) this key.
    fn usable_by(&self, user_id: &str) -> bool {
        self.scope == "team" || self.user_id.as_deref() == Some(user_id)
    }
}

/// The last four characters of a key, for recognizing it.
pub fn last4(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[durable_object(fetch)]
#[allow(clippy::upper_case_acronyms)]
pub struct APIKeys {
    sql: SqlStorage,
    env: Env,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    user_id TEXT,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    base_url TEXT,
    models TEXT NOT NULL,
    last4 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    iv TEXT NOT NULL,
    ciphertext TEXT NOT NULL
)";

/// A user's keys are found without reading anyone else's.
const INDEX: &str = "CREATE INDEX IF NOT EXISTS keys_by_user ON keys (user_id)";

/// The usable keys of a user (theirs, then the team's), newest first.
const USABLE: &str = "SELECT * FROM keys WHERE user_id = ?1 OR scope = 'team' \
     ORDER BY CASE scope WHEN 'user' THEN 0 ELSE 1 END, created_at DESC";

impl DurableObject for APIKeys {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for statement in [SCHEMA, INDEX, github_accounts::SCHEMA] {
            if let Err(error) = sql.exec(statement, None) {
                worker::console_error!("APIKeys schema: {error}");
            }
        }
        Self { sql, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let url = req.url()?;
        let query = |name: &str| {
            url.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default()
        };
        let user_id = query("user_id");
        let path = url.path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let answer = match (req.method(), segments.as_slice()) {
            (Method::Get, ["keys"]) => self.list(&user_id),
            (Method::Post, ["keys"]) => match body::read_json::<StoreKey>(&mut req).await {
                Ok(key) => self.store(key).await,
                Err(error) => Err(error),
            },
            (Method::Delete, ["keys", id]) => self.delete(id, &user_id, query("admin") == "true"),
            (Method::Get, ["secret", id]) => self.secret(id, &user_id).await,
            (Method::Put, ["github", user]) => {
                match body::read_json::<github_accounts::StoreGithub>(&mut req).await {
                    Ok(store) => self
                        .github_store(user, store)
                        .await
                        .and_then(|()| Ok(Response::empty()?.with_status(204))),
                    Err(error) => Err(error),
                }
            }
            (Method::Get, ["github", user]) => {
                self.github_account(user).map(|account| json(200, &account))
            }
            (Method::Post, ["github", user, "token"]) => {
                let failed = query("failed");
                self.github_token(user, (!failed.is_empty()).then_some(failed.as_str()))
                    .await
                    .map(|token| json(200, &token))
            }
            (Method::Delete, ["github", user]) => self
                .github_forget(user)
                .and_then(|()| Ok(Response::empty()?.with_status(204))),
            _ => Err(ApiError::not_found(format!("no keys route {path}"))),
        };
        Ok(answer.unwrap_or_else(ApiError::into_response))
    }
}

impl APIKeys {
    fn usable_rows(&self, user_id: &str) -> ApiResult<Vec<KeyRow>> {
        Ok(self
            .sql
            .exec(USABLE, vec![SqlStorageValue::String(user_id.to_owned())])?
            .to_array()?)
    }

    fn list(&self, user_id: &str) -> ApiResult<Response> {
        let keys: Vec<KeyInfo> = self
            .usable_rows(user_id)?
            .iter()
            .filter(|row| row.usable_by(user_id))
            .map(KeyRow::info)
            .collect();
        Ok(json(200, &keys))
    }

    fn encryption_key(&self) -> ApiResult<Vec<u8>> {
        let secret = config::var(&self.env, "ENCRYPTION_KEY").ok_or_else(|| {
            ApiError::internal("ENCRYPTION_KEY is not set; LLM keys cannot be stored")
        })?;
        crypto::decode_key(&secret).map_err(|error| ApiError::internal(error.0))
    }

    async fn store(&self, key: StoreKey) -> ApiResult<Response> {
        let encryption_key = self.encryption_key()?;
        let (iv, ciphertext) = crypto::encrypt(&encryption_key, &key.id, key.api_key.expose())
            .await
            .map_err(|error| ApiError::internal(error.0))?;
        let row = KeyRow {
            id: key.id.clone(),
            scope: key.scope.as_str().to_owned(),
            user_id: (key.scope == KeyScope::User).then(|| key.user_id.clone()),
            provider: key.provider.as_str().to_owned(),
            name: key.name.clone(),
            base_url: key.base_url.clone(),
            models: serde_json::to_string(&key.models)?,
            last4: last4(key.api_key.expose()),
            created_at: key.created_at,
            iv,
            ciphertext,
        };
        // Counted right before the insert, with no await between: two stores at once
        // cannot both slip under the cap.
        if self.count(&row.scope, &key.user_id)? >= key.max_keys {
            let whose = if key.scope == KeyScope::Team {
                "the team already has"
            } else {
                "you already have"
            };
            return Err(crate::limits::exceeded(
                crate::limits::Cap::Keys,
                key.max_keys,
                &format!("{whose} {} keys; delete one first", key.max_keys),
            ));
        }
        let text = |value: &str| SqlStorageValue::String(value.to_owned());
        self.sql.exec(
            "INSERT INTO keys (id, scope, user_id, provider, name, base_url, models, last4, \
             created_at, iv, ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                text(&row.id),
                text(&row.scope),
                row.user_id.as_deref().map_or(SqlStorageValue::Null, text),
                text(&row.provider),
                text(&row.name),
                row.base_url.as_deref().map_or(SqlStorageValue::Null, text),
                text(&row.models),
                text(&row.last4),
                SqlStorageValue::Integer(row.created_at),
                text(&row.iv),
                text(&row.ciphertext),
            ],
        )?;
        Ok(json(201, &row.info()))
    }

    fn find(&self, id: &str) -> ApiResult<Option<KeyRow>> {
        let rows: Vec<KeyRow> = self
            .sql
            .exec(
                "SELECT * FROM keys WHERE id = ?",
                vec![SqlStorageValue::String(id.to_owned())],
            )?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// How many keys of `scope` its owner holds (`user_id` for user keys).
    fn count(&self, scope: &str, user_id: &str) -> ApiResult<u32> {
        #[derive(Deserialize)]
        struct Count {
            n: u32,
        }
        let rows: Vec<Count> = self
            .sql
            .exec(
                "SELECT COUNT(*) AS n FROM keys WHERE scope = ?1 AND (?1 = 'team' OR user_id = ?2)",
                vec![
                    SqlStorageValue::String(scope.to_owned()),
                    SqlStorageValue::String(user_id.to_owned()),
                ],
            )?
            .to_array()?;
        Ok(rows.first().map_or(0, |row| row.n))
    }

    fn delete(&self, id: &str, user_id: &str, admin: bool) -> ApiResult<Response> {
        let row = self
            .find(id)?
            .filter(|row| row.usable_by(user_id))
            .ok_or_else(|| ApiError::not_found(format!("no key {id}")))?;
        if row.scope == "team" && !admin {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only team admins may delete team keys",
            ));
        }
        self.sql.exec(
            "DELETE FROM keys WHERE id = ?",
            vec![SqlStorageValue::String(id.to_owned())],
        )?;
        Ok(Response::empty()?.with_status(204))
    }

    async fn secret(&self, id: &str, user_id: &str) -> ApiResult<Response> {
        let row = self
            .find(id)?
            .filter(|row| row.usable_by(user_id))
            .ok_or_else(|| ApiError::not_found(format!("no key {id}")))?;
        let api_key = crypto::decrypt(&self.encryption_key()?, &row.id, &row.iv, &row.ciphertext)
            .await
            .map_err(|error| ApiError::internal(error.0))?;
        Ok(json(
            200,
            &Secret {
                api_key: api_key.into(),
            },
        ))
    }
}

fn stub(env: &Env) -> worker::Result<Stub> {
    env.durable_object("API_KEYS")?.get_by_name(KEYS_NAME)
}

pub(crate) async fn call(
    env: &Env,
    method: Method,
    path: &str,
    body: Option<String>,
) -> ApiResult<Response> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        let headers = worker::Headers::new();
        headers.set("content-type", "application/json")?;
        init.with_headers(headers)
            .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
    }
    let request = Request::new_with_init(&format!("{KEYS_ORIGIN}{path}"), &init)?;
    let response = with_timeout(CALL_TIMEOUT, stub(env)?.fetch_with_request(request))
        .await
        .map_err(|timed_out| {
            ApiError::internal(format!("the key store did not answer: {timed_out}"))
        })??;
    if (200..300).contains(&response.status_code()) {
        Ok(response)
    } else {
        Err(api_error::from_response(response).await)
    }
}

pub(crate) fn encode(value: &str) -> String {
    worker::js_sys::encode_uri_component(value).into()
}

/// The keys `user_id` may use: their own, then the team's (newest first).
pub async fn list(env: &Env, user_id: &str) -> ApiResult<Vec<KeyInfo>> {
    let mut response = call(
        env,
        Method::Get,
        &format!("/keys?user_id={}", encode(user_id)),
        None,
    )
    .await?;
    Ok(response.json().await?)
}

pub async fn store(env: &Env, key: &StoreKey) -> ApiResult<KeyInfo> {
    let mut response = call(
        env,
        Method::Post,
        "/keys",
        Some(serde_json::to_string(key)?),
    )
    .await?;
    Ok(response.json().await?)
}

pub async fn delete(env: &Env, user_id: &str, admin: bool, id: &str) -> ApiResult<()> {
    call(
        env,
        Method::Delete,
        &format!(
            "/keys/{}?user_id={}&admin={admin}",
            encode(id),
            encode(user_id)
        ),
        None,
    )
    .await?;
    Ok(())
}

/// The decrypted key `id`, if `user_id` may use it.
pub async fn secret(env: &Env, user_id: &str, id: &str) -> ApiResult<String> {
    let mut response = call(
        env,
        Method::Get,
        &format!("/secret/{}?user_id={}", encode(id), encode(user_id)),
        None,
    )
    .await?;
    let secret: Secret = response.json().await?;
    Ok(secret.api_key.into_inner())
}
