//! Checks on a `CreateSandboxRequest` before anything is created.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nightshift_protocol::ErrorCode;
use nightshift_protocol::sandbox::{
    CreateSandboxRequest, GatewayLaunch, NetworkMode, RunnerLaunch,
};

use crate::error::ApiError;
use crate::exec::{MAX_TIMEOUT, validate_env};
use crate::providers::{Provider, Registry};

/// The provider a create request asks for (the default when it names none).
pub fn pick_provider(
    request: &CreateSandboxRequest,
    providers: &Registry,
) -> Result<Arc<dyn Provider>, ApiError> {
    let wanted = request
        .provider
        .as_deref()
        .unwrap_or(providers.default_name());
    providers.get(wanted).cloned().ok_or_else(|| {
        ApiError::invalid_request(format!(
            "unknown provider {wanted:?}; configured providers: {}",
            providers.names().join(", ")
        ))
    })
}

/// Checks `request` against `provider` and returns the network mode to use.
pub fn check_create(
    request: &CreateSandboxRequest,
    provider: &dyn Provider,
    runner_bin: &Path,
) -> Result<NetworkMode, ApiError> {
    let wanted = provider.name();
    validate_env(&request.env)?;
    // Unset: the default mode, or the provider's first one when it cannot enforce the
    // default (Modal and Railway sandboxes cannot reach the host's private services).
    let network = request.network.unwrap_or_else(|| {
        let modes = provider.capabilities().network_modes;
        let default = NetworkMode::default();
        if modes.contains(&default) {
            default
        } else {
            modes.first().copied().unwrap_or(default)
        }
    });
    if !provider.capabilities().network_modes.contains(&network) {
        return Err(ApiError::invalid_request(format!(
            "the {wanted} provider cannot enforce network mode {network:?}; supported: {:?}",
            provider.capabilities().network_modes
        )));
    }
    if let Some(ms) = request.default_timeout_ms
        && (ms == 0 || Duration::from_millis(ms) > MAX_TIMEOUT)
    {
        return Err(ApiError::invalid_request(format!(
            "`default_timeout_ms` must be between 1 and {}",
            MAX_TIMEOUT.as_millis()
        )));
    }
    if let Some(launch) = &request.runner {
        // A runner runs on this host and works on the workspace through the
        // provider's placement, which only the local provider can give (a remote
        // sandbox's workspace is not on this host), or inside the sandbox when the
        // provider starts it there (docker).
        let inside = provider.runs_runner_inside();
        if wanted != "local" && !inside {
            return Err(ApiError::invalid_request(format!(
                "the {wanted} provider cannot host a session's runner; use the local or the docker provider for sandboxes linked to a session"
            )));
        }
        if inside && network == NetworkMode::None {
            // The runner inside dials the Worker from there.
            return Err(ApiError::invalid_request(format!(
                "a session's runner in a {wanted} sandbox needs a way out to the Worker: network mode `isolated` or `private`, not `none`"
            )));
        }
        validate_launch(launch)?;
        if !inside && !runner_bin.is_file() {
            return Err(ApiError::new(
                ErrorCode::SandboxUnavailable,
                format!(
                    "the runner executable {} does not exist (set RUNNER_BIN)",
                    runner_bin.display()
                ),
            ));
        }
    }
    if let Some(gateway) = &request.gateway {
        validate_gateway(gateway)?;
        if !provider.capabilities().gateway {
            return Err(ApiError::invalid_request(format!(
                "the {wanted} provider cannot start a gateway in its sandboxes"
            )));
        }
        if network == NetworkMode::Private {
            // Its loopback would be the host's, shared with every other such sandbox.
            return Err(ApiError::invalid_request(
                "a gateway needs a sandbox with a network of its own: use network mode `isolated` or `none`, not `private`",
            ));
        }
        if let Some(launch) = &request.runner
            && launch.session_id != gateway.session
        {
            return Err(ApiError::invalid_request(
                "`gateway.session` must name the same session as `runner.session_id`",
            ));
        }
    }

    Ok(network)
}

