//! One `opencode serve` process inside the sandbox, and a client for its HTTP API
//! (basic auth `opencode:<password>`, a fresh password per start).
//!
//! The process is started through the sandbox's command wrapper, like every command
//! the agent runs, so OpenCode (and everything its tools run) lives inside the
//! sandbox with the workspace as its working directory. Its password and
//! configuration go in on stdin, never on a command line; its output goes to a log
//! file in the runner's own directory. A task watches the process: when it exits,
//! [`ServerProcess::exited`] says how; dropping the [`ServerProcess`] stops it
//! (SIGTERM to the wrapper, which passes it on, then SIGKILL).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// OpenCode's basic-auth user name (`OPENCODE_SERVER_USERNAME`'s default).
const USERNAME: &str = "opencode";
/// Every plain API call gets this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// `POST /session/{id}/abort` gets this long.
const ABORT_TIMEOUT: Duration = Duration::from_secs(3);
/// A health probe gets this long (a server still starting may hold the request).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Between SIGTERM and SIGKILL when stopping.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Reads the secrets from stdin and starts the server. `$0` is the binary, `$1` the
/// port. The `OPENCODE_*` switches keep it from reaching the internet on its own
/// (updates, model lists, sharing, LSP downloads) and from reading configuration
/// the session did not write (another tool's settings, the repository's own
/// `opencode.json`), loading plugins or skills (`OPENCODE_PURE`: a repository's
/// `.opencode/plugin/` would otherwise run inside OpenCode, next to its secrets), and
/// enable the question tool.
const START_SCRIPT: &str = r#"IFS= read -r OPENCODE_SERVER_PASSWORD || exit 97
IFS= read -r OPENCODE_CONFIG_CONTENT || exit 97
export OPENCODE_SERVER_PASSWORD OPENCODE_CONFIG_CONTENT
export OPENCODE_DISABLE_AUTOUPDATE=1 OPENCODE_DISABLE_MODELS_FETCH=1 OPENCODE_DISABLE_SHARE=1
export OPENCODE_DISABLE_LSP_DOWNLOAD=1 OPENCODE_DISABLE_CLAUDE_CODE=1 OPENCODE_DISABLE_DEFAULT_PLUGINS=1
export OPENCODE_DISABLE_PROJECT_CONFIG=1 OPENCODE_ENABLE_QUESTION_TOOL=1
export OPENCODE_PURE=1 OPENCODE_DISABLE_EXTERNAL_SKILLS=1
exec "$0" serve --hostname 127.0.0.1 --port "$1" </dev/null"#;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot start OpenCode ({binary}): {cause}")]
    Spawn { binary: String, cause: String },
    #[error("OpenCode exited while starting ({status}); its log ends with: {log}")]
    ExitedEarly { status: String, log: String },
    #[error("OpenCode did not answer /global/health within {0} s")]
    NotHealthy(u64),
    #[error("OpenCode's {call} failed: {reason}")]
    Call { call: String, reason: String },
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    pub wrapper: Vec<String>,
    /// The workspace on this machine (the working directory without a wrapper).
    pub workspace_dir: PathBuf,
    /// HOME for OpenCode when there is no wrapper (with one, the sandbox's own).
    pub home_without_wrapper: PathBuf,
    pub log_path: PathBuf,
    pub port: u16,
    pub password: String,
    /// The configuration, as one line of JSON.
    pub config: String,
}

/// A started server process.
pub struct ServerProcess {
    stop: CancellationToken,
    exited: watch::Receiver<Option<String>>,
    pid: Option<u32>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ServerProcess {
    pub fn start(launch: &Launch) -> Result<ServerProcess, ServerError> {
        let spawn_error = |cause: String| ServerError::Spawn {
            binary: launch.binary.display().to_string(),
            cause,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log_path)
            .map_err(|error| {
                spawn_error(format!("its log {}: {error}", launch.log_path.display()))
            })?;
        let stderr = log
            .try_clone()
            .map_err(|error| spawn_error(error.to_string()))?;
        let mut command = match launch.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg("bash");
                command
            }
            None => {
                let mut command = Command::new("bash");
                let home = &launch.home_without_wrapper;
                command
                    .current_dir(&launch.workspace_dir)
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("HOME", home)
                    .env("XDG_CONFIG_HOME", home.join(".config"))
                    .env("XDG_DATA_HOME", home.join(".local/share"))
                    .env("XDG_STATE_HOME", home.join(".local/state"))
                    .env("XDG_CACHE_HOME", home.join(".cache"))
                    .env("LANG", "C.UTF-8");
                command
            }
        };
        command
            .args(["-c", START_SCRIPT])
            .arg(&launch.binary)
            .arg(launch.port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|error| spawn_error(error.to_string()))?;
        let pid = child.id();
        let mut stdin = child.stdin.take();
        let secrets = format!("{}\n{}\n", launch.password, launch.config);
        let stop = CancellationToken::new();
        let (exited_sender, exited) = watch::channel(None);
        let stopping = stop.clone();
        tokio::spawn(async move {
            if let Some(stdin) = stdin.as_mut() {
                let _ = stdin.write_all(secrets.as_bytes()).await;
                let _ = stdin.shutdown().await;
            }
            drop(stdin);
            tokio::select! {
                status = child.wait() => {
                    let status = match status {
                        Ok(status) => status.to_string(),
                        Err(error) => error.to_string(),
                    };
                    exited_sender.send_replace(Some(status));
                }
                _ = stopping.cancelled() => {
                    // The wrapper passes SIGTERM on to OpenCode's process group.
                    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()).filter(|id| *id > 1) {
                        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                    }
                    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                    }
                    exited_sender.send_replace(Some("stopped".into()));
                }
            }
        });
        Ok(ServerProcess { stop, exited, pid })
    }

    /// How it exited, once it has.
    pub fn exit_status(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// Resolves when the process has exited, with how.
    pub async fn exited(&self) -> String {
        let mut exited = self.exited.clone();
        loop {
            if let Some(status) = exited.borrow_and_update().clone() {
                return status;
            }
            if exited.changed().await.is_err() {
                return "gone".into();
            }
        }
    }

    /// The host pid of the wrapper (or of bash/OpenCode without one).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    if tail.is_empty() {
        "(nothing)".into()
    } else {
        tail.join(" | ")
    }
}

