//! The OpenCode configuration the runner writes for a session: one custom provider
//! (`nightshift`) pointing at the runner's loopback LLM proxy, the session's model,
//! permission rules from the session's permission mode, and everything that would
//! reach the internet or write outside OpenCode's own state switched off.
//!
//! The LLM key is not in it: OpenCode gets the proxy's URL and a per-start proxy
//! token instead (see [`super::proxy`]).

use nightshift_protocol::api::PermissionMode;
use nightshift_protocol::runner_link::LlmApi;
use serde_json::{Value, json};

/// OpenCode's id for the provider the runner configures.
pub const PROVIDER_ID: &str = "nightshift";

/// What a configuration is built from; two starts with equal inputs get equal
/// configurations, so the runner restarts OpenCode only when one of them changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigInputs {
    pub api: LlmApi,
    pub model: String,
    pub permission_mode: PermissionMode,
    /// The proxy's base URL as OpenCode should call it.
    pub proxy_url: String,
    pub proxy_token: String,
    /// The runner's MCP server (the browser tools) as OpenCode should call it.
    pub mcp_url: String,
    pub mcp_token: String,
}

/// The `opencode.json` content.
pub fn opencode_config(inputs: &ConfigInputs) -> Value {
    let (npm, base_url) = match inputs.api {
        // `@ai-sdk/openai-compatible` posts to `{baseURL}/chat/completions`; the
        // proxy maps that onto the endpoint's base URL (which holds its version path).
        LlmApi::OpenAiCompatible => ("@ai-sdk/openai-compatible", inputs.proxy_url.clone()),
        // `@ai-sdk/anthropic` posts to `{baseURL}/messages`, the runner's Anthropic
        // base URL has no version path: `/v1` is part of what is proxied.
        LlmApi::Anthropic => ("@ai-sdk/anthropic", format!("{}/v1", inputs.proxy_url)),
    };
    json!({
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": false,
        "share": "disabled",
        "snapshot": false,
        "lsp": false,
        "formatter": false,
        "enabled_providers": [PROVIDER_ID],
        "model": format!("{PROVIDER_ID}/{}", inputs.model),
        "small_model": format!("{PROVIDER_ID}/{}", inputs.model),
        "provider": {
            PROVIDER_ID: {
                "npm": npm,
                "name": "Nightshift",
                "options": {
                    "baseURL": base_url,
                    "apiKey": inputs.proxy_token,
                },
                "models": {
                    inputs.model.as_str(): {
                        "name": inputs.model,
                        "tool_call": true,
                    }
                }
            }
        },
        "permission": permission_rules(inputs.permission_mode),
        // OpenCode's own schema (1.18: `McpRemoteConfig`): the browser tools, with
        // the per-start token; no OAuth discovery against it.
        "mcp": {
            super::mcp::SERVER_NAME: {
                "type": "remote",
                "url": inputs.mcp_url,
                "enabled": true,
                "headers": {"Authorization": format!("Bearer {}", inputs.mcp_token)},
                "oauth": false,
                "timeout": 90_000,
            }
        },
    })
}

/// `ask`: everything that changes the workspace, runs commands or reaches out asks
/// first; reading and searching do not. `allow`: nothing asks.
fn permission_rules(mode: PermissionMode) -> Value {
    match mode {
        PermissionMode::Allow => json!("allow"),
        PermissionMode::Ask => json!({
            "read": "allow",
            "glob": "allow",
            "grep": "allow",
            "list": "allow",
            "todowrite": "allow",
            "question": "allow",
            "skill": "allow",
            "edit": "ask",
            "bash": "ask",
            "task": "ask",
            "webfetch": "ask",
            "websearch": "ask",
            "external_directory": "ask",
            "doom_loop": "ask",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(api: LlmApi, mode: PermissionMode) -> ConfigInputs {
        ConfigInputs {
            api,
            model: "gpt-x".into(),
            permission_mode: mode,
            proxy_url: "http://127.0.0.1:9".into(),
            proxy_token: "proxy-token".into(),
            mcp_url: "http://127.0.0.1:8/mcp".into(),
            mcp_token: "mcp-token".into(),
        }
    }

    #[test]
    fn an_openai_compatible_session_gets_one_custom_provider_behind_the_proxy() {
        let config = opencode_config(&inputs(LlmApi::OpenAiCompatible, PermissionMode::Ask));
        let provider = &config["provider"]["nightshift"];
        assert_eq!(provider["npm"], "@ai-sdk/openai-compatible");
        assert_eq!(provider["options"]["baseURL"], "http://127.0.0.1:9");
        assert_eq!(provider["options"]["apiKey"], "proxy-token");
        assert_eq!(provider["models"]["gpt-x"]["tool_call"], true);
        assert_eq!(config["model"], "nightshift/gpt-x");
        assert_eq!(config["enabled_providers"], json!(["nightshift"]));
        assert_eq!(config["permission"]["bash"], "ask");
        assert_eq!(config["permission"]["read"], "allow");
        assert_eq!(config["autoupdate"], false);
        let mcp = &config["mcp"]["nightshift"];
        assert_eq!(mcp["type"], "remote");
        assert_eq!(mcp["url"], "http://127.0.0.1:8/mcp");
        assert_eq!(mcp["headers"]["Authorization"], "Bearer mcp-token");
        assert_eq!(mcp["oauth"], false);
    }

    #[test]
    fn anthropic_goes_through_v1_and_allow_mode_allows_everything() {
        let config = opencode_config(&inputs(LlmApi::Anthropic, PermissionMode::Allow));
        let provider = &config["provider"]["nightshift"];
        assert_eq!(provider["npm"], "@ai-sdk/anthropic");
        assert_eq!(provider["options"]["baseURL"], "http://127.0.0.1:9/v1");
        assert_eq!(config["permission"], "allow");
    }
}
