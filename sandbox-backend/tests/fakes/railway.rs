//! A fake Railway: the GraphQL endpoint (`POST /graphql/v2`; a project token only in
//! the `project-access-token` header, an account token only as `Authorization:
//! Bearer`, as Railway takes them, and Railway's `{"errors": [{"message": "Not
//! Authorized"}]}` for anything else) with the sandbox
//! operations the Railway CLI uses, and the exec bridge (`GET /ws/exec`, a WebSocket
//! authorized by a shell token from `generateShellToken` in `Sec-WebSocket-Protocol`
//! after `railway-shell`, tagged binary frames, `exit` text frames).
//!
//! Every GraphQL operation is first checked against the operations of Railway's own
//! TypeScript SDK ([`official`]): root field, argument names, variable types and
//! selected fields, refused with a GraphQL validation error otherwise. Then the fake
//! reads the operation's root field and its variables (the provider sends every
//! argument as a variable, as the CLI does).

pub mod official;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{Images, Machine, Output, next_id};

/// The project token (`RAILWAY_TOKEN`): valid only in `project-access-token`.
pub const PROJECT_TOKEN: &str = "railway-fake-project-token";
/// The account token (`RAILWAY_API_TOKEN`): valid only as a bearer token.
pub const ACCOUNT_TOKEN: &str = "railway-fake-account-token";
pub const ENVIRONMENT_ID: &str = "env-fake";

