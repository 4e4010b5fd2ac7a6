//! The shell OpenCode's tools use, inside OpenCode's own sandbox: the agent binary,
//! bound at [`TOOL_SHELL`] and named `bash` so OpenCode accepts it as `$SHELL`. It
//! runs nothing itself. `bash -c <script>` (and any other invocation) becomes the same
//! `bash` command run in the session's sandbox through the tool relay socket
//! ([`super::tool_relay`]), with this process's working directory, standard streams,
//! signals and exit code passed through, as `sandbox-backend enter` does.
//!
//! Why: OpenCode holds secrets (its server password, its key-proxy token) in its
//! environment, and a process can read the environment and memory of processes it
//! can see under the same user. The commands OpenCode runs are the agent's, so they
//! run in another sandbox (another PID namespace, a clean environment, the session's
//! network), where OpenCode's processes do not exist.

use std::process::ExitCode;

use nightshift_protocol::sandbox::SANDBOX_SOCKETS_DIR;

use crate::providers::local::sandbox_paths::SANDBOX_WORKSPACE;

/// Where OpenCode's sandbox sees this shell (its `$SHELL`).
pub const TOOL_SHELL: &str = "/.nightshift/shell/bash";
/// The relay socket's name in OpenCode's sockets directory.
pub const TOOL_SOCKET_NAME: &str = "tools.sock";

/// Whether this process was started as the tool shell (by its `argv[0]`).
pub fn invoked_as_tool_shell(argv0: &str) -> bool {
    argv0 == TOOL_SHELL
}

/// Runs `bash <args>` in the session's sandbox.
pub fn main(args: &[String]) -> ExitCode {
    // The working directory is the same path in both sandboxes for anything under
    // the workspace (both bind it at the same place); anything else starts there.
    let cwd = std::env::current_dir()
        .ok()
        .map(|dir| dir.display().to_string())
        .filter(|dir| dir == SANDBOX_WORKSPACE || dir.starts_with(&format!("{SANDBOX_WORKSPACE}/")))
        .unwrap_or_else(|| SANDBOX_WORKSPACE.to_string());
    let socket = format!("{SANDBOX_SOCKETS_DIR}/{TOOL_SOCKET_NAME}");
    let mut enter_args = vec![
        "--socket".to_string(),
        socket,
        "--cwd".to_string(),
        cwd,
        "--".to_string(),
        "bash".to_string(),
    ];
    enter_args.extend(args.iter().cloned());
    super::enter::main(&enter_args)
}
