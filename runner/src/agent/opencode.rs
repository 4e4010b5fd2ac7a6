//! The OpenCode adapter: runs a turn by driving `opencode serve` (npm `opencode-ai`,
//! tested against 1.18.33) over its HTTP API, and maps what OpenCode does onto
//! Nightshift's events, so an OpenCode turn looks like a built-in one.
//!
//! Per runner: one loopback LLM proxy ([`proxy`]) that holds the session's LLM key,
//! and at most one OpenCode server ([`server`]), started inside the sandbox through
//! the command wrapper on first use with the configuration of [`config`] (a custom
//! provider pointing at the proxy, the session's model and permission rules). The
//! server is restarted when that configuration changes (another model or permission
//! mode) or after it died. One OpenCode session is kept across turns, so OpenCode
//! keeps its own history (it lives in the sandbox's home and survives a restart); a
//! runner started again finds it there (the latest session with its title) and goes
//! on with it. Each turn (prompt, tool steps, reply) is also written to the session's
//! copy of the conversation ([`ConversationMemory`], shared with the built-in agent),
//! and an OpenCode session created while that conversation holds earlier turns (a
//! replaced sandbox lost OpenCode's home, or the session used the built-in agent so
//! far) is first given them as quoted context without a reply ([`seed`]).
//!
//! A turn: subscribe to `GET /event`, then `POST /session/{id}/prompt_async`, then
//! map events ([`mapper`]) until the session is idle. A missing `session.idle` does
//! not hang the turn: the session's status is also polled. Before the turn ends the
//! session's messages are read once, so text or tool results the event stream
//! missed are still shown and the token usage is complete. Permission requests and
//! questions become `question_asked` (answered through the link, or expired); an
//! abort becomes `POST /session/{id}/abort`; if OpenCode dies mid-turn the turn
//! fails with an error saying so and a new server is started at once.

mod config;
mod mapper;
mod mcp;
pub(crate) mod proxy;
mod seed;
mod server;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use nightshift_protocol::api::PermissionMode;
use nightshift_protocol::events::QuestionKind;
use nightshift_protocol::sandbox::{RunnerBootConfig, SANDBOX_SOCKETS_DIR};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigInputs, PROVIDER_ID, opencode_config};
pub use mapper::{Ask, AskedQuestion, Mapped, TurnMapper, permission_reply};
pub use mcp::McpServer;
pub use proxy::LlmProxy;
pub use server::{Launch, OpencodeClient, ServerError, ServerProcess, wait_listening};

use super::memory::ConversationMemory;
use super::questions::{Question, QuestionOutcome};
use super::{Agent, TurnEnd, TurnEvents, TurnInput};
use crate::llm::{ConversationItem, SseDecoder};
use crate::sandbox_bridge::{Bridge, Exposed, Forward};
use crate::tools::browser::BrowserTools;
use crate::tools::browser::devtools::{DEVTOOLS_PORT, Devtools};

/// The key proxy's socket in the sandbox's sockets directory.
const PROXY_SOCKET: &str = "llm.sock";
/// How long the check of OpenCode's project mask may take.
const MASK_CHECK_TIMEOUT: Duration = Duration::from_secs(15);
/// Why OpenCode is refused once its mask is gone.
const UNMASKED: &str = "The workspace's .opencode directory was replaced while OpenCode's sandbox ran, so \
     OpenCode could have loaded plugins from it; OpenCode stays stopped until the sandbox is started again. \
     The built-in agent still works.";

/// The environment variable naming the `opencode` binary.
pub const BINARY_ENV: &str = "NIGHTSHIFT_OPENCODE_BIN";
/// OpenCode's own session title for the session the runner keeps.
const SESSION_TITLE: &str = "Nightshift session";
/// After the session went idle, events still arriving within this gap belong to the
/// turn (OpenCode may report a tool's end after `session.idle`).
const TRAILING_QUIET: Duration = Duration::from_millis(300);
const TRAILING_MAX: Duration = Duration::from_secs(2);
/// How long an aborted turn waits for OpenCode to confirm it stopped (the abort
/// call included); with the trailing events and withdrawn questions an abort ends
/// the turn in under 10 s, before the `SessionAgent` gives up on it (15 s).
const ABORT_WAIT: Duration = Duration::from_secs(6);
/// A status poll that says "idle" ends the turn only after this long, unless
/// OpenCode was seen busy (it may not have started working yet).
const IDLE_WITHOUT_BUSY: Duration = Duration::from_secs(10);