pub struct FakeRailway {
    pub graphql_url: String,
    pub exec_url: String,
    pub state: Arc<RailwayState>,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRailway {
    fn drop(&mut self) {
        self.server.abort();
        if let Ok(sandboxes) = self.state.sandboxes.try_lock() {
            for sandbox in sandboxes.values() {
                sandbox.machine.kill_all();
            }
        }
    }
}

pub struct RailwayState {
    dir: PathBuf,
    images: Images,
    pub sandboxes: Mutex<HashMap<String, Sandbox>>,
    /// Shell tokens issued, with the sandbox each one opens.
    tokens: Mutex<HashMap<String, String>>,
    /// Template builds by id: (status, instructions).
    templates: Mutex<HashMap<String, String>>,
    /// Checkpoint names → image ids.
    checkpoints: Mutex<HashMap<String, String>>,
    /// Checkpoint ids → names (`sandboxCheckpointDelete` takes the id).
    checkpoint_ids: Mutex<HashMap<String, String>>,
    pub operations: Mutex<Vec<String>>,
    /// How long a new sandbox stays `CREATING` before it runs.
    pub boot_time: Mutex<std::time::Duration>,
}

pub struct Sandbox {
    pub machine: Machine,
    pub env: BTreeMap<String, String>,
    pub status: String,
    pub network: String,
    /// When a `CREATING` sandbox starts running.
    pub running_at: std::time::Instant,
    /// The checkpoint it booted from (`template: {name}`), if any.
    pub checkpoint: Option<String>,
}

impl RailwayState {
    /// Whether checkpoint `name` exists (was created and not deleted).
    pub async fn has_checkpoint(&self, name: &str) -> bool {
        self.checkpoints.lock().await.contains_key(name)
    }
}

impl FakeRailway {
    /// The fake, or `None` when the run opted out of the checks against Railway's SDK
    /// (`RAILWAY_SDK_TESTS=skip`; printed with `test`'s name).
    pub async fn start(test: &str) -> Option<FakeRailway> {
        if let official::Loaded::Skipped = official::load() {
            eprintln!(
                "{test}: SKIPPED (RAILWAY_SDK_TESTS=skip: no Railway SDK operations in this run)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        let state = Arc::new(RailwayState {
            dir: dir.path().to_path_buf(),
            images: Images::new(dir.path().join("images")),
            sandboxes: Mutex::default(),
            tokens: Mutex::default(),
            templates: Mutex::default(),
            checkpoints: Mutex::default(),
            checkpoint_ids: Mutex::default(),
            operations: Mutex::default(),
            boot_time: Mutex::default(),
        });
        let app = Router::new()
            .route("/graphql/v2", post(graphql))
            .route("/ws/exec", any(exec))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Some(FakeRailway {
            graphql_url: format!("http://{address}/graphql/v2"),
            exec_url: format!("ws://{address}/ws/exec"),
            state,
            _dir: dir,
            server,
        })
    }
}

fn gql_error(message: impl Into<String>) -> Response {
    axum::Json(json!({"errors": [{"message": message.into()}], "data": null})).into_response()
}

fn data(value: Value) -> Response {
    axum::Json(json!({ "data": value })).into_response()
}

/// `(kind, root field)` of a GraphQL document: `("mutation", "sandboxCreate")`.
fn operation(query: &str) -> (String, String) {
    let kind = query
        .split_whitespace()
        .next()
        .unwrap_or("query")
        .to_string();
    let after = query.split_once('{').map(|(_, rest)| rest).unwrap_or("");
    let field: String = after
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (kind, field)
}

async fn graphql(
    State(state): State<Arc<RailwayState>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return gql_error("Not Authorized");
    }
    let query = body["query"].as_str().unwrap_or_default();
    if let Err(why) = official::get().check(query) {
        return gql_error(why);
    }
    let variables = &body["variables"];
    let (kind, field) = operation(query);
    state.operations.lock().await.push(field.clone());
    let environment = variables["environmentId"]
        .as_str()
        .or(variables["input"]["environmentId"].as_str());
    if field != "generateShellToken" && environment != Some(ENVIRONMENT_ID) {
        return gql_error("Environment not found");
    }
    match (kind.as_str(), field.as_str()) {
        ("mutation", "sandboxCreate") => sandbox_create(&state, &variables["input"]).await,
        ("query", "sandbox") => {
            let id = variables["id"].as_str().unwrap_or_default();
            match state.sandboxes.lock().await.get(id) {
                Some(sandbox) => {
                    let status = if sandbox.status == "RUNNING"
                        && std::time::Instant::now() < sandbox.running_at
                    {
                        "CREATING"
                    } else {
                        sandbox.status.as_str()
                    };
                    data(json!({"sandbox": {"id": id, "status": status}}))
                }
                None => gql_error("Sandbox not found"),
            }
        }
        ("mutation", "sandboxDestroy") => {
            let id = variables["id"].as_str().unwrap_or_default();
            let mut sandboxes = state.sandboxes.lock().await;
            match sandboxes.get_mut(id) {
                Some(sandbox) => {
                    sandbox.machine.kill_all();
                    sandbox.status = "DESTROYED".into();
                    data(json!({"sandboxDestroy": {"id": id, "status": "DESTROYED"}}))
                }
                None => gql_error("Sandbox not found"),
            }
        }
        ("mutation", "sandboxHeartbeat") => {
            let id = variables["id"].as_str().unwrap_or_default();
            match state.sandboxes.lock().await.get(id) {
                Some(sandbox) => data(
                    json!({"sandboxHeartbeat": {"id": id, "status": sandbox.status, "idleTimeoutMinutes": 120}}),
                ),
                None => gql_error("Sandbox not found"),
            }
        }
        ("mutation", "generateShellToken") => {
            let input = &variables["input"];
            let id = input["instanceId"].as_str().unwrap_or_default().to_string();
            if input["scope"] != "shell" || input["kind"] != "sandbox" {
                return gql_error("scope must be shell and kind sandbox");
            }
            if !state.sandboxes.lock().await.contains_key(&id) {
                return gql_error("Sandbox not found");
            }
            let token = format!("jwt.{}.{}", next_id("shell"), uuid_like());
            state.tokens.lock().await.insert(token.clone(), id);
            data(json!({"generateShellToken": token}))
        }
        ("mutation", "sandboxTemplateBuild") => {
            let input = &variables["input"];
            let Some(instructions) = input["instructions"].as_array() else {
                return gql_error("instructions are required");
            };
            let mut lines = vec!["FROM railway-base".to_string()];
            lines.extend(
                instructions
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|line| format!("RUN {line}")),
            );
            let id = next_id("tpl");
            let status = match state.images.build(&template_key(input), &lines, None).await {
                Ok(_) => "READY",
                Err(_) => "FAILED",
            };
            state
                .templates
                .lock()
                .await
                .insert(id.clone(), status.into());
            data(
                json!({"sandboxTemplateBuild": {"id": id, "status": "PENDING", "environmentId": ENVIRONMENT_ID}}),
            )
        }
        ("query", "sandboxTemplateBuild") => {
            let id = variables["id"].as_str().unwrap_or_default();
            match state.templates.lock().await.get(id) {
                Some(status) => data(
                    json!({"sandboxTemplateBuild": {"id": id, "status": status, "environmentId": ENVIRONMENT_ID}}),
                ),
                None => gql_error("Template build not found"),
            }
        }
        ("mutation", "sandboxCheckpointCreate") => {
            let id = variables["sandboxId"].as_str().unwrap_or_default();
            let name = variables["name"].as_str().unwrap_or_default().to_string();
            let machine = match state.sandboxes.lock().await.get(id) {
                Some(sandbox) => sandbox.machine.clone(),
                None => return gql_error("Sandbox not found"),
            };
            let image = next_id("checkpoint");
            if let Err(why) = state.images.snapshot(&machine, &image).await {
                return gql_error(why.to_string());
            }
            if state.checkpoints.lock().await.contains_key(&name) {
                return gql_error(format!("Checkpoint name {name} is already in use"));
            }
            state.checkpoints.lock().await.insert(name.clone(), image);
            let checkpoint_id = next_id("ck");
            state
                .checkpoint_ids
                .lock()
                .await
                .insert(checkpoint_id.clone(), name.clone());
            data(
                json!({"sandboxCheckpointCreate": {"id": checkpoint_id, "key": name, "createdAt": "2026-01-01T00:00:00Z", "environmentId": ENVIRONMENT_ID}}),
            )
        }
        ("mutation", "sandboxCheckpointDelete") => {
            let id = variables["id"].as_str().unwrap_or_default();
            let Some(name) = state.checkpoint_ids.lock().await.remove(id) else {
                return gql_error("Checkpoint not found");
            };
            if let Some(image) = state.checkpoints.lock().await.remove(&name) {
                state.images.remove(&image).await;
            }
            data(json!({"sandboxCheckpointDelete": true}))
        }
        (kind, field) => gql_error(format!("Cannot query field \"{field}\" on type \"{kind}\"")),
    }
}

