//! Which LLM a turn uses, and with which key.
//!
//! This is the one seam for LLM credentials: the `SessionAgent` asks
//! [`resolve_model`] for every turn it starts, sends the answer to its runner in the
//! `prompt` frame, and then has [`record_source`] note whose key it was. Keys are looked up by the user who sent the turn's prompt
//! (the session owner for prompts stored before senders were recorded): their own
//! stored key, else the team's (both in the `APIKeys` Durable Object, encrypted),
//! else the deployment's environment.
//!
//! Order: an OpenAI-compatible endpoint (`LLM_BASE_URL` + `LLM_MODEL`, with
//! `LLM_API_KEY` when it needs one), else Anthropic (`ANTHROPIC_API_KEY`, with
//! `ANTHROPIC_BASE_URL` and `ANTHROPIC_MODEL` defaulted), else nothing: the runner
//! then fails the turn with a message naming these variables.

use nightshift_protocol::api::ModelInfo;
use nightshift_protocol::auth::{KeyInfo, KeyProvider, KeyScope, LlmSource};
use nightshift_protocol::runner_link::{LlmApi, LlmConfig};
use worker::Env;

use crate::{api_keys, config, sessions_table};

pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";

/// Where keys from the deployment's environment are said to come from.
const ENVIRONMENT_SOURCE: &str = "environment";

/// The LLM for a turn prompted by `user_id`: their own stored key, else the team's,
/// else the environment.
pub async fn resolve(env: &Env, user_id: &str) -> Option<LlmConfig> {
    if let Some(config) = from_stored_keys(env, user_id, None).await {
        return Some(config);
    }
    from_lookup(|name| config::var(env, name))
}

/// Records in D1 whose key a turn of session `session_id` uses (the session's
/// `llm_source`, shown in the list). Run after the turn started, off its path.
pub async fn record_source(env: Env, session_id: String, config: &LlmConfig) {
    let Some(source) = LlmSource::parse(&config.source) else {
        return;
    };
    if let Err(error) = sessions_table::set_llm_source(&env, &session_id, source).await {
        worker::console_error!(
            "recording the LLM source of {session_id}: {}",
            error.message
        );
    }
}

/// The default model of a stored key's provider, when the key names none.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o";
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The models a stored key serves.
pub fn key_models(key: &KeyInfo) -> Vec<String> {
    if !key.models.is_empty() {
        return key.models.clone();
    }
    match key.provider {
        KeyProvider::Anthropic => vec![DEFAULT_ANTHROPIC_MODEL.to_owned()],
        KeyProvider::Openai => vec![DEFAULT_OPENAI_MODEL.to_owned()],
        KeyProvider::OpenaiCompatible => Vec::new(),
    }
}

/// The configuration a stored key gives for `model`.
pub fn config_for_key(key: &KeyInfo, api_key: String, model: String) -> LlmConfig {
    let (api, default_base) = match key.provider {
        KeyProvider::Anthropic => (LlmApi::Anthropic, DEFAULT_ANTHROPIC_BASE_URL),
        KeyProvider::Openai => (LlmApi::OpenAiCompatible, DEFAULT_OPENAI_BASE_URL),
        KeyProvider::OpenaiCompatible => (LlmApi::OpenAiCompatible, ""),
    };
    LlmConfig {
        api,
        base_url: key
            .base_url
            .clone()
            .unwrap_or_else(|| default_base.to_owned())
            .trim_end_matches('/')
            .to_owned(),
        api_key: api_key.into(),
        model,
        source: match key.scope {
            KeyScope::User => LlmSource::User,
            KeyScope::Team => LlmSource::Team,
        }
        .as_str()
        .to_owned(),
    }
}