/// A gateway's session id is a path segment and a token field; its key is the
/// 32-byte HMAC key in hex.
fn validate_gateway(gateway: &GatewayLaunch) -> Result<(), ApiError> {
    if !session_id_ok(&gateway.session) {
        return Err(ApiError::invalid_request(
            "`gateway.session` must be 1-128 letters, digits, `-` or `_`",
        ));
    }
    let key = gateway.key.expose();
    if key.len() != 64 || !key.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(ApiError::invalid_request(
            "`gateway.key` must be 64 hexadecimal digits",
        ));
    }
    Ok(())
}

/// Whether `id` has the form this backend gives sandboxes (`sbx_` and 32 lowercase
/// hex digits): an id from elsewhere (a provider's tag) becomes a directory name.
pub fn is_sandbox_id(id: &str) -> bool {
    id.strip_prefix("sbx_").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn session_id_ok(session: &str) -> bool {
    !session.is_empty()
        && session.len() <= 128
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The runner link's fields must be usable as a URL, a path segment and a header.
fn validate_launch(launch: &RunnerLaunch) -> Result<(), ApiError> {
    let url = &launch.worker_url;
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.chars().any(char::is_whitespace)
    {
        return Err(ApiError::invalid_request(
            "`runner.worker_url` must be an http(s) URL",
        ));
    }
    if !session_id_ok(&launch.session_id) {
        return Err(ApiError::invalid_request(
            "`runner.session_id` must be 1-128 letters, digits, `-` or `_`",
        ));
    }
    if launch.token.expose().is_empty()
        || launch
            .token
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid_request(
            "`runner.token` must be non-empty, without whitespace",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(url: &str, session: &str, token: &str) -> RunnerLaunch {
        RunnerLaunch {
            worker_url: url.into(),
            session_id: session.into(),
            token: token.into(),
        }
    }

    #[test]
    fn sandbox_ids_have_one_form() {
        assert!(is_sandbox_id("sbx_0123456789abcdef0123456789abcdef"));
        assert!(!is_sandbox_id("sbx_0123456789ABCDEF0123456789abcdef"));
        assert!(!is_sandbox_id("sbx_../../../../etc/passwd/0123456"));
        assert!(!is_sandbox_id("sbx_1"));
        assert!(!is_sandbox_id("0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn runner_links_are_checked() {
        assert!(validate_launch(&launch("http://127.0.0.1:8787", "s-1", "abc.def")).is_ok());
        assert!(validate_launch(&launch("ftp://x", "s", "t")).is_err());
        assert!(validate_launch(&launch("http://x", "a/b", "t")).is_err());
        assert!(validate_launch(&launch("http://x", "s", "t\r\nX: y")).is_err());
        assert!(validate_launch(&launch("http://x", "s", "")).is_err());
    }

    #[test]
    fn gateways_are_checked_and_their_key_never_printed() {
        let gateway = |session: &str, key: &str| GatewayLaunch {
            session: session.into(),
            key: key.into(),
        };
        let key = "0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789";
        assert!(validate_gateway(&gateway("sess_1-a", key)).is_ok());
        assert!(validate_gateway(&gateway("", key)).is_err());
        assert!(validate_gateway(&gateway("a/b", key)).is_err());
        assert!(validate_gateway(&gateway(&"s".repeat(129), key)).is_err());
        assert!(validate_gateway(&gateway("s", &key[1..])).is_err());
        assert!(validate_gateway(&gateway("s", &format!("{key}0"))).is_err());
        assert!(validate_gateway(&gateway("s", &key.replace('a', "g"))).is_err());
        let error = validate_gateway(&gateway("s", "zz")).unwrap_err();
        assert!(!error.message.contains("zz"));
        assert!(!format!("{:?}", gateway("s", key)).contains(key));
    }
}
