//! OpenCode's sandbox: a second bubblewrap instance beside a session's sandbox, on
//! the same workspace, where the runner starts `opencode serve`.
//!
//! OpenCode keeps secrets in its process (its server password, the token of the
//! runner's LLM key proxy), and the commands it runs are the agent's, that is, an
//! attacker's. In one sandbox those commands could read OpenCode's environment and
//! memory (same user, same PID namespace), reach its server and the key proxy, and
//! drop plugins or configuration into its home. So OpenCode gets a sandbox of its own:
//!
//! - its own PID, mount and network namespaces (network `none`: it needs nothing but
//!   the key proxy, which it reaches through the runner's unix socket in its sockets
//!   directory, bound read-only at `/run/nightshift`; the session's sandbox does not
//!   see that directory);
//! - its own home (`<sandbox dir>/opencode/home`), so nothing the commands write lands
//!   in OpenCode's configuration or plugin directories; the workspace is shared, but
//!   its `.opencode/` (plugins and agents OpenCode would load from the project,
//!   whatever its settings say) is an empty read-only mount there, which the runner
//!   checks is still in place (`OpencodePlacement::masked_dir`);
//! - `$SHELL` is the tool shell ([`super::sandbox_agent::tool_shell`]): every
//!   command OpenCode runs goes through the tool relay
//!   ([`super::sandbox_agent::tool_relay`], served by the backend on
//!   `/run/nightshift/tools.sock` there) into the session's sandbox, with
//!   the session's environment and network, where OpenCode's processes do not exist.
//!
//! It joins its session's resource-control groups, so the budget covers both.

use std::path::PathBuf;

use nightshift_protocol::sandbox::{NetworkMode, OpencodePlacement};

use super::LocalProvider;
use super::bubblewrap::{OPENCODE_PROJECT_MASK, SANDBOX_AGENT};
use super::environment::user_env;
use super::handle::{LocalHandle, end_sandbox, kill_sandbox, parse_handle};
use super::launcher::{LaunchDirs, SOCKETS_DIR_NAME, cgroup_name};
use super::sandbox_agent::client as agent;
use super::sandbox_agent::tool_relay;
use super::sandbox_agent::tool_shell::{TOOL_SHELL, TOOL_SOCKET_NAME};
use super::sandbox_agent::wire::Request;
use super::sandbox_dir;
use crate::providers::{ProviderError, SandboxSpec};

/// The directory of OpenCode's sandbox inside its session sandbox's directory.
const DIR_NAME: &str = "opencode";
/// Where its bubblewrap's pid is kept (to end it after a backend restart).
const HANDLE_FILE: &str = "handle.json";

fn dir(sandbox: &SandboxSpec) -> PathBuf {
    sandbox.dir.join(DIR_NAME)
}

fn socket(sandbox: &SandboxSpec) -> PathBuf {
    dir(sandbox).join("agent.sock")
}

fn sockets(sandbox: &SandboxSpec) -> PathBuf {
    dir(sandbox).join(SOCKETS_DIR_NAME)
}

/// The key under which its hold and relay are kept.
fn key(sandbox: &SandboxSpec) -> String {
    format!("{}/{DIR_NAME}", sandbox.id)
}

/// What the runner needs to start and reach OpenCode there.
pub(super) fn placement(provider: &LocalProvider, sandbox: &SandboxSpec) -> OpencodePlacement {
    let command_wrapper = provider.enter_prefix(&socket(sandbox));
    let mut bridge = command_wrapper.clone();
    bridge.push(SANDBOX_AGENT.into());
    OpencodePlacement {
        command_wrapper,
        bridge,
        sockets_dir: sockets(sandbox).display().to_string(),
        masked_dir: Some(OPENCODE_PROJECT_MASK.to_string()),
    }
}

/// The environment of everything started in OpenCode's sandbox: the sandbox user's,
/// with the tool shell as `$SHELL` (no egress proxy: it has no network).
fn environment() -> std::collections::BTreeMap<String, String> {
    let mut env = user_env();
    env.insert("SHELL".to_string(), TOOL_SHELL.to_string());
    env
}

/// Starts OpenCode's sandbox beside `sandbox` unless it runs (a restarted backend
/// finds it through its socket), holds it and serves its tool relay.
pub(super) async fn ensure(
    provider: &LocalProvider,
    sandbox: &SandboxSpec,
) -> Result<(), ProviderError> {
    let launcher = &provider.launcher;
    let dir = dir(sandbox);
    let socket = socket(sandbox);
    if agent::simple(&socket, &Request::Ping).await.is_err() {
        let home = dir.join("home");
        let sockets = sockets(sandbox);
        let workspace = sandbox_dir::workspace(sandbox);
        // Its session's groups, so one budget covers both.
        let cgroup = parse_handle(&sandbox.handle)
            .and_then(|handle| handle.cgroup)
            .unwrap_or_else(|| cgroup_name(&sandbox.id));
        let dirs = LaunchDirs {
            dir: &dir,
            workspace: &workspace,
            home: &home,
            sockets: &sockets,
            tool_shell: true,
        };
        let handle = launcher
            .launch_in(&dirs, &cgroup, NetworkMode::None)
            .await?;
        let json = serde_json::to_vec(&handle).unwrap_or_default();
        if let Err(error) = std::fs::write(dir.join(HANDLE_FILE), json) {
            kill_sandbox(&handle).await;
            return Err(ProviderError::io("cannot record OpenCode's sandbox", error));
        }
    }
    let configure = Request::Configure {
        env: environment(),
        proxy_port: None,
    };
    agent::simple(&socket, &configure)
        .await
        .map_err(|error| ProviderError::Unavailable(format!("OpenCode's sandbox: {error}")))?;
    match agent::hold(&socket).await {
        Ok(stream) => {
            provider.lock_holds().insert(key(sandbox), stream);
        }
        Err(error) => {
            tracing::warn!(sandbox = %sandbox.id, %error, "cannot hold OpenCode's sandbox")
        }
    }
    let relay_socket = sockets(sandbox).join(TOOL_SOCKET_NAME);
    let listener = tool_relay::bind(&relay_socket)
        .map_err(|error| ProviderError::io("cannot serve the tool relay", error))?;
    // The relay's socket must be the sandbox user's, who connects to it.
    if let Some(user) = provider.host_user {
        user.give(&relay_socket)
            .map_err(|error| ProviderError::io("cannot give the tool relay away", error))?;
    }
    let task = tokio::spawn(tool_relay::serve(listener, sandbox_dir::socket(sandbox)));
    provider.relays.insert(key(sandbox), task);
    Ok(())
}

/// Ends OpenCode's sandbox, if one runs beside `sandbox`.
pub(super) async fn halt(provider: &LocalProvider, sandbox: &SandboxSpec) {
    provider.lock_holds().remove(&key(sandbox));
    provider.relays.abort(&key(sandbox));
    let dir = dir(sandbox);
    if !dir.is_dir() {
        return;
    }
    let socket = socket(sandbox);
    let handle: Option<LocalHandle> = std::fs::read(dir.join(HANDLE_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    end_sandbox(&socket, handle.as_ref()).await;
    let _ = std::fs::remove_file(dir.join(HANDLE_FILE));
    let _ = std::fs::remove_file(&socket);
}

/// Removes what OpenCode's sandbox kept (its home and sockets), once it is halted.
pub(super) fn remove(sandbox: &SandboxSpec) {
    let _ = crate::files::remove_tree(&dir(sandbox));
}