/// The user's own key (else the team's) serving `model` (`None`: the first key and
/// its first model).
async fn from_stored_keys(env: &Env, user_id: &str, model: Option<&str>) -> Option<LlmConfig> {
    let keys = match api_keys::list(env, user_id).await {
        Ok(keys) => keys,
        Err(error) => {
            worker::console_error!("reading stored LLM keys: {}", error.message);
            return None;
        }
    };
    let (key, model) = keys.iter().find_map(|key| {
        let models = key_models(key);
        match model {
            Some(wanted) => models
                .iter()
                .any(|m| m == wanted)
                .then(|| (key, wanted.to_owned())),
            None => models.first().map(|first| (key, first.clone())),
        }
    })?;
    match api_keys::secret(env, user_id, &key.id).await {
        Ok(api_key) => Some(config_for_key(key, api_key, model)),
        Err(error) => {
            worker::console_error!("decrypting LLM key {}: {}", key.id, error.message);
            None
        }
    }
}

/// [`available_models`] plus the models of the stored keys `user_id` may use (their
/// own first, then the team's), for `GET /api/models`.
pub async fn available_models_with_keys(env: &Env, user_id: &str) -> Vec<ModelInfo> {
    let mut models: Vec<ModelInfo> = Vec::new();
    let keys = api_keys::list(env, user_id).await.unwrap_or_else(|error| {
        worker::console_error!("reading stored LLM keys: {}", error.message);
        Vec::new()
    });
    {
        for key in &keys {
            let config = config_for_key(key, String::new(), String::new());
            for model in key_models(key) {
                if models.iter().any(|known| known.id == model) {
                    continue;
                }
                models.push(ModelInfo {
                    id: model.clone(),
                    name: model,
                    provider: key.provider.as_str().to_owned(),
                    api: config.api,
                    source: config.source.clone(),
                });
            }
        }
    }
    for info in available_models(env, user_id) {
        if !models.iter().any(|known| known.id == info.id) {
            models.push(info);
        }
    }
    models
}

/// The model a new session will use, for showing in the session list.
pub fn model_name(env: &Env) -> Option<String> {
    from_lookup(|name| config::var(env, name)).map(|config| config.model)
}

/// The models the user `user_id` can choose (`GET /api/models`): every model of
/// every provider configured in the environment, the default first.
///
/// `LLM_MODEL` (plus the comma-separated `LLM_MODELS`) on the OpenAI-compatible
/// endpoint, and `ANTHROPIC_MODEL` (plus `ANTHROPIC_MODELS`) when an Anthropic key is
/// set.
pub fn available_models(env: &Env, user_id: &str) -> Vec<ModelInfo> {
    // Per-user and per-team keys will add their providers' models here.
    let _ = user_id;
    models_from_lookup(|name| config::var(env, name))
        .into_iter()
        .map(|(info, _)| info)
        .collect()
}

/// The LLM for the next turn with `model` chosen (`None`: the default). `None` when
/// nothing is configured or the model is not offered any more.
pub async fn resolve_model(env: &Env, user_id: &str, model: Option<&str>) -> Option<LlmConfig> {
    let Some(model) = model else {
        return resolve(env, user_id).await;
    };
    if let Some(config) = from_stored_keys(env, user_id, Some(model)).await {
        return Some(config);
    }
    models_from_lookup(|name| config::var(env, name))
        .into_iter()
        .find(|(info, _)| info.id == model)
        .map(|(_, config)| config)
}

/// Every configured model with the LLM configuration that serves it.
pub fn models_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Vec<(ModelInfo, LlmConfig)> {
    let mut found: Vec<(ModelInfo, LlmConfig)> = Vec::new();
    let mut add = |config: LlmConfig, provider: &str, extra: Option<String>| {
        let extra = extra.unwrap_or_default();
        let names = std::iter::once(config.model.clone()).chain(
            extra
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
        );
        for name in names {
            if found.iter().any(|(info, _)| info.id == name) {
                continue;
            }
            let info = ModelInfo {
                id: name.clone(),
                name: name.clone(),
                provider: provider.to_owned(),
                api: config.api,
                source: config.source.clone(),
            };
            found.push((
                info,
                LlmConfig {
                    model: name,
                    ..config.clone()
                },
            ));
        }
    };
    if let Some(config) = from_lookup(|name| lookup(name)) {
        let (provider, extra) = match config.api {
            LlmApi::OpenAiCompatible => ("openai_compatible", lookup("LLM_MODELS")),
            LlmApi::Anthropic => ("anthropic", lookup("ANTHROPIC_MODELS")),
        };
        let default_api = config.api;
        add(config, provider, extra);
        // Anthropic too, when both are configured.
        if default_api == LlmApi::OpenAiCompatible
            && let Some(anthropic) =
                from_lookup(|name| (!name.starts_with("LLM_")).then(|| lookup(name)).flatten())
        {
            add(anthropic, "anthropic", lookup("ANTHROPIC_MODELS"));
        }
    }
    found
}