/// Where and how this runner runs OpenCode.
#[derive(Debug, Clone)]
pub struct OpencodeSettings {
    /// The `opencode` binary, as the sandbox sees it (the local provider binds it at
    /// the same path, see `SANDBOX_RO_BINDS`); `None` when none was found.
    pub binary: Option<PathBuf>,
    pub wrapper: Vec<String>,
    pub workspace_dir: PathBuf,
    /// A directory of the runner's own (outside the workspace): the configuration
    /// as written, the server's log and port.
    pub state_dir: PathBuf,
    pub start_timeout: Duration,
    pub poll_interval: Duration,
    /// How the runner reaches OpenCode's loopback inside the sandbox, and OpenCode
    /// the runner's key proxy; `None` when both share one loopback.
    pub bridge: Option<Bridge>,
    /// The host directory the sandbox sees at `SANDBOX_SOCKETS_DIR` (where the key
    /// proxy's socket goes when there is a bridge).
    pub sockets_dir: Option<PathBuf>,
    /// The project configuration directory OpenCode's sandbox masks; checked to be
    /// still mounted before OpenCode is trusted (`OpencodePlacement::masked_dir`).
    pub masked_dir: Option<String>,
    /// The browser tools OpenCode gets through the runner's MCP server: the
    /// session's sandbox's Chromium (not OpenCode's sandbox, which has none).
    pub browser: BrowserTools,
}

impl OpencodeSettings {
    pub fn from_boot(config: &RunnerBootConfig, config_path: &Path) -> OpencodeSettings {
        let runner_dir = config_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        // OpenCode in a sandbox of its own (apart from the commands it runs) when the
        // provider offers one; else through the session sandbox's command wrapper.
        let placement = config.opencode.as_ref();
        OpencodeSettings {
            binary: find_binary(),
            wrapper: placement
                .map(|placement| placement.command_wrapper.clone())
                .unwrap_or_else(|| config.command_wrapper.clone()),
            workspace_dir: PathBuf::from(&config.workspace_dir),
            state_dir: runner_dir.join("opencode"),
            start_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
            bridge: placement.and_then(|placement| Bridge::new(&placement.bridge)),
            sockets_dir: placement.map(|placement| PathBuf::from(&placement.sockets_dir)),
            masked_dir: placement.and_then(|placement| placement.masked_dir.clone()),
            browser: BrowserTools::new(match Bridge::new(&config.bridge) {
                Some(bridge) => Devtools::Bridged(bridge, DEVTOOLS_PORT),
                None => Devtools::Direct(DEVTOOLS_PORT),
            }),
        }
    }
}

/// `NIGHTSHIFT_OPENCODE_BIN`, else `opencode` on `PATH`, else the npm package next
/// to this build (`node_modules/` of the repository the runner was built in). The
/// result has its symlinks resolved, so binding its directory into the sandbox is
/// enough.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return Some(std::fs::canonicalize(&path).unwrap_or(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("opencode"))
            .find(|candidate| candidate.is_file())
    });
    let next_to_build = || {
        let exe = std::env::current_exe().ok()?;
        // target/<profile>/runner -> the repository root.
        let root = exe.parent()?.parent()?.parent()?;
        [
            "node_modules/opencode-linux-x64/bin/opencode",
            "node_modules/opencode-linux-arm64/bin/opencode",
            "node_modules/.bin/opencode",
        ]
        .into_iter()
        .map(|relative| root.join(relative))
        .find(|candidate| candidate.is_file())
    };
    on_path
        .or_else(next_to_build)
        .map(|path| std::fs::canonicalize(&path).unwrap_or(path))
}

/// A fresh random secret (hex, 128 bits).
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: a v4 UUID is still unguessable enough for a loopback token.
        return uuid::Uuid::new_v4().simple().to_string();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

struct RunningServer {
    process: ServerProcess,
    /// The runner's way to the server's port inside the sandbox (with a bridge).
    _forward: Option<Forward>,
    client: OpencodeClient,
    inputs: ConfigInputs,
    log_path: PathBuf,
}

pub struct OpencodeAgent {
    settings: OpencodeSettings,
    http: reqwest::Client,
    proxy: Option<LlmProxy>,
    /// The proxy's port on the sandbox's loopback (with a bridge).
    proxy_exposed: Option<Exposed>,
    /// The browser tools' MCP server, and its port on the sandbox's loopback.
    mcp: Option<McpServer>,
    mcp_exposed: Option<Exposed>,
    server: Option<RunningServer>,
    /// A server being started again after the last one died mid-turn.
    restarting: Option<tokio::task::JoinHandle<Result<RunningServer, String>>>,
    /// Set once the project's configuration directory was found unmasked: OpenCode
    /// may have loaded plugins from it, so it is not started again in this sandbox.
    unmasked: bool,
    session_id: Option<String>,
    /// The session's repository, for the MCP server's pull-request tool.
    repo: Option<crate::repo::RepoHandle>,
    /// The session's conversation as this runner knows it (OpenCode's turns as
    /// prompts, tool steps and replies, and the built-in agent's), and the session's
    /// copy of it (none: OpenCode's own history is all there is).
    conversation: Vec<ConversationItem>,
    memory: Option<ConversationMemory>,
}

