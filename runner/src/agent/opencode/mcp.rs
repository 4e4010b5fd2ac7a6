//! The MCP server that gives OpenCode the built-in agent's browser tools, and in a
//! session with a repository its `open_pull_request` tool ([`crate::repo`]).
//!
//! OpenCode reads MCP servers from its configuration; this one is a `remote` server
//! speaking MCP's Streamable HTTP transport, reduced to what a tool server needs:
//! `POST /mcp` with one JSON-RPC 2.0 message, answered with one JSON object
//! (`initialize`, `notifications/initialized`, `ping`, `tools/list`, `tools/call`);
//! anything else is a JSON-RPC error, and `GET` (a server-sent stream) is 405, which
//! the transport allows.
//!
//! Like the LLM key proxy ([`super::proxy`]) it listens on a unix socket in OpenCode's
//! sandbox's sockets directory, reached there through a `__listen` bridge on that
//! sandbox's loopback, never on a host TCP port. Anything in OpenCode's sandbox can
//! reach that port, so every request must carry the per-start token (as a bearer
//! token), and tools run only while a turn runs ([`McpServer::arm`]): a leaked token
//! drives the browser of the session's sandbox at most while the agent itself could.
//! The tools drive the Chromium of the session's sandbox, not OpenCode's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};

use super::proxy::{bind_unix, presented_token, same_secret};
use crate::repo::RepoHandle;
use crate::repo::pull_request_tool::{self, OPEN_PULL_REQUEST_TOOL};
use crate::tools::browser::{self, BrowserTools};

/// The MCP server's socket in the sandbox's sockets directory.
pub const MCP_SOCKET: &str = "mcp.sock";
/// The server's name in OpenCode's configuration; OpenCode names its tools
/// `<server>_<tool>`, e.g. `nightshift_browser_navigate`.
pub const SERVER_NAME: &str = "nightshift";
/// The protocol revisions this server speaks, newest first.
const PROTOCOL_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];
/// The largest request taken (a tool call's arguments).
const MAX_REQUEST_BYTES: usize = 256 * 1024;

struct McpState {
    token: String,
    armed: AtomicBool,
    browser: BrowserTools,
    /// The session's repository, once known: `open_pull_request` is listed then.
    repo: OnceLock<RepoHandle>,
}

/// A running MCP server; dropping it stops it.
pub struct McpServer {
    state: Arc<McpState>,
    socket: Option<PathBuf>,
    address: Option<std::net::SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn router(state: Arc<McpState>) -> Router {
    Router::new()
        .route("/mcp", post(handle).get(no_stream).delete(no_stream))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

fn state(browser: BrowserTools) -> Arc<McpState> {
    Arc::new(McpState {
        token: super::random_secret(),
        armed: AtomicBool::new(false),
        browser,
        repo: OnceLock::new(),
    })
}

impl McpServer {
    /// Listens on the unix socket `path` (replacing a stale one).
    pub async fn start_unix(path: &Path, browser: BrowserTools) -> std::io::Result<McpServer> {
        let state = state(browser);
        let app = router(state.clone());
        let _ = std::fs::remove_file(path);
        let listener = bind_unix(path)?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the MCP server stopped");
            }
        });
        Ok(McpServer {
            state,
            socket: Some(path.to_path_buf()),
            address: None,
            task,
        })
    }

    /// Listens on a free port of the host's loopback (a runner without a sandbox
    /// bridge, which shares its loopback with OpenCode).
    pub async fn start(browser: BrowserTools) -> std::io::Result<McpServer> {
        let state = state(browser);
        let app = router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the MCP server stopped");
            }
        });
        Ok(McpServer {
            state,
            socket: None,
            address: Some(address),
            task,
        })
    }

    /// `http://127.0.0.1:<port>` for a server on the loopback.
    pub fn url(&self) -> Option<String> {
        self.address.map(|address| format!("http://{address}"))
    }

    /// The bearer token OpenCode must present.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// Tools run from now until [`McpServer::disarm`] (a turn).
    pub fn arm(&self) {
        self.state.armed.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.state.armed.store(false, Ordering::SeqCst);
    }

    /// Offers `open_pull_request` for the session's repository (once).
    pub fn set_repo(&self, repo: RepoHandle) {
        let _ = self.state.repo.set(repo);
    }
}

async fn no_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [("allow", "POST")],
        "this server answers POST /mcp only",
    )
        .into_response()
}

fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn rpc_result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

