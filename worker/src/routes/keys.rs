//! LLM keys: `GET`/`POST /api/keys`, `DELETE /api/keys/{id}`, kept encrypted by the
//! `APIKeys` Durable Object (`crate::api_keys`). Team keys are stored and deleted by
//! admins only; a key is never answered back, only its last four characters.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::TeamRole;
use nightshift_protocol::auth::{CreateKeyRequest, KeyProvider, KeyScope};
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::api_keys::{self, StoreKey};
use crate::auth::User;
use crate::{body, clock, config, hosts, ids, limits};

pub async fn list(env: &Env, user: &User) -> ApiResult<Response> {
    Ok(json(200, &api_keys::list(env, &user.id).await?))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

pub async fn create(req: &mut Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: CreateKeyRequest = body::read_json(req).await?;
    if request.scope == KeyScope::Team && user.role != TeamRole::Admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only team admins may store team keys",
        ));
    }
    let api_key = request.api_key.expose().trim().to_owned();
    if api_key.len() < 8 || api_key.len() > 4096 || api_key.chars().any(char::is_whitespace) {
        return Err(invalid(
            "api_key must be 8 to 4096 characters without spaces",
        ));
    }
    let base_url = request
        .base_url
        .as_deref()
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty());
    if let Some(url) = &base_url {
        check_base_url(env, url)?;
    }
    let models: Vec<String> = request
        .models
        .unwrap_or_default()
        .into_iter()
        .map(|model| model.trim().to_owned())
        .filter(|model| !model.is_empty())
        .collect();
    if models.len() > 50 || models.iter().any(|model| model.len() > 200) {
        return Err(invalid("at most 50 models of at most 200 characters"));
    }
    if request.provider == KeyProvider::OpenaiCompatible
        && (base_url.is_none() || models.is_empty())
    {
        return Err(invalid(
            "an OpenAI-compatible key needs base_url and at least one model",
        ));
    }
    let name = request
        .name
        .map(|name| name.trim().chars().take(100).collect::<String>())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| {
            match request.provider {
                KeyProvider::Anthropic => "Anthropic",
                KeyProvider::Openai => "OpenAI",
                KeyProvider::OpenaiCompatible => "OpenAI-compatible",
            }
            .to_owned()
        });
    let key = StoreKey {
        id: ids::new_id()?,
        scope: request.scope,
        user_id: user.id.clone(),
        provider: request.provider,
        api_key: api_key.into(),
        base_url,
        models,
        name,
        created_at: clock::now_ms(),
        max_keys: limits::current(env).await?.keys,
    };
    Ok(json(201, &api_keys::store(env, &key).await?))
}

/// An http(s) URL whose host is neither internal nor the platform's own, unless the
/// operator allowlisted it (`LLM_BASE_URL_ALLOW`); see `crate::hosts`.
fn check_base_url(env: &Env, url: &str) -> ApiResult<()> {
    let parsed = worker::Url::parse(url)
        .ok()
        .filter(|parsed| matches!(parsed.scheme(), "http" | "https"));
    let Some(host) = parsed.as_ref().and_then(|parsed| parsed.host_str()) else {
        return Err(invalid("base_url must be an http(s) URL"));
    };
    let own_hosts = own_hosts(env);
    let allow = hosts::parse_allowlist(&config::var(env, "LLM_BASE_URL_ALLOW").unwrap_or_default());
    if hosts::llm_host_allowed(host, &own_hosts, &allow) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::BaseUrlNotAllowed,
            format!(
                "base_url points at `{host}`, an internal or platform address; an operator can allow it with LLM_BASE_URL_ALLOW"
            ),
        ))
    }
}

/// The platform's own hosts (the Worker's, the sandbox backend's): never a target
/// for an outbound call a user configures.
pub(crate) fn own_hosts(env: &Env) -> Vec<String> {
    ["WORKER_URL", "SANDBOX_BACKEND_URL"]
        .iter()
        .filter_map(|name| config::var(env, name))
        .chain([config::sandbox_backend_url(env)])
        .filter_map(|own| {
            worker::Url::parse(&own)
                .ok()
                .and_then(|own| own.host_str().map(str::to_owned))
        })
        .collect()
}

pub async fn delete(env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    api_keys::delete(env, &user.id, user.role == TeamRole::Admin, id).await?;
    Ok(Response::empty()?.with_status(204))
}
