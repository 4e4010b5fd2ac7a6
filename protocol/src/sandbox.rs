//! Bodies of the sandbox backend's HTTP API (`/v1/...`, bearer-token authenticated).
//! The Worker's `SessionAgent` is one client; the API is usable on its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a sandbox may reach on the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// Outbound internet only (through the backend's egress proxy): no host, loopback,
    /// private-network, link-local or other sandboxes' services. The default.
    #[default]
    Isolated,
    /// Shares the host's network: reaches the host's loopback services and the
    /// deployment's private network. Only for trusted templates, and only where the
    /// operator allowed it (`SANDBOX_ALLOW_PRIVATE_NETWORK`).
    Private,
    /// No network at all.
    None,
}

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxStatus {
    Pending,
    Initializing,
    Ready,
    Stopping,
    Stopped,
    Destroying,
    Destroyed,
    Error,
}

/// The runner a sandbox should start: it dials `worker_url` +
/// `/api/sessions/{session_id}/runner` with `token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerLaunch {
    pub worker_url: String,
    pub session_id: String,
    pub token: crate::redacted::Redacted<String>,
}

/// What a backend kept of a sandbox it put to sleep (`POST /v1/sandboxes/{id}/sleep`):
/// the sandbox is stopped, and this says how its files are kept and with which
/// runner and image they were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSnapshot {
    pub sandbox_id: String,
    /// How the files are kept: `directory` (local: the stopped sandbox's own
    /// directory), `stopped_container` (docker), `filesystem_image` (Modal: a
    /// filesystem snapshot image), `checkpoint` (Railway: a named checkpoint).
    pub kind: String,
    /// The version of the runner that ran in the sandbox when it slept. Waking
    /// always starts the backend's current runner, whatever this says.
    pub runner_version: String,
    /// The image the sandbox ran (or the snapshot's image), when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// When the snapshot was made (ms).
    pub made_at: i64,
    /// Its size, when the provider can tell cheaply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// `POST /v1/sandboxes/{id}/wake`: starts a sandbox put to sleep again, its runner
/// with `runner`'s token when given (the token it slept with has been retired).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WakeSandboxRequest {
    #[serde(default)]
    pub runner: Option<RunnerLaunch>,
}

/// `POST /v1/sandboxes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSandboxRequest {
    /// Defaults to the backend's configured default provider (`local`).
    #[serde(default)]
    pub provider: Option<String>,
    /// Environment baked into every command run in the sandbox.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub network: Option<NetworkMode>,
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    #[serde(default)]
    pub default_timeout_ms: Option<u64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Start a Nightshift runner in the sandbox, linked to a session.
    #[serde(default)]
    pub runner: Option<RunnerLaunch>,
    /// Start from a template: the id of one built with `POST /v1/templates`, or an
    /// inline spec (built first, or taken from the cache when the same spec was built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,
    /// Start the sandbox's gateway (`nightshift-gateway serve`) for this session,
    /// the one way into the services inside the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayLaunch>,
    /// Start with the files of another sandbox's checkpoint (a fork from an earlier
    /// point): its workspace is restored before the runner starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_checkpoint: Option<crate::checkpoints::CheckpointSource>,
}

/// The gateway a sandbox should start: it serves `session` on
/// [`GATEWAY_PORT`] of the sandbox's loopback and accepts only tokens signed with
/// `key`, the session's derived gateway key (64 hex digits). The key reaches the
/// gateway through a file only the sandbox can read, which the gateway deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayLaunch {
    pub session: String,
    pub key: crate::redacted::Redacted<String>,
}

/// The port the gateway listens on, on the sandbox's own loopback. The backend's
/// relay connects to this port only, whatever the caller asks for.
pub const GATEWAY_PORT: u16 = 9000;

/// `GET /v1/sandboxes/{id}/tunnels`: where the sandbox's services can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxTunnels {
    pub gateway: GatewayTunnel,
}

/// Where the sandbox's gateway answers: `url` is the base its routes go under
/// (`<url>/terminal/1`, ...), and every request to it carries `headers`. For the
/// local provider `url` is the backend's own relay, which wants the backend's bearer
/// token like every `/v1` route, so `headers` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayTunnel {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether the gateway process runs, as far as the provider knows.
    pub status: GatewayStatus,
    /// Why it is not running, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a provider knows of a sandbox's gateway process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayStatus {
    /// Started (or being started); whether it answers yet is the gateway's
    /// `/healthz` to tell.
    Running,
    /// It exited and is started again after a back-off.
    Restarting,
    /// It cannot run (for example its binary is not installed); `reason` says why.
    Unavailable,
    /// The sandbox was created without a gateway.
    None,
    /// The provider starts it itself (a container image's entrypoint) and cannot tell.
    Unknown,
}

