//! What every command of a local sandbox starts with: the sandbox user's login
//! environment, the egress proxy of an `isolated` sandbox, the sandbox's own
//! variables, and the working directory (the workspace or the template's `workdir`).

use std::collections::BTreeMap;

use nightshift_protocol::sandbox::{NetworkMode, SANDBOX_SOCKETS_DIR};

use super::bubblewrap::{SANDBOX_HOME, SANDBOX_PATH, SANDBOX_WORKSPACE, sandbox_cwd};
use super::sandbox_agent::wire::Request;
use crate::git_egress::CA_BUNDLE_FILE;
use crate::providers::SandboxSpec;

/// The loopback port of an `isolated` sandbox's egress proxy.
pub const PROXY_PORT: u16 = 3128;

/// The sandbox user's login environment, before anything the sandbox adds.
pub(super) fn user_env() -> BTreeMap<String, String> {
    [
        ("PATH", format!("{SANDBOX_HOME}/.local/bin:{SANDBOX_PATH}")),
        ("HOME", SANDBOX_HOME.to_string()),
        ("USER", "sandbox".to_string()),
        ("LOGNAME", "sandbox".to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("TMPDIR", "/tmp".to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// The environment every command of the sandbox starts with; `git_ca` says the
/// egress adds git's credential, so git trusts the egress CA's bundle.
fn base_env(sandbox: &SandboxSpec, git_ca: bool) -> BTreeMap<String, String> {
    let mut env = user_env();
    if sandbox.network == NetworkMode::Isolated {
        let proxy = format!("http://127.0.0.1:{PROXY_PORT}");
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            env.insert(name.to_string(), proxy.clone());
        }
        for name in ["NO_PROXY", "no_proxy"] {
            env.insert(name.to_string(), "localhost,127.0.0.1,::1".to_string());
        }
        if git_ca {
            // git alone: other programs keep the system's roots, so only git can be
            // shown the egress's certificate for the repository's host.
            env.insert(
                "GIT_SSL_CAINFO".to_string(),
                format!("{SANDBOX_SOCKETS_DIR}/{CA_BUNDLE_FILE}"),
            );
        }
    }
    env.extend(sandbox.env.clone());
    env
}

/// What the sandbox's agent is told when the sandbox boots or is found again.
pub(super) fn configure_request(sandbox: &SandboxSpec, git_ca: bool) -> Request {
    Request::Configure {
        env: base_env(sandbox, git_ca),
        proxy_port: (sandbox.network == NetworkMode::Isolated).then_some(PROXY_PORT),
    }
}

/// The default working directory: the workspace, or the template's `workdir`.
fn default_cwd(sandbox: &SandboxSpec) -> String {
    match sandbox
        .template
        .as_ref()
        .and_then(|template| template.spec.workdir.as_deref())
    {
        Some(workdir) => sandbox_cwd(Some(workdir)),
        None => SANDBOX_WORKSPACE.into(),
    }
}

/// A command's working directory inside the sandbox.
pub(super) fn cwd(sandbox: &SandboxSpec, cwd: Option<&str>) -> String {
    match cwd {
        None => default_cwd(sandbox),
        Some(cwd) => sandbox_cwd(Some(cwd)),
    }
}