/// How OpenCode announces its server on standard output.
const LISTENING: &str = "listening on http://127.0.0.1:";

/// Waits until OpenCode's log (from byte `from` on, what this start wrote) says
/// which port it listens on; fails when the process exits or `limit` passes.
pub async fn wait_listening(
    process: &ServerProcess,
    log_path: &Path,
    from: u64,
    limit: Duration,
) -> Result<u16, ServerError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let log = std::fs::read(log_path).unwrap_or_default();
        let fresh = String::from_utf8_lossy(log.get(from as usize..).unwrap_or_default());
        if let Some(port) = fresh.lines().find_map(|line| {
            let (_, rest) = line.split_once(LISTENING)?;
            rest.trim_end_matches('/').trim().parse::<u16>().ok()
        }) {
            return Ok(port);
        }
        if let Some(status) = process.exit_status() {
            return Err(ServerError::ExitedEarly {
                status,
                log: log_tail(log_path, 5),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ServerError::NotHealthy(limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client for one server.
#[derive(Clone)]
pub struct OpencodeClient {
    http: reqwest::Client,
    base: String,
    password: String,
}

impl OpencodeClient {
    pub fn new(http: reqwest::Client, port: u16, password: String) -> OpencodeClient {
        OpencodeClient {
            http,
            base: format!("http://127.0.0.1:{port}"),
            password,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(USERNAME, Some(&self.password))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ServerError> {
        self.call_within(CALL_TIMEOUT, method, path, body).await
    }

    async fn call_within(
        &self,
        timeout: Duration,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ServerError> {
        let name = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let failed = |reason: String| ServerError::Call {
            call: name.clone(),
            reason,
        };
        let mut request = self.request(method.clone(), path).timeout(timeout);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| failed(error.to_string()))?;
        if !status.is_success() {
            let text: String = text.chars().take(300).collect();
            return Err(failed(format!("HTTP {status}: {text}")));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|error| failed(format!("unreadable answer: {error}")))
    }

    /// True when `/global/health` answers healthy.
    pub async fn healthy(&self) -> bool {
        let probe = self
            .request(Method::GET, "/global/health")
            .timeout(PROBE_TIMEOUT)
            .send()
            .await;
        match probe {
            Ok(response) if response.status().is_success() => response
                .json::<Value>()
                .await
                .map(|body| body["healthy"] == true)
                .unwrap_or(false),
            _ => false,
        }
    }

    /// Waits until healthy, the process exits, or `limit` passes.
    pub async fn wait_healthy(
        &self,
        process: &ServerProcess,
        log_path: &Path,
        limit: Duration,
    ) -> Result<(), ServerError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = process.exit_status() {
                return Err(ServerError::ExitedEarly {
                    status,
                    log: log_tail(log_path, 5),
                });
            }
            if self.healthy().await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServerError::NotHealthy(limit.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn create_session(&self, title: &str) -> Result<String, ServerError> {
        let session = self
            .call(Method::POST, "/session", Some(json!({"title": title})))
            .await?;
        session["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ServerError::Call {
                call: "POST /session".into(),
                reason: "the answer has no id".into(),
            })
    }

    /// The most recently updated session titled `title`, if any (`GET /session`
    /// answers every session of the project with `time.updated` in ms).
    pub async fn latest_session(&self, title: &str) -> Result<Option<String>, ServerError> {
        let sessions = self.call(Method::GET, "/session", None).await?;
        Ok(latest_titled(&sessions, title))
    }

    pub async fn session_exists(&self, session_id: &str) -> bool {
        self.call(Method::GET, &format!("/session/{session_id}"), None)
            .await
            .is_ok()
    }

    pub async fn prompt(
        &self,
        session_id: &str,
        provider_id: &str,
        model_id: &str,
        text: &str,
    ) -> Result<(), ServerError> {
        let body = json!({
            "model": {"providerID": provider_id, "modelID": model_id},
            "parts": [{"type": "text", "text": text}],
        });
        self.call(
            Method::POST,
            &format!("/session/{session_id}/prompt_async"),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// Adds a user message to the session without a reply (`POST /session/{id}/message`
    /// with `noReply: true`: OpenCode stores the message and does not call the LLM),
    /// so the next prompt's request carries it.
    pub async fn add_context(
        &self,
        session_id: &str,
        provider_id: &str,
        model_id: &str,
        text: &str,
    ) -> Result<(), ServerError> {
        let body = json!({
            "model": {"providerID": provider_id, "modelID": model_id},
            "noReply": true,
            "parts": [{"type": "text", "text": text}],
        });
        self.call(
            Method::POST,
            &format!("/session/{session_id}/message"),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// Quick, so an aborted turn ends well within the `SessionAgent`'s patience.
    pub async fn abort(&self, session_id: &str) -> Result<(), ServerError> {
        self.call_within(
            ABORT_TIMEOUT,
            Method::POST,
            &format!("/session/{session_id}/abort"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// The session's status type (`idle`, `busy`, `retry`); sessions that are not
    /// listed are idle.
    pub async fn status(&self, session_id: &str) -> Result<String, ServerError> {
        let all = self.call(Method::GET, "/session/status", None).await?;
        Ok(all[session_id]["type"]
            .as_str()
            .unwrap_or("idle")
            .to_string())
    }

    /// The session's messages (`[{info, parts}]`).
    pub async fn messages(&self, session_id: &str) -> Result<Vec<Value>, ServerError> {
        let all = self
            .call(Method::GET, &format!("/session/{session_id}/message"), None)
            .await?;
        Ok(all.as_array().cloned().unwrap_or_default())
    }

    pub async fn reply_permission(&self, request_id: &str, reply: &str) -> Result<(), ServerError> {
        self.call(
            Method::POST,
            &format!("/permission/{request_id}/reply"),
            Some(json!({"reply": reply})),
        )
        .await
        .map(|_| ())
    }

    pub async fn reply_question(
        &self,
        request_id: &str,
        answers: Vec<Vec<String>>,
    ) -> Result<(), ServerError> {
        self.call(
            Method::POST,
            &format!("/question/{request_id}/reply"),
            Some(json!({"answers": answers})),
        )
        .await
        .map(|_| ())
    }

    pub async fn reject_question(&self, request_id: &str) -> Result<(), ServerError> {
        self.call(
            Method::POST,
            &format!("/question/{request_id}/reject"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Opens `GET /event`; the response streams SSE.
    pub async fn events(&self) -> Result<reqwest::Response, ServerError> {
        let failed = |reason: String| ServerError::Call {
            call: "GET /event".into(),
            reason,
        };
        let response = tokio::time::timeout(
            CALL_TIMEOUT,
            self.request(Method::GET, "/event")
                .header("accept", "text/event-stream")
                .send(),
        )
        .await
        .map_err(|_| failed("no answer".into()))?
        .map_err(|error| failed(error.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        Ok(response)
    }
}

/// The id of the most recently updated session titled `title` in a `GET /session`
/// answer; anything else in it (sub-agents' sessions, sessions the agent made
/// itself) is passed over.
fn latest_titled(sessions: &Value, title: &str) -> Option<String> {
    sessions
        .as_array()?
        .iter()
        .filter(|session| session["title"] == title && session["parentID"].is_null())
        .filter_map(|session| {
            let id = session["id"].as_str()?;
            Some((session["time"]["updated"].as_f64().unwrap_or(0.0), id))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id.to_owned())
}

#[cfg(test)]
mod latest_session_tests {
    use serde_json::json;

    use super::latest_titled;

    #[test]
    fn the_latest_top_level_session_with_the_title_is_chosen() {
        let sessions = json!([
            {"id": "ses_old", "title": "Nightshift session", "time": {"created": 1, "updated": 10}},
            {"id": "ses_new", "title": "Nightshift session", "time": {"created": 2, "updated": 30}},
            {"id": "ses_child", "title": "Nightshift session", "parentID": "ses_new", "time": {"created": 3, "updated": 99}},
            {"id": "ses_other", "title": "made by the agent", "time": {"created": 4, "updated": 50}}
        ]);
        assert_eq!(
            latest_titled(&sessions, "Nightshift session").as_deref(),
            Some("ses_new")
        );
        assert_eq!(latest_titled(&json!([]), "Nightshift session"), None);
        assert_eq!(latest_titled(&json!({"not": "a list"}), "x"), None);
    }
}