/// A template named by id or given inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TemplateRef {
    Id(String),
    Spec(TemplateSpec),
}

/// `POST /v1/templates`: what a template's filesystem holds. Built once per provider
/// and cached by the content of this spec (its id is a hash of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// The base image. Remote providers take an image reference (e.g. `python:3.12`);
    /// the local provider only has `"host"` (the host's read-only system directories),
    /// which is also the default.
    #[serde(default)]
    pub base: Option<String>,
    /// Packages to install, each `manager:name` (e.g. `pip:requests`, `npm:left-pad`,
    /// `apt:jq`). Which managers a provider accepts is in its capabilities.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Shell commands run in order (`sh -c`) in the working directory.
    #[serde(default)]
    pub commands: Vec<String>,
    /// The working directory commands start in, relative to the workspace (default:
    /// the workspace itself).
    #[serde(default)]
    pub workdir: Option<String>,
    /// Environment for the build commands (not baked into sandboxes).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A built template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// `tpl_<sha256 of the provider and spec>`.
    pub id: String,
    pub provider: String,
    pub spec: TemplateSpec,
    pub created_at: i64,
    /// Output of the build (capped).
    #[serde(default)]
    pub build_log: String,
}

/// `POST /v1/sandboxes/{id}/fork`: overrides for the new sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    #[serde(default)]
    pub network: Option<NetworkMode>,
    /// Replaces the source's environment when given.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// What a provider can do (`GET /v1/providers`), so callers can tell up front.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCapabilities {
    /// Network modes the provider can enforce.
    pub network_modes: Vec<NetworkMode>,
    /// Commands run isolated from the host (false only for the local provider's
    /// explicitly allowed unisolated mode).
    pub isolated: bool,
    /// `POST /v1/sandboxes/{id}/fork`.
    pub fork: bool,
    /// `POST /v1/templates` and `template` on create.
    pub templates: bool,
    /// Exec `stdin` and writing to a background process's stdin.
    pub stdin: bool,
    /// Background processes (`/processes`).
    pub processes: bool,
    /// Filesystem snapshots of a running sandbox.
    pub snapshots: bool,
    /// Sandboxes survive a restart of the backend and are reattached.
    pub reattach: bool,
    /// A stopped sandbox can be started again (`POST /v1/sandboxes/{id}/start`).
    pub restart: bool,
    /// `POST /v1/sandboxes/{id}/sleep` keeps the sandbox's files and stops its
    /// compute, and `POST /v1/sandboxes/{id}/wake` brings it back with them. A
    /// provider that cannot restart a stopped sandbox may still sleep (Modal, Railway:
    /// the files are kept in a snapshot and a new sandbox is woken from it).
    #[serde(default)]
    pub sleep: bool,
    /// Public URLs for the sandbox's ports.
    pub tunnels: bool,
    /// `gateway` on create, and `GET /v1/sandboxes/{id}/tunnels` answering where it is.
    #[serde(default)]
    pub gateway: bool,
    /// Package managers accepted in a template's `packages`.
    #[serde(default)]
    pub package_managers: Vec<String>,
    /// Per-sandbox limits the provider enforces on this host, among `pids`, `memory`,
    /// `cpu`, `tmp` (size of `/tmp`) and `disk` (workspace and home).
    #[serde(default)]
    pub enforced_limits: Vec<String>,
    /// Per-sandbox limits it cannot enforce here: the operator started it anyway
    /// (`SANDBOX_ALLOW_UNLIMITED=true` for the local provider).
    #[serde(default)]
    pub missing_limits: Vec<String>,
}

/// One entry of `GET /v1/providers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    pub name: String,
    /// Used when a create request names no provider.
    pub default: bool,
    pub capabilities: ProviderCapabilities,
}

/// `GET /v1/providers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderList {
    pub providers: Vec<ProviderInfo>,
}

/// `GET /v1/templates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateList {
    pub templates: Vec<Template>,
}