/// Each kind of token in its own header only; a request carrying both is refused
/// too, so a client cannot pass by sending everything.
fn authorized(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let bearer = header("authorization").and_then(|value| value.strip_prefix("Bearer "));
    match (header("project-access-token"), bearer) {
        (Some(project), None) => project == PROJECT_TOKEN,
        (None, Some(account)) => account == ACCOUNT_TOKEN,
        _ => false,
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Templates are content-addressed by their recipe.
fn template_key(input: &Value) -> String {
    format!(
        "template:{}:{}",
        input["instructions"], input["baseImageDigest"]
    )
}

async fn sandbox_create(state: &RailwayState, input: &Value) -> Response {
    let checkpoint = input["template"]["name"].as_str().map(String::from);
    let image = if let Some(source) = input["sourceSandboxId"].as_str() {
        let machine = match state.sandboxes.lock().await.get(source) {
            Some(sandbox) if sandbox.status == "RUNNING" => sandbox.machine.clone(),
            _ => return gql_error("Source sandbox not found"),
        };
        let image = next_id("fork");
        if let Err(why) = state.images.snapshot(&machine, &image).await {
            return gql_error(why.to_string());
        }
        state.images.get(&image).await
    } else if let Some(name) = input["template"]["name"].as_str() {
        let Some(image) = state.checkpoints.lock().await.get(name).cloned() else {
            return gql_error("Checkpoint not found");
        };
        state.images.get(&image).await
    } else if input["template"]["instructions"].is_array() {
        match state.images.get(&template_key(&input["template"])).await {
            Some(image) => Some(image),
            None => return gql_error("Template has not been built"),
        }
    } else {
        None
    };
    let network = input["networkIsolation"].as_str().unwrap_or("ISOLATED");
    if network != "ISOLATED" && network != "PRIVATE" {
        return gql_error(format!("invalid networkIsolation {network}"));
    }
    let machine = match Machine::create(&state.dir.join("sandboxes"), image.as_deref()).await {
        Ok(machine) => machine,
        Err(why) => return gql_error(why.to_string()),
    };
    let env = input["variables"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let id = next_id("sbx");
    state.sandboxes.lock().await.insert(
        id.clone(),
        Sandbox {
            machine,
            env,
            status: "RUNNING".into(),
            network: network.into(),
            running_at: std::time::Instant::now() + *state.boot_time.lock().await,
            checkpoint,
        },
    );
    data(json!({"sandboxCreate": {
        "id": id, "status": "CREATING", "region": "fake", "environmentId": ENVIRONMENT_ID,
        "createdAt": "2026-01-01T00:00:00Z", "idleTimeoutMinutes": input["idleTimeoutMinutes"],
    }}))
}

async fn exec(
    State(state): State<Arc<RailwayState>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocols: Vec<String> = headers
        .get("sec-websocket-protocol")
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(',')
                .map(|part| part.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    if protocols.first().map(String::as_str) != Some("railway-shell") {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "missing railway-shell subprotocol",
        )
            .into_response();
    }
    let sandbox_id = match protocols.get(1) {
        Some(token) => state.tokens.lock().await.get(token).cloned(),
        None => None,
    };
    let Some(sandbox_id) = sandbox_id else {
        return (axum::http::StatusCode::UNAUTHORIZED, "invalid shell token").into_response();
    };
    let (machine, env) = match state.sandboxes.lock().await.get(&sandbox_id) {
        Some(sandbox) if sandbox.status == "RUNNING" => {
            (sandbox.machine.clone(), sandbox.env.clone())
        }
        _ => return (axum::http::StatusCode::NOT_FOUND, "sandbox is not running").into_response(),
    };
    upgrade
        .protocols(["railway-shell"])
        .on_upgrade(move |socket| bridge(socket, machine, env))
}

async fn bridge(socket: WebSocket, machine: Machine, env: BTreeMap<String, String>) {
    let (mut sink, mut stream) = socket.split();
    // The first frame starts the command.
    let command = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if frame["type"] == "init_exec"
                    && let Some(command) = frame["data"]["command"].as_str()
                {
                    break command.to_string();
                }
            }
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    let mut running = match machine.spawn(&["sh".into(), "-c".into(), command], None, &env) {
        Ok(running) => running,
        Err(_) => {
            let _ = sink
                .send(Message::text(
                    json!({"type": "exit", "data": {"exit_code": 127}}).to_string(),
                ))
                .await;
            return;
        }
    };
    let pid = running.pid;
    let mut stdin = running.stdin.take();
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Binary(data) if data.first() == Some(&0x02) => {
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&data[1..]).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    match frame["type"].as_str() {
                        Some("stdin_close") => stdin = None,
                        Some("signal") => {
                            let signal = match frame["data"]["signal"].as_str() {
                                Some("KILL") => nix::sys::signal::Signal::SIGKILL,
                                Some("INT") => nix::sys::signal::Signal::SIGINT,
                                _ => nix::sys::signal::Signal::SIGTERM,
                            };
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid as i32),
                                signal,
                            );
                        }
                        _ => {}
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    while let Some(output) = running.output.recv().await {
        let frame = match output {
            Output::Stdout(bytes) => [vec![0x01], bytes].concat(),
            Output::Stderr(bytes) => [vec![0x03], bytes].concat(),
            Output::Exit(code) => {
                let _ = sink
                    .send(Message::text(
                        json!({"type": "exit", "data": {"exit_code": code}}).to_string(),
                    ))
                    .await;
                let _ = sink.close().await;
                return;
            }
        };
        if sink.send(Message::binary(frame)).await.is_err() {
            return;
        }
    }
}