impl OpencodeAgent {
    /// Starts the key proxy when none runs, and returns its URL as OpenCode sees it:
    /// with a bridge, a unix socket in the sandbox's sockets directory exposed on
    /// the sandbox's loopback; without, a port on the shared loopback.
    async fn start_proxy(&mut self) -> Result<String, String> {
        let failed =
            |error: std::io::Error| format!("cannot start the LLM proxy for OpenCode: {error}");
        match (&self.settings.bridge, &self.settings.sockets_dir) {
            (Some(bridge), Some(sockets_dir)) => {
                if self.proxy.is_none() {
                    let path = sockets_dir.join(PROXY_SOCKET);
                    self.proxy = Some(LlmProxy::start_unix(&path).await.map_err(failed)?);
                    self.proxy_exposed = None;
                }
                // Processes in the sandbox can end the bridge (they share its
                // user); a fresh one gets a new port, and OpenCode restarts with it.
                let alive = self.proxy_exposed.as_mut().is_some_and(Exposed::is_running);
                if !alive {
                    let socket = format!("{SANDBOX_SOCKETS_DIR}/{PROXY_SOCKET}");
                    self.proxy_exposed = Some(bridge.expose_socket(&socket).await.map_err(failed)?);
                }
                let port = self.proxy_exposed.as_ref().map(Exposed::port).unwrap_or(0);
                Ok(format!("http://127.0.0.1:{port}"))
            }
            _ => {
                if self.proxy.is_none() {
                    self.proxy = Some(LlmProxy::start().await.map_err(failed)?);
                }
                self.proxy
                    .as_ref()
                    .and_then(LlmProxy::url)
                    .ok_or_else(|| "the LLM proxy has no address".to_string())
            }
        }
    }

    /// Starts the browser tools' MCP server when none runs, and returns its URL as
    /// OpenCode sees it (placed like the key proxy, see [`Self::start_proxy`]).
    async fn start_mcp(&mut self) -> Result<String, String> {
        let failed =
            |error: std::io::Error| format!("cannot start the MCP server for OpenCode: {error}");
        let browser = self.settings.browser.clone();
        match (&self.settings.bridge, &self.settings.sockets_dir) {
            (Some(bridge), Some(sockets_dir)) => {
                if self.mcp.is_none() {
                    let path = sockets_dir.join(mcp::MCP_SOCKET);
                    let server = McpServer::start_unix(&path, browser)
                        .await
                        .map_err(failed)?;
                    if let Some(repo) = &self.repo {
                        server.set_repo(repo.clone());
                    }
                    self.mcp = Some(server);
                    self.mcp_exposed = None;
                }
                let alive = self.mcp_exposed.as_mut().is_some_and(Exposed::is_running);
                if !alive {
                    let socket = format!("{SANDBOX_SOCKETS_DIR}/{}", mcp::MCP_SOCKET);
                    self.mcp_exposed = Some(bridge.expose_socket(&socket).await.map_err(failed)?);
                }
                let port = self.mcp_exposed.as_ref().map(Exposed::port).unwrap_or(0);
                Ok(format!("http://127.0.0.1:{port}"))
            }
            _ => {
                if self.mcp.is_none() {
                    let server = McpServer::start(browser).await.map_err(failed)?;
                    if let Some(repo) = &self.repo {
                        server.set_repo(repo.clone());
                    }
                    self.mcp = Some(server);
                }
                self.mcp
                    .as_ref()
                    .and_then(McpServer::url)
                    .ok_or_else(|| "the MCP server has no address".to_string())
            }
        }
    }