/// Applies the order above to variables found by `lookup` (blank means unset).
pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<LlmConfig> {
    if let (Some(base_url), Some(model)) = (lookup("LLM_BASE_URL"), lookup("LLM_MODEL")) {
        return Some(LlmConfig {
            api: LlmApi::OpenAiCompatible,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: lookup("LLM_API_KEY").unwrap_or_default().into(),
            model,
            source: ENVIRONMENT_SOURCE.to_owned(),
        });
    }
    let api_key = lookup("ANTHROPIC_API_KEY")?;
    Some(LlmConfig {
        api: LlmApi::Anthropic,
        base_url: lookup("ANTHROPIC_BASE_URL")
            .unwrap_or_else(|| DEFAULT_ANTHROPIC_BASE_URL.to_owned())
            .trim_end_matches('/')
            .to_owned(),
        api_key: api_key.into(),
        model: lookup("ANTHROPIC_MODEL").unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.to_owned()),
        source: ENVIRONMENT_SOURCE.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve_with(vars: &[(&str, &str)]) -> Option<LlmConfig> {
        let vars: HashMap<_, _> = vars.iter().copied().collect();
        from_lookup(|name| vars.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn an_openai_compatible_endpoint_wins() {
        let config = resolve_with(&[
            ("LLM_BASE_URL", "http://127.0.0.1:9/v1/"),
            ("LLM_MODEL", "m"),
            ("ANTHROPIC_API_KEY", "sk-ant"),
        ])
        .unwrap();
        assert_eq!(config.api, LlmApi::OpenAiCompatible);
        assert_eq!(config.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(config.api_key.expose(), "");
        assert_eq!(config.model, "m");
    }

    #[test]
    fn anthropic_is_used_with_defaults_when_no_endpoint_is_complete() {
        let config = resolve_with(&[
            ("LLM_BASE_URL", "http://x"),
            ("ANTHROPIC_API_KEY", "sk-ant"),
        ])
        .unwrap();
        assert_eq!(config.api, LlmApi::Anthropic);
        assert_eq!(config.base_url, DEFAULT_ANTHROPIC_BASE_URL);
        assert_eq!(config.model, DEFAULT_ANTHROPIC_MODEL);
        assert_eq!(config.api_key.expose(), "sk-ant");
    }

    #[test]
    fn models_list_every_configured_provider_default_first() {
        let vars: HashMap<_, _> = [
            ("LLM_BASE_URL", "http://127.0.0.1:9/v1"),
            ("LLM_MODEL", "m1"),
            ("LLM_MODELS", "m2, m1 ,,m3"),
            ("ANTHROPIC_API_KEY", "sk-ant"),
            ("ANTHROPIC_MODELS", "claude-x"),
        ]
        .into_iter()
        .collect();
        let models = models_from_lookup(|name| vars.get(name).map(|v| v.to_string()));
        let ids: Vec<_> = models.iter().map(|(info, _)| info.id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2", "m3", DEFAULT_ANTHROPIC_MODEL, "claude-x"]);
        let (info, config) = &models[1];
        assert_eq!(info.provider, "openai_compatible");
        assert_eq!(config.model, "m2");
        assert_eq!(config.base_url, "http://127.0.0.1:9/v1");
        let (info, config) = &models[4];
        assert_eq!(info.api, LlmApi::Anthropic);
        assert_eq!(config.model, "claude-x");
        assert_eq!(config.api_key.expose(), "sk-ant");
        assert!(models_from_lookup(|_| None).is_empty());
    }

    #[test]
    fn nothing_configured_is_none() {
        assert_eq!(resolve_with(&[]), None);
        assert_eq!(resolve_with(&[("LLM_MODEL", "m")]), None);
    }
}
