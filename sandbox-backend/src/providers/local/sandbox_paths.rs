//! Where things are inside a local sandbox, as its processes see them: shared by the
//! launcher ([`super::bubblewrap`]) and the helper that runs inside
//! ([`super::sandbox_agent`]).

/// Where the workspace appears inside the sandbox.
pub const SANDBOX_WORKSPACE: &str = "/workspace";
/// The sandbox user's home (backed by `<sandbox dir>/home`).
pub const SANDBOX_HOME: &str = "/home/sandbox";
/// Where the agent binary appears inside the sandbox.
pub const SANDBOX_AGENT: &str = "/.nightshift/agent";
/// Where the gateway binary appears inside the sandbox (bound read-only when the
/// backend has one).
pub const SANDBOX_GATEWAY: &str = "/.nightshift/bin/nightshift-gateway";
/// The file the backend writes the session's gateway key into for the gateway,
/// which deletes it once read: in the sandbox's home, which only the sandbox user
/// can read.
pub const SANDBOX_GATEWAY_KEY: &str = "/home/sandbox/.nightshift-gateway.key";
/// The project configuration directory OpenCode's sandbox masks with an empty
/// read-only mount (see `RunnerBootConfig::opencode`).
pub const OPENCODE_PROJECT_MASK: &str = "/workspace/.opencode";
/// The uid and gid commands run as inside the sandbox.
pub const SANDBOX_UID: u32 = 1000;