async fn handle(State(state): State<Arc<McpState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !presented_token(&headers).is_some_and(|token| same_secret(token, &state.token)) {
        let body = json!({"error": {"message": "invalid token", "type": "nightshift_mcp"}});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return answer(rpc_error(Value::Null, -32700, "the body is not JSON"));
    };
    let Some(object) = message.as_object() else {
        // Batches were dropped from the transport in 2025-06-18; one message a request.
        return answer(rpc_error(
            Value::Null,
            -32600,
            "send one JSON-RPC message per request",
        ));
    };
    let method = object.get("method").and_then(Value::as_str).unwrap_or("");
    let id = match object.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        // A notification (or a response from the client): accepted, nothing to say.
        None if !method.is_empty()
            || object.contains_key("result")
            || object.contains_key("error") =>
        {
            return StatusCode::ACCEPTED.into_response();
        }
        _ => return answer(rpc_error(Value::Null, -32600, "not a JSON-RPC request")),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return answer(rpc_error(id, -32600, "jsonrpc must be \"2.0\""));
    }
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    let reply = match method {
        "initialize" => rpc_result(id, initialize(&params)),
        "ping" => rpc_result(id, json!({})),
        "tools/list" => rpc_result(id, json!({"tools": tools(&state)})),
        "tools/call" => call(&state, id, &params).await,
        _ => rpc_error(id, -32601, "method not found"),
    };
    answer(reply)
}

fn answer(message: Value) -> Response {
    (StatusCode::OK, axum::Json(message)).into_response()
}

fn initialize(params: &Value) -> Value {
    let asked = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let version = PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .unwrap_or(&PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": SERVER_NAME, "version": nightshift_protocol::VERSION},
        "instructions": "Browser tools driving the Chromium on the session's desktop, which the user watches."
    })
}

/// The browser tools (and the pull-request tool in a session with a repository)
/// as MCP describes tools.
fn tools(state: &McpState) -> Vec<Value> {
    let repo_tool = state
        .repo
        .get()
        .filter(|repo| repo.repo().is_some())
        .map(|_| pull_request_tool::definition());
    browser::definitions()
        .into_iter()
        .chain(repo_tool)
        .map(|tool| {
            json!({
                "name": tool.name,
                "description": tool.description,
                "inputSchema": tool.parameters,
            })
        })
        .collect()
}