    pub fn new(settings: OpencodeSettings) -> OpencodeAgent {
        // A pooled connection is not reused after 2 s idle: a request written on a
        // keep-alive connection as the server closes it fails without reaching it, and
        // loopback connections cost nothing to open again.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        OpencodeAgent {
            settings,
            http,
            proxy: None,
            proxy_exposed: None,
            mcp: None,
            mcp_exposed: None,
            repo: None,
            server: None,
            restarting: None,
            unmasked: false,
            session_id: None,
            conversation: Vec::new(),
            memory: None,
        }
    }

    /// Keeps each turn in the session's copy of the conversation, and seeds a fresh
    /// OpenCode session from it.
    pub fn with_memory(mut self, memory: ConversationMemory) -> OpencodeAgent {
        self.memory = Some(memory);
        self
    }

    /// Gives OpenCode the session's repository's `open_pull_request` tool (through
    /// the MCP server).
    pub fn with_repo(mut self, repo: crate::repo::RepoHandle) -> OpencodeAgent {
        self.repo = Some(repo);
        self
    }

    /// The running server's host pid (of its wrapper), for tests.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(|s| s.process.pid())
    }

    /// Whether OpenCode's sandbox still hides the project's configuration directory
    /// (always true without such a mask). A detached mount never comes back, so a
    /// mask found in place was in place the whole time before.
    async fn mask_intact(&self) -> bool {
        let Some(mask) = &self.settings.masked_dir else {
            return true;
        };
        let Some((program, args)) = self.settings.wrapper.split_first() else {
            return true;
        };
        let check = tokio::process::Command::new(program)
            .args(args)
            .args([
                "awk",
                &format!("$5 == \"{mask}\" {{ found = 1 }} END {{ exit !found }}"),
                "/proc/self/mountinfo",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        matches!(
            tokio::time::timeout(MASK_CHECK_TIMEOUT, check).await,
            Ok(Ok(status)) if status.success()
        )
    }

    /// Stops OpenCode for good in this sandbox when the mask is gone.
    async fn refuse_if_unmasked(&mut self) -> Result<(), String> {
        if !self.unmasked && self.mask_intact().await {
            return Ok(());
        }
        self.unmasked = true;
        self.server = None;
        self.session_id = None;
        Err(UNMASKED.to_string())
    }

    /// Makes sure a healthy server with this turn's configuration runs and the
    /// OpenCode session exists; a session created here (none of this runner's or its
    /// predecessor's was found) starts with `earlier`, the session's conversation
    /// before this turn.
    async fn prepare(
        &mut self,
        input: &TurnInput,
        earlier: &[ConversationItem],
    ) -> Result<String, String> {
        if self.unmasked {
            return Err(UNMASKED.to_string());
        }
        let Some(binary) = self.settings.binary.clone() else {
            return Err(format!(
                "OpenCode is not available to this runner: install the npm package opencode-ai (`npm ci` in the \
                 Nightshift checkout) or set {BINARY_ENV} to the opencode binary, and make its directory \
                 visible in sandboxes (SANDBOX_RO_BINDS)."
            ));
        };
        let proxy_url = self.start_proxy().await?;
        let Some(proxy) = self.proxy.as_ref() else {
            return Err("the LLM proxy is missing".into());
        };
        proxy.arm(input.llm.clone());
        let proxy_token = proxy.token().to_string();
        let mcp_url = self.start_mcp().await?;
        let Some(mcp) = self.mcp.as_ref() else {
            return Err("the MCP server is missing".into());
        };
        mcp.arm();
        let inputs = ConfigInputs {
            api: input.llm.api,
            model: input.llm.model.clone(),
            permission_mode: input.permission_mode,
            proxy_url,
            proxy_token,
            mcp_url: format!("{mcp_url}/mcp"),
            mcp_token: mcp.token().to_string(),
        };
        if let Some(restart) = self.restarting.take() {
            match restart.await {
                Ok(Ok(server)) if server.inputs == inputs => self.server = Some(server),
                Ok(Ok(_)) => {
                    tracing::info!("the session's settings changed since OpenCode was restarted")
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "restarting OpenCode failed; trying again")
                }
                Err(error) => tracing::warn!(%error, "the OpenCode restart was lost"),
            }
        }
        if let Some(server) = &self.server {
            if let Some(status) = server.process.exit_status() {
                tracing::warn!(%status, "OpenCode is gone; starting it again");
                self.server = None;
            } else if server.inputs != inputs {
                tracing::info!(
                    "the session's model or permission mode changed; restarting OpenCode"
                );
                self.server = None;
            }
        }
        if self.server.is_none() {
            let started =
                start_server(self.settings.clone(), self.http.clone(), binary, inputs).await?;
            self.server = Some(started);
        }
        let Some(server) = self.server.as_ref() else {
            return Err("OpenCode is not running".into());
        };
        // A runner started again (after a crash, or in a woken sandbox) continues
        // the OpenCode session its predecessor kept in the sandbox's home.
        if self.session_id.is_none() {
            match server.client.latest_session(SESSION_TITLE).await {
                Ok(found) => self.session_id = found,
                Err(error) => tracing::warn!(%error, "listing OpenCode's sessions failed"),
            }
        }
        if let Some(id) = &self.session_id
            && server.client.session_exists(id).await
        {
            let id = id.clone();
            self.refuse_if_unmasked().await?;
            return Ok(id);
        }
        let id = server
            .client
            .create_session(SESSION_TITLE)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(session = %id, "OpenCode session created");
        self.session_id = Some(id.clone());
        // OpenCode has read the project now: it must not have seen its `.opencode/`.
        self.refuse_if_unmasked().await?;
        // A fresh OpenCode session (its home was lost with a replaced sandbox, or the
        // session used the built-in agent so far) hears the earlier turns first.
        if let Some(text) = seed::seed_text(earlier)
            && let Some(server) = self.server.as_ref()
        {
            match server
                .client
                .add_context(&id, PROVIDER_ID, &input.llm.model, &text)
                .await
            {
                Ok(()) => tracing::info!(
                    items = earlier.len(),
                    bytes = text.len(),
                    "the OpenCode session starts with the earlier conversation"
                ),
                Err(error) => {
                    tracing::warn!(%error, "the earlier conversation could not be given to OpenCode")
                }
            }
        }
        Ok(id)
    }
}