/// `POST /v1/sandboxes/{id}/processes`: start a background process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartProcessRequest {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
}

/// A background process as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// `proc_<n>`, unique within the sandbox.
    pub id: String,
    pub command: String,
    pub args: Vec<String>,
    pub running: bool,
    /// Set once it ended.
    pub exit: Option<ExecExit>,
    pub started_at: i64,
    pub stdout: OutputBuffer,
    pub stderr: OutputBuffer,
}

/// The retained tail of one output stream of a process. Offsets count every byte the
/// process wrote to the stream; only the last `MAX` bytes are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputBuffer {
    /// Bytes written so far.
    pub total_bytes: u64,
    /// Bytes no longer retained (the oldest ones): `total_bytes - retained`.
    pub dropped_bytes: u64,
    /// The retained tail (lossy UTF-8).
    pub tail: String,
}

/// `GET /v1/sandboxes/{id}/processes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessList {
    pub processes: Vec<ProcessInfo>,
}

/// One NDJSON line of `GET .../processes/{pid}/output?offset=N`: output chunks with
/// the stream offset of their first byte, a note when requested bytes were already
/// dropped, and, once the process ended and all retained output was sent, the exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessOutput {
    Stdout {
        offset: u64,
        data: String,
    },
    Stderr {
        offset: u64,
        data: String,
    },
    /// Output between the requested offset and the oldest retained byte is gone.
    Dropped {
        stream: String,
        bytes: u64,
    },
    Exit(ExecExit),
}

/// `POST .../processes/{pid}/stdin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessStdinRequest {
    #[serde(default)]
    pub data: String,
    /// Close stdin after writing `data`.
    #[serde(default)]
    pub eof: bool,
}

/// A sandbox as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub id: String,
    pub provider: String,
    pub status: SandboxStatus,
    pub error: Option<String>,
    pub network: NetworkMode,
    pub labels: BTreeMap<String, String>,
    pub created_at: i64,
    /// Why the sandbox is in its status when it did not get there by request (e.g.
    /// `idle for 5 minutes`, `its processes were gone when the backend restarted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// The template it was created from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The sandbox it was forked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
    /// `sha256:<hex>` of the runner executable the backend installed in the sandbox
    /// when it last started it, when it installs one itself: a docker sandbox woken
    /// gets the runner a new sandbox would get (the current image's), whatever its
    /// container was made with. `None` when the runner is the one already in place
    /// (a new docker sandbox's image's; the local provider's, always the backend's
    /// `RUNNER_BIN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_digest: Option<String>,
}

/// `GET /v1/sandboxes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxList {
    pub sandboxes: Vec<Sandbox>,
}

/// `GET /v1/health` (no token needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendHealth {
    pub ok: bool,
    pub version: String,
    pub providers: Vec<String>,
}

/// What a sandbox provider hands the runner it starts, as a JSON file passed with
/// `runner --config <path>`. The file lives outside the sandbox's workspace, where
/// commands the agent runs cannot read it; the runner rewrites `token` in it when the
/// `SessionAgent` renews the token, so a restarted runner can still connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerBootConfig {
    /// Base URL of the Worker, e.g. `http://127.0.0.1:8787`.
    pub worker_url: String,
    pub session_id: String,
    pub token: crate::redacted::Redacted<String>,
    /// The workspace as the runner sees it (file tools work here).
    pub workspace_dir: String,
    /// Argv prefix that runs a command inside the sandbox, with the workspace as its
    /// working directory: the runner appends `["bash", "-lc", <command>]`. Empty when
    /// the runner itself runs inside the sandbox (container providers).
    #[serde(default)]
    pub command_wrapper: Vec<String>,
    /// The workspace path as commands inside the sandbox see it (e.g. `/workspace`).
    pub sandbox_workspace_dir: String,
    /// Argv prefix that runs a byte bridge inside the session's sandbox: the runner
    /// appends `__connect <port>` for a pipe to a port on that sandbox's loopback
    /// (the browser tools reach Chromium's DevTools at 127.0.0.1:9222 this way).
    /// Empty when the runner shares the sandbox's loopback (container providers).
    #[serde(default)]
    pub bridge: Vec<String>,
    /// Where OpenCode runs, when the provider keeps it apart from the commands it
    /// runs (the local provider: a sandbox of its own on the same workspace, whose
    /// shell runs each command in the session's sandbox). `None`: OpenCode runs
    /// through `command_wrapper` and shares the sandbox's loopback with the runner.
    #[serde(default)]
    pub opencode: Option<OpencodePlacement>,
    /// The host directory the session's sandbox sees, read-only, at
    /// [`SANDBOX_SOCKETS_DIR`]: the runner serves git's credential helper there as a
    /// unix socket. `None` when the provider gives the sandbox no such directory (the
    /// session's git then gets no credential from the runner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets_dir: Option<String>,
    /// Where `sockets_dir` appears to the sandbox's commands when it is not
    /// [`SANDBOX_SOCKETS_DIR`] (a runner inside the sandbox sees what its commands
    /// see, so it names the same path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_sockets_dir: Option<String>,
    /// An HTTP proxy (`http://127.0.0.1:3128`) through which the runner reaches the
    /// Worker and the LLM, when the sandbox's one way out is a proxy on its loopback
    /// (a runner inside an `isolated` docker sandbox). `None`: it connects directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// A host path, in no sandbox, where the runner serves the session repository's
    /// credential to the backend's egress instead of to git in the sandbox: set when
    /// the provider's egress adds git's credential itself (the local provider's
    /// `isolated` sandboxes). For an `https` repository the runner then configures
    /// no credential helper in the sandbox and serves nothing in `sockets_dir` for
    /// git; for any other repository it keeps the helper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_credential_socket: Option<String>,
}