async fn call(state: &McpState, id: Value, params: &Value) -> Value {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let repo = state
        .repo
        .get()
        .filter(|repo| name == OPEN_PULL_REQUEST_TOOL && repo.repo().is_some());
    if !BrowserTools::owns(name) && repo.is_none() {
        return rpc_error(id, -32602, &format!("unknown tool {name:?}"));
    }
    if !state.armed.load(Ordering::SeqCst) {
        return rpc_result(
            id,
            json!({"content": [{"type": "text", "text": "No turn is running; the browser tools work during a turn."}], "isError": true}),
        );
    }
    let arguments = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let output = match repo {
        Some(repo) => pull_request_tool::run(repo, &arguments).await,
        None => state.browser.run(name, &arguments).await,
    };
    let mut content = vec![json!({"type": "text", "text": output.text})];
    if let Some(image) = &output.image {
        content.push(json!({
            "type": "image",
            "data": base64::engine::general_purpose::STANDARD.encode(&image.bytes),
            "mimeType": nightshift_protocol::artifacts::PNG_MEDIA_TYPE,
        }));
    }
    rpc_result(id, json!({"content": content, "isError": output.is_error}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::browser::devtools::Devtools;

    async fn server() -> McpServer {
        // A port nothing listens on: the tools answer "no browser", which is enough
        // to see a call go through.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        McpServer::start(BrowserTools::new(Devtools::Direct(port)))
            .await
            .unwrap()
    }

    async fn post(server: &McpServer, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/mcp", server.url().unwrap()))
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The official MCP SDK's client (`e2e/mcp-client`, installed by `make setup`)
    /// connects, lists the tools and navigates a real Chromium through this server.
    #[tokio::test]
    async fn the_official_mcp_client_lists_and_calls_the_browser_tools() {
        let client_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/mcp-client");
        assert!(
            client_dir
                .join("node_modules/@modelcontextprotocol/sdk")
                .is_dir(),
            "the MCP SDK is missing: npm install in e2e/mcp-client (make setup does)"
        );
        let chromium = crate::tools::browser::test_chromium::chromium().expect("Chromium");
        let server = McpServer::start(BrowserTools::new(Devtools::Direct(chromium.port)))
            .await
            .unwrap();
        server.arm();
        let url = format!("{}/mcp", server.url().unwrap());
        let token = server.token().to_string();
        let args = json!({"url": "data:text/html,<title>MCP page</title><p>hello through MCP</p>"})
            .to_string();
        let output = tokio::time::timeout(
            std::time::Duration::from_secs(90),
            tokio::process::Command::new("node")
                .arg("check.mjs")
                .args([
                    url.as_str(),
                    token.as_str(),
                    "browser_navigate",
                    args.as_str(),
                ])
                .current_dir(&client_dir)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the MCP client ends")
        .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        assert_eq!(answer["tools"], json!(browser::NAMES));
        assert_eq!(answer["call"]["isError"], false, "{answer}");
        let text = answer["call"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains("Title: MCP page"), "{answer}");

        // The same client with a wrong token gets nothing.
        let refused = tokio::process::Command::new("node")
            .arg("check.mjs")
            .args([url.as_str(), "wrong", "browser_read", "{}"])
            .current_dir(&client_dir)
            .kill_on_drop(true)
            .output()
            .await
            .expect("node runs");
        assert!(!refused.status.success());
    }

    #[tokio::test]
    async fn a_session_with_a_repository_offers_the_pull_request_tool_and_runs_it() {
        use nightshift_protocol::repo::{GitAuthor, SessionRepo};
        let server = server().await;
        let token = server.token().to_string();
        let dir = tempfile::tempdir().unwrap();
        let (_, runner_token) = tokio::sync::watch::channel("t".to_string());
        let settings = crate::repo::RepoSettings {
            git: crate::repo::git::SandboxGit {
                wrapper: Vec::new(),
                workspace_dir: dir.path().to_path_buf(),
                home: dir.path().display().to_string(),
            },
            credential_socket: None,
            egress_socket: None,
            // Nothing listens there: the tool's push fails, and says so.
            api: crate::repo::worker_api::WorkerApi::new(
                "http://127.0.0.1:9/api/sessions/s1".into(),
                runner_token,
            )
            .unwrap(),
        };
        let (repo_sender, repo) = tokio::sync::watch::channel(None);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (handle, _) = crate::repo::start(settings, repo, None, shutdown.clone());
        server.set_repo(handle);
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        let names = |answer: &Value| -> Vec<String> {
            answer["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect()
        };
        // Not before a welcome named a repository.
        let (_, listed) = post(&server, Some(&token), list.clone()).await;
        assert!(!names(&listed).contains(&OPEN_PULL_REQUEST_TOOL.to_string()));
        repo_sender.send_replace(Some(SessionRepo {
            full_name: "octo/hello".into(),
            clone_url: "http://127.0.0.1:9/octo/hello.git".into(),
            base_branch: "main".into(),
            branch: "nightshift/abcd1234-x".into(),
            existing_branch: false,
            author: GitAuthor {
                name: "A".into(),
                email: "a@example.com".into(),
            },
        }));
        let (_, listed) = post(&server, Some(&token), list).await;
        assert!(names(&listed).contains(&OPEN_PULL_REQUEST_TOOL.to_string()));
        server.arm();
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": OPEN_PULL_REQUEST_TOOL, "arguments": {"title": "Fix"}}});
        let (_, called) = post(&server, Some(&token), call).await;
        assert_eq!(called["result"]["isError"], true, "{called}");
        let text = called["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("could not be pushed"), "{text}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn without_the_token_nothing_is_answered() {
        let server = server().await;
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        assert_eq!(post(&server, None, list.clone()).await.0, 401);
        assert_eq!(post(&server, Some("guess"), list).await.0, 401);
    }

    #[tokio::test]
    async fn it_initializes_lists_the_browser_tools_and_calls_them_only_during_a_turn() {
        let server = server().await;
        let token = server.token().to_string();
        let (status, init) = post(
            &server,
            Some(&token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
        let (_, list) = post(
            &server,
            Some(&token),
            json!({"jsonrpc": "2.0", "id": "a", "method": "tools/list"}),
        )
        .await;
        let names: Vec<&str> = list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, browser::NAMES);
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "browser_read", "arguments": {}}});
        let (_, idle) = post(&server, Some(&token), call.clone()).await;
        assert_eq!(idle["result"]["isError"], true, "{idle}");
        assert!(
            idle["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("No turn")
        );
        server.arm();
        let (_, during) = post(&server, Some(&token), call).await;
        assert_eq!(during["result"]["isError"], true, "{during}");
        assert!(
            during["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("does not answer"),
            "{during}"
        );
        let (_, unknown) = post(&server, Some(&token), json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "bash", "arguments": {"command": "id"}}})).await;
        assert_eq!(unknown["error"]["code"], -32602);
        let (_, other) = post(
            &server,
            Some(&token),
            json!({"jsonrpc": "2.0", "id": 4, "method": "resources/list"}),
        )
        .await;
        assert_eq!(other["error"]["code"], -32601);
        let (status, _) = post(
            &server,
            Some(&token),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert_eq!(status, 202);
    }
}