/// Starts a server with `inputs` and waits until it is healthy.
async fn start_server(
    settings: OpencodeSettings,
    http: reqwest::Client,
    binary: PathBuf,
    inputs: ConfigInputs,
) -> Result<RunningServer, String> {
    let binary = binary.as_path();
    let state_dir = &settings.state_dir;
    std::fs::create_dir_all(state_dir)
        .map_err(|error| format!("cannot create {}: {error}", state_dir.display()))?;
    let config = opencode_config(&inputs);
    write_private(
        &state_dir.join("opencode.json"),
        &serde_json::to_string_pretty(&config).unwrap_or_default(),
    );
    stop_left_over(&state_dir.join("opencode.pid"));
    let port = free_port().map_err(|error| format!("no free port for OpenCode: {error}"))?;
    write_private(&state_dir.join("opencode.port"), &port.to_string());
    let log_path = state_dir.join("opencode.log");
    let launch = Launch {
        binary: binary.to_path_buf(),
        wrapper: settings.wrapper.clone(),
        workspace_dir: settings.workspace_dir.clone(),
        home_without_wrapper: state_dir.join("home"),
        log_path: log_path.clone(),
        port,
        password: random_secret(),
        config: config.to_string(),
    };
    tracing::info!(port, binary = %binary.display(), "starting OpenCode");
    let log_start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
    let process = ServerProcess::start(&launch).map_err(|error| error.to_string())?;
    if let Some(pid) = process.pid() {
        write_private(&state_dir.join("opencode.pid"), &pid.to_string());
    }
    // Only the port OpenCode says it listens on is trusted: a process in the
    // sandbox may have taken the one asked for, and must not receive the password.
    let port = wait_listening(&process, &log_path, log_start, settings.start_timeout)
        .await
        .map_err(|error| format!("OpenCode could not start: {error}"))?;
    let forward = match &settings.bridge {
        Some(bridge) => Some(
            bridge
                .forward_into(port)
                .await
                .map_err(|error| format!("cannot reach OpenCode inside the sandbox: {error}"))?,
        ),
        None => None,
    };
    let client_port = forward.as_ref().map(Forward::port).unwrap_or(port);
    let client = OpencodeClient::new(http, client_port, launch.password.clone());
    client
        .wait_healthy(&process, &log_path, settings.start_timeout)
        .await
        .map_err(|error| format!("OpenCode could not start: {error}"))?;
    tracing::info!(port, "OpenCode is up");
    Ok(RunningServer {
        process,
        _forward: forward,
        client,
        inputs,
        log_path,
    })
}

/// Stops the OpenCode a previous runner of this sandbox started and could not stop
/// (it was killed): SIGTERM to the process recorded in `pid_file`, if that process
/// is still the one that started OpenCode (its command line says so).
fn stop_left_over(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 1)
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    // The wrapper's command line holds the start script; without a wrapper the
    // process is OpenCode itself.
    let ours = cmdline.contains("OPENCODE_SERVER_PASSWORD")
        || (cmdline.contains("serve") && cmdline.contains("--hostname"));
    if ours {
        tracing::info!(pid, "stopping the OpenCode a previous runner left behind");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = std::fs::remove_file(pid_file);
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "cannot write");
    }
}

impl OpencodeAgent {
    /// Writes what the session's copy of the conversation does not have yet.
    async fn remember(&mut self, message_id: &str) {
        if let Some(memory) = &mut self.memory {
            memory.save(&self.conversation, message_id).await;
        }
    }