/// How the runner starts and reaches OpenCode in a sandbox of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpencodePlacement {
    /// Argv prefix that runs a command in OpenCode's sandbox (its working directory
    /// the workspace, at `sandbox_workspace_dir`).
    pub command_wrapper: Vec<String>,
    /// Argv prefix that runs a byte bridge there: the runner appends `__connect
    /// <port>` (a pipe to a port on that sandbox's loopback) or `__listen <unix
    /// socket>` (a port on that loopback forwarded to a socket the runner serves).
    pub bridge: Vec<String>,
    /// The host directory OpenCode's sandbox sees, read-only, at
    /// [`SANDBOX_SOCKETS_DIR`]: the runner serves the LLM key proxy there as a unix
    /// socket. The session's sandbox, where the commands run, does not see it.
    pub sockets_dir: String,
    /// A directory of the workspace that OpenCode's sandbox hides behind an empty
    /// read-only mount (the project's `.opencode/`, whose plugins OpenCode would load
    /// whatever its settings say). The session's sandbox can detach that mount by
    /// removing the directory underneath it, and a detached mount never comes back,
    /// so the runner checks that it is still there after OpenCode loaded the project
    /// and after every turn, and stops using OpenCode when it is not.
    #[serde(default)]
    pub masked_dir: Option<String>,
}

/// Where a sandbox sees the sockets its runner serves for it.
pub const SANDBOX_SOCKETS_DIR: &str = "/run/nightshift";

/// `POST /v1/sandboxes/{id}/exec`: run one command in the sandbox, with the workspace
/// as its working directory unless `cwd` says otherwise.
///
/// The answer is NDJSON by default: [`ExecOutput`] lines in the order the output was
/// read, the last one always `{"exit": ...}`. With `?stream=false` it is one
/// [`ExecResult`] object instead. A command that fails or times out is a result, not
/// an HTTP error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// The program, looked up on the sandbox's `PATH`.
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Added to the sandbox's own environment for this command only.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the sandbox: absolute (as the sandbox sees it) or
    /// relative to the workspace. Defaults to the workspace.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the command (and everything it started) after this long. Defaults to
    /// the sandbox's `default_timeout_ms`, else the backend's default.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Written to the command's standard input, which is then closed. Without it the
    /// command reads end-of-file at once.
    #[serde(default)]
    pub stdin: Option<String>,
}

/// How an exec'd command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecExit {
    /// The exit code; `128 + signal` when a signal ended the command.
    pub code: i32,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
    /// A signal ended the command (a timeout, a stopped sandbox, or anything else).
    pub killed: bool,
    pub duration_ms: u64,
}

/// One NDJSON line of a streamed exec: `{"stdout":"..."}`, `{"stderr":"..."}` or,
/// always last, `{"exit":{...}}`. Output that is not UTF-8 is decoded lossily.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecOutput {
    Stdout(String),
    Stderr(String),
    Exit(ExecExit),
}

/// `POST /v1/sandboxes/{id}/exec?stream=false`: the whole output at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    pub stdout: String,
    pub stderr: String,
    pub exit: ExecExit,
    /// Output past the backend's collection limit was dropped (stream instead to get
    /// all of it).
    #[serde(default)]
    pub truncated: bool,
}

/// The exit code with which a runner says the `SessionAgent` rejected its token (wrong,
/// for another session, or expired). Whoever supervises the runner must not restart
/// it after this code: a restart would present the same token again.
pub const RUNNER_EXIT_TOKEN_REJECTED: i32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_launch_is_sent_whole_and_never_printed() {
        let key = "ab".repeat(32);
        let request: CreateSandboxRequest = serde_json::from_value(serde_json::json!({
            "gateway": {"session": "s1", "key": key}
        }))
        .unwrap();
        let gateway = request.gateway.clone().unwrap();
        assert_eq!(gateway.key.expose(), &key);
        assert!(!format!("{request:?}").contains(&key));
        let sent = serde_json::to_value(&request).unwrap();
        assert_eq!(sent["gateway"]["key"], key);
        // Unknown fields (a port of the caller's choosing) are refused.
        let port = serde_json::json!({"gateway": {"session": "s", "key": key, "port": 22}});
        assert!(serde_json::from_value::<CreateSandboxRequest>(port).is_err());
        let tunnels = SandboxTunnels {
            gateway: GatewayTunnel {
                url: "http://127.0.0.1:8788/v1/sandboxes/sbx_1/gateway".into(),
                headers: BTreeMap::new(),
                status: GatewayStatus::Unavailable,
                reason: Some("not installed".into()),
            },
        };
        assert_eq!(
            serde_json::to_value(&tunnels).unwrap(),
            serde_json::json!({"gateway": {
                "url": "http://127.0.0.1:8788/v1/sandboxes/sbx_1/gateway",
                "headers": {}, "status": "unavailable", "reason": "not installed"
            }})
        );
    }

    #[test]
    fn exec_output_lines_have_the_documented_shape() {
        let stdout = serde_json::to_string(&ExecOutput::Stdout("hi\n".into())).unwrap();
        assert_eq!(stdout, r#"{"stdout":"hi\n"}"#);
        let exit = ExecOutput::Exit(ExecExit {
            code: 137,
            timed_out: true,
            killed: true,
            duration_ms: 5,
        });
        let text = serde_json::to_string(&exit).unwrap();
        assert_eq!(
            text,
            r#"{"exit":{"code":137,"timed_out":true,"killed":true,"duration_ms":5}}"#
        );
        assert_eq!(serde_json::from_str::<ExecOutput>(&text).unwrap(), exit);
    }

    #[test]
    fn process_output_lines_and_template_refs_have_the_documented_shape() {
        let line = ProcessOutput::Stdout {
            offset: 4,
            data: "x".into(),
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"stdout":{"offset":4,"data":"x"}}"#
        );
        let dropped = ProcessOutput::Dropped {
            stream: "stderr".into(),
            bytes: 9,
        };
        assert_eq!(
            serde_json::to_string(&dropped).unwrap(),
            r#"{"dropped":{"stream":"stderr","bytes":9}}"#
        );
        let by_id: CreateSandboxRequest = serde_json::from_str(r#"{"template":"tpl_1"}"#).unwrap();
        assert_eq!(by_id.template, Some(TemplateRef::Id("tpl_1".into())));
        let inline: CreateSandboxRequest =
            serde_json::from_str(r#"{"template":{"commands":["make"]}}"#).unwrap();
        assert!(
            matches!(inline.template, Some(TemplateRef::Spec(spec)) if spec.commands == ["make"])
        );
        // A sandbox from an older backend (no new fields) still reads.
        let old: Sandbox = serde_json::from_str(
            r#"{"id":"s","provider":"local","status":"ready","error":null,"network":"private","labels":{},"created_at":1}"#,
        )
        .unwrap();
        assert_eq!(old.status_reason, None);
    }

    #[test]
    fn exec_request_needs_only_a_command() {
        let request: ExecRequest = serde_json::from_str(r#"{"command":"ls"}"#).unwrap();
        assert_eq!(request.command, "ls");
        assert!(request.args.is_empty() && request.stdin.is_none());
        assert!(serde_json::from_str::<ExecRequest>(r#"{"command":"ls","bogus":1}"#).is_err());
    }
}