    /// Adds the turn's replies and tool steps (OpenCode's messages after the turn's
    /// prompt, the session's last user message) to the conversation, and saves it.
    /// Nothing is added when the last user message is not the prompt (it never
    /// reached OpenCode).
    async fn record_turn(&mut self, session_id: &str, message_id: &str, prompt_text: &str) {
        if self.memory.is_none() {
            return;
        }
        let Some(server) = self.server.as_ref() else {
            return;
        };
        match server.client.messages(session_id).await {
            Ok(messages) => {
                let prompt = messages
                    .iter()
                    .rposition(|message| message["info"]["role"] == "user")
                    .filter(|index| {
                        messages[*index]["parts"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|part| part["text"] == prompt_text)
                    });
                if let Some(prompt) = prompt {
                    self.conversation
                        .extend(seed::turn_items(&messages[prompt + 1..]));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read OpenCode's messages; the turn's replies are not kept")
            }
        }
        self.remember(message_id).await;
    }
}

#[async_trait]
impl Agent for OpencodeAgent {
    fn other_agent_ran(&mut self) {
        if let Some(memory) = &mut self.memory {
            memory.forget(&mut self.conversation);
        }
    }

    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) -> TurnEnd {
        // Entries are keyed by the prompt: a prompt run again gets a new turn id.
        let message_id = input.message_id.clone();
        if let Some(memory) = &mut self.memory {
            memory.begin_turn(&mut self.conversation, &message_id).await;
        }
        let earlier = self.conversation.clone();
        self.conversation.push(ConversationItem::User {
            text: input.content.clone(),
        });
        self.remember(&message_id).await;
        let input_content = input.content.clone();
        let prepared = tokio::select! {
            prepared = self.prepare(&input, &earlier) => prepared,
            _ = cancel.cancelled() => return TurnEnd::aborted(Default::default()),
        };
        let session_id = match prepared {
            Ok(id) => id,
            Err(message) => return TurnEnd::failed(Default::default(), message),
        };
        let Some(server) = self.server.as_ref() else {
            return TurnEnd::failed(Default::default(), "OpenCode is not running");
        };
        let mut turn = Turn {
            server,
            died: false,
            mapper: TurnMapper::new(&session_id),
            session_id,
            events,
            cancel,
            body: None,
            decoder: SseDecoder::new(),
            asks: JoinSet::new(),
            asks_cancel: cancel.child_token(),
            permission_mode: input.permission_mode,
            poll_interval: self.settings.poll_interval,
        };
        let outcome = turn.run(&input).await;
        if let Some(proxy) = &self.proxy {
            proxy.disarm();
        }
        if let Some(mcp) = &self.mcp {
            mcp.disarm();
        }
        let died = turn.died;
        let session_id = turn.session_id.clone();
        drop(turn);
        if !died {
            self.record_turn(&session_id, &message_id, &input_content)
                .await;
        }
        if let Err(message) = self.refuse_if_unmasked().await {
            return TurnEnd::failed(Default::default(), message);
        }
        if died {
            // Started again at once, so the next prompt finds it (nearly) ready.
            if let (Some(dead), Some(binary)) = (self.server.take(), self.settings.binary.clone()) {
                tracing::info!("restarting OpenCode");
                self.restarting = Some(tokio::spawn(start_server(
                    self.settings.clone(),
                    self.http.clone(),
                    binary,
                    dead.inputs.clone(),
                )));
            }
        }
        outcome
    }
}

/// The start of the error of a turn whose OpenCode died.
const DIED: &str = "OpenCode exited unexpectedly";

type EventStream = Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

enum Step {
    Event(Value),
    StreamEnded,
    Died(String),
    Cancelled,
    Poll,
    Nothing,
}

struct Turn<'a> {
    server: &'a RunningServer,
    /// OpenCode's process exited during the turn.
    died: bool,
    session_id: String,
    events: &'a TurnEvents,
    cancel: &'a CancellationToken,
    mapper: TurnMapper,
    body: Option<EventStream>,
    decoder: SseDecoder,
    asks: JoinSet<()>,
    asks_cancel: CancellationToken,
    permission_mode: PermissionMode,
    poll_interval: Duration,
}

impl Turn<'_> {
    async fn run(&mut self, input: &TurnInput) -> TurnEnd {
        let started = Instant::now();
        // Subscribe first: nothing the prompt causes may be missed.
        if let Err(error) = self.subscribe().await {
            return self.fail(format!("cannot follow OpenCode's events: {error}"));
        }
        let client = &self.server.client;
        if let Err(error) = client
            .prompt(
                &self.session_id,
                PROVIDER_ID,
                &input.llm.model,
                &input.content,
            )
            .await
        {
            return self.fail(error.to_string());
        }
        let mut poll = tokio::time::interval(self.poll_interval);
        poll.tick().await;
        loop {
            match self.next_step(&mut poll).await {
                Step::Event(event) => {
                    if self.handle(&event).await {
                        break;
                    }
                }
                Step::StreamEnded => {
                    self.body = None;
                    tracing::info!("OpenCode's event stream ended; following its status");
                }
                Step::Poll => {
                    if self.body.is_none() {
                        let _ = self.subscribe().await;
                    }
                    match self.server.client.status(&self.session_id).await {
                        Ok(status) if status == "idle" => {
                            if self.mapper.busy_seen() || started.elapsed() > IDLE_WITHOUT_BUSY {
                                tracing::info!("OpenCode is idle (by its status)");
                                break;
                            }
                        }
                        Ok(_) => self.mapper.note_busy(),
                        Err(error) => tracing::debug!(%error, "status poll failed"),
                    }
                }
                Step::Died(status) => return self.died(&status).await,
                Step::Cancelled => return self.abort().await,
                Step::Nothing => {}
            }
        }
        self.drain().await;
        self.catch_up().await;
        self.finish_asks().await;
        for event in self
            .mapper
            .close_open_tools("OpenCode finished without reporting this tool's result.")
        {
            self.events.emit(event).await;
        }
        let usage = self.mapper.usage();
        match self.mapper.error() {
            Some(error) => TurnEnd::failed(usage, error),
            None if self.mapper.aborted() => TurnEnd::aborted(usage),
            None => TurnEnd::done(usage),
        }
    }

    fn fail(&self, message: String) -> TurnEnd {
        TurnEnd::failed(self.mapper.usage(), message)
    }

    async fn subscribe(&mut self) -> Result<(), ServerError> {
        let response = self.server.client.events().await?;
        self.body = Some(Box::pin(response.bytes_stream()));
        self.decoder = SseDecoder::new();
        // OpenCode greets every subscriber with `server.connected`; once it is here,
        // the subscription is live.
        let greeted = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match self.read_events().await {
                    Some(events) => {
                        let mut connected = false;
                        for event in events {
                            if event["type"] == "server.connected" {
                                connected = true;
                            } else {
                                self.handle(&event).await;
                            }
                        }
                        if connected {
                            return true;
                        }
                    }
                    None => return false,
                }
            }
        })
        .await;
        match greeted {
            Ok(true) => Ok(()),
            _ => {
                self.body = None;
                Err(ServerError::Call {
                    call: "GET /event".into(),
                    reason: "no server.connected event".into(),
                })
            }
        }
    }

    /// The next chunk's events; `None` when the stream ended or broke.
    async fn read_events(&mut self) -> Option<Vec<Value>> {
        let body = self.body.as_mut()?;
        match body.next().await {
            Some(Ok(bytes)) => {
                let events = self.decoder.feed(&bytes).ok()?;
                Some(
                    events
                        .into_iter()
                        .filter_map(|event| serde_json::from_str(&event.data).ok())
                        .collect(),
                )
            }
            _ => None,
        }
    }

    async fn next_step(&mut self, poll: &mut tokio::time::Interval) -> Step {
        let process = &self.server.process;
        let body = self.body.as_mut();
        tokio::select! {
            _ = self.cancel.cancelled() => Step::Cancelled,
            status = process.exited() => Step::Died(status),
            _ = poll.tick() => Step::Poll,
            Some(_) = self.asks.join_next(), if !self.asks.is_empty() => Step::Nothing,
            chunk = async {
                match body {
                    Some(body) => body.next().await,
                    None => std::future::pending().await,
                }
            } => match chunk {
                Some(Ok(bytes)) => match self.decoder.feed(&bytes) {
                    Ok(events) => {
                        // One chunk may hold several events; hand them over one by one.
                        let mut values: Vec<Value> = events
                            .into_iter()
                            .filter_map(|event| serde_json::from_str(&event.data).ok())
                            .collect();
                        match values.len() {
                            0 => Step::Nothing,
                            1 => Step::Event(values.remove(0)),
                            _ => Step::Event(json!({"type": "nightshift.batch", "events": values})),
                        }
                    }
                    Err(_) => Step::StreamEnded,
                },
                _ => Step::StreamEnded,
            },
        }
    }

    /// Handles one event (or a batch); true when the session went idle.
    async fn handle(&mut self, event: &Value) -> bool {
        if event["type"] == "nightshift.batch" {
            let mut idle = false;
            for inner in event["events"].as_array().cloned().unwrap_or_default() {
                idle |= Box::pin(self.handle(&inner)).await;
            }
            return idle;
        }
        let mut idle = false;
        for mapped in self.mapper.map(event, now_ms()) {
            match mapped {
                Mapped::Emit(body) => self.events.emit(body).await,
                Mapped::Ask(ask) => self.spawn_ask(ask),
                Mapped::Idle => idle = true,
            }
        }
        idle
    }

    fn spawn_ask(&mut self, ask: Ask) {
        let client = self.server.client.clone();
        let events = self.events.clone();
        let cancel = self.asks_cancel.clone();
        let allow = self.permission_mode == PermissionMode::Allow;
        self.asks.spawn(async move {
            let result = match ask {
                Ask::Permission { request_id, .. } if allow => {
                    client.reply_permission(&request_id, "always").await
                }
                Ask::Permission {
                    request_id,
                    text,
                    options,
                } => {
                    let question = Question {
                        id: request_id.clone(),
                        kind: QuestionKind::Permission,
                        text,
                        options,
                    };
                    match events.ask(question, &cancel).await {
                        QuestionOutcome::Answered(answer) => {
                            client
                                .reply_permission(&request_id, permission_reply(&answer))
                                .await
                        }
                        QuestionOutcome::Expired => {
                            client.reply_permission(&request_id, "reject").await
                        }
                        QuestionOutcome::Aborted => Ok(()),
                    }
                }
                Ask::Question {
                    request_id,
                    questions,
                } => {
                    let several = questions.len() > 1;
                    let mut answers = Vec::new();
                    let mut outcome = None;
                    for (index, asked) in questions.into_iter().enumerate() {
                        let question = Question {
                            id: if several {
                                format!("{request_id}.{index}")
                            } else {
                                request_id.clone()
                            },
                            kind: QuestionKind::Question,
                            text: asked.text,
                            options: asked.options,
                        };
                        match events.ask(question, &cancel).await {
                            QuestionOutcome::Answered(answer) => answers.push(vec![answer]),
                            other => {
                                outcome = Some(other);
                                break;
                            }
                        }
                    }
                    match outcome {
                        None => client.reply_question(&request_id, answers).await,
                        Some(QuestionOutcome::Expired) => client.reject_question(&request_id).await,
                        Some(_) => Ok(()),
                    }
                }
            };
            if let Err(error) = result {
                tracing::warn!(%error, "cannot pass an answer on to OpenCode");
            }
        });
    }

    /// Events that still arrive right after the session went idle.
    async fn drain(&mut self) {
        let deadline = Instant::now() + TRAILING_MAX;
        while self.body.is_some() && Instant::now() < deadline {
            match tokio::time::timeout(TRAILING_QUIET, self.read_events()).await {
                Ok(Some(events)) => {
                    for event in events {
                        self.handle(&event).await;
                    }
                }
                Ok(None) => self.body = None,
                Err(_) => break,
            }
        }
    }

    /// Reads the turn's messages once and maps them as if their final states had
    /// arrived as events: what the stream missed is shown, usage is complete. The
    /// turn's messages are the assistant messages after the session's last user
    /// message (this turn's prompt: turns run one at a time).
    async fn catch_up(&mut self) {
        let messages = match self.server.client.messages(&self.session_id).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::debug!(%error, "cannot read OpenCode's messages");
                return;
            }
        };
        let Some(prompt) = messages
            .iter()
            .rposition(|message| message["info"]["role"] == "user")
        else {
            return;
        };
        for message in &messages[prompt + 1..] {
            let info = &message["info"];
            if info["role"] != "assistant" {
                continue;
            }
            let updated = json!({"type": "message.updated",
                "properties": {"sessionID": self.session_id, "info": info}});
            self.handle(&updated).await;
            for part in message["parts"].as_array().cloned().unwrap_or_default() {
                let part = json!({"type": "message.part.updated",
                    "properties": {"sessionID": self.session_id, "part": part}});
                self.handle(&part).await;
            }
        }
    }

    /// Questions still waiting when the turn ends are withdrawn.
    async fn finish_asks(&mut self) {
        self.asks_cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while self.asks.join_next().await.is_some() {}
        })
        .await;
        self.asks.abort_all();
    }

    async fn abort(&mut self) -> TurnEnd {
        tracing::info!("aborting the OpenCode turn");
        let deadline = Instant::now() + ABORT_WAIT;
        self.asks_cancel.cancel();
        if let Err(error) = self.server.client.abort(&self.session_id).await {
            tracing::warn!(%error, "OpenCode's abort failed");
        }
        // Wait for OpenCode to confirm (its last tool results come with it).
        while self.body.is_some() && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline.into(), self.read_events()).await {
                Ok(Some(events)) => {
                    let mut idle = false;
                    for event in events {
                        idle |= self.handle(&event).await;
                    }
                    if idle {
                        break;
                    }
                }
                Ok(None) => self.body = None,
                Err(_) => break,
            }
        }
        self.drain().await;
        self.finish_asks().await;
        for event in self.mapper.close_open_tools("Aborted by the user.") {
            self.events.emit(event).await;
        }
        TurnEnd::aborted(self.mapper.usage())
    }

    async fn died(&mut self, status: &str) -> TurnEnd {
        self.died = true;
        self.finish_asks().await;
        for event in self
            .mapper
            .close_open_tools("OpenCode stopped before this tool finished.")
        {
            self.events.emit(event).await;
        }
        let log = server::log_tail(&self.server.log_path, 3);
        tracing::warn!(%status, "OpenCode died during a turn");
        TurnEnd::failed(
            self.mapper.usage(),
            format!(
                "{DIED} ({status}) during this turn; it is started again for the next prompt. Its log ends with: {log}"
            ),
        )
    }
}

#[cfg(test)]
mod tests;
