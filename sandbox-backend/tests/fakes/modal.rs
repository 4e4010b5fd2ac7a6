//! A fake Modal control plane: gRPC (`modal.client.ModalClient`) over HTTP/2 without
//! TLS, with hand-framed messages (5-byte prefix, protobuf, `grpc-status` trailers).
//! It checks `x-modal-token-id` / `x-modal-token-secret` on every call and answers
//! `UNAUTHENTICATED` otherwise, as Modal does.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Response};
use axum::routing::post;
use prost::Message;
use sandbox_backend::providers::modal::proto;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Notify};

use super::{Images, Machine, Output, next_id};

pub const TOKEN_ID: &str = "ak-fake";
pub const TOKEN_SECRET: &str = "as-fake-secret";

pub struct FakeModal {
    pub url: String,
    pub state: Arc<ModalState>,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeModal {
    fn drop(&mut self) {
        self.server.abort();
        if let Ok(sandboxes) = self.state.sandboxes.try_lock() {
            for sandbox in sandboxes.values() {
                sandbox.machine.kill_all();
            }
        }
    }
}

pub struct ModalState {
    dir: PathBuf,
    images: Images,
    apps: Mutex<HashMap<String, String>>,
    pub sandboxes: Mutex<HashMap<String, FakeSandbox>>,
    execs: Mutex<HashMap<String, Arc<FakeExec>>>,
    /// Every method called, in order (tests look at it).
    pub calls: Mutex<Vec<String>>,
}

pub struct FakeSandbox {
    pub machine: Machine,
    pub task_id: String,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<u32>,
    pub ended: Option<i32>,
    /// For `SandboxList`: its app, its tags and when it was created (seconds, as
    /// Modal's `created_at`).
    pub app_id: String,
    pub tags: Vec<proto::SandboxTag>,
    pub created_at: f64,
}

/// How many sandboxes one `SandboxList` page holds: small, so listings page.
const LIST_PAGE: usize = 2;

/// An exec's output as Modal keeps it: numbered batches, dropped once both streams'
/// readers are past them, and a bound on what is held (the command waits).
#[derive(Default)]
struct Items {
    list: std::collections::VecDeque<(i32, Vec<u8>)>,
    /// The index of `list[0]`.
    base: usize,
    exit: Option<i32>,
    /// How far the reader of each file descriptor got.
    cursors: HashMap<i32, usize>,
}

/// Output items held before the command has to wait for readers.
const HELD_ITEMS: usize = 1024;
/// The most bytes sent in one batch.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

struct FakeExec {
    items: Mutex<Items>,
    changed: Notify,
    stdin: Mutex<Option<tokio::process::ChildStdin>>,
    next_input: Mutex<u64>,
}

impl FakeModal {
    pub async fn start() -> FakeModal {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        let state = Arc::new(ModalState {
            dir: dir.path().to_path_buf(),
            images: Images::new(dir.path().join("images")),
            apps: Mutex::default(),
            sandboxes: Mutex::default(),
            execs: Mutex::default(),
            calls: Mutex::default(),
        });
        let app = Router::new()
            .route("/modal.client.ModalClient/{method}", post(call))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeModal {
            url,
            state,
            _dir: dir,
            server,
        }
    }
}

/// A gRPC status (code and message).
struct Status(i32, String);

const INVALID_ARGUMENT: i32 = 3;
const NOT_FOUND: i32 = 5;
const FAILED_PRECONDITION: i32 = 9;
const UNIMPLEMENTED: i32 = 12;
const INTERNAL: i32 = 13;
const UNAUTHENTICATED: i32 = 16;

fn decode<M: Message + Default>(body: &[u8]) -> Result<M, Status> {
    if body.len() < 5 || body[0] != 0 {
        return Err(Status(
            INTERNAL,
            "expected one uncompressed gRPC message".into(),
        ));
    }
    let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let message = body
        .get(5..5 + length)
        .ok_or_else(|| Status(INTERNAL, "truncated gRPC message".into()))?;
    M::decode(message).map_err(|error| Status(INVALID_ARGUMENT, error.to_string()))
}

fn frame<M: Message>(message: &M) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut framed = Vec::with_capacity(5 + encoded.len());
    framed.push(0);
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    Bytes::from(framed)
}

fn grpc_response(
    frames: futures::stream::BoxStream<'static, Result<Bytes, Status>>,
) -> Response<Body> {
    use futures::StreamExt;
    use http_body::Frame;
    let body = frames
        .map(Some)
        .chain(futures::stream::once(async { None }))
        .scan(false, |done, item| {
            let out = if *done {
                None
            } else {
                Some(match item {
                    Some(Ok(bytes)) => Frame::data(bytes),
                    Some(Err(Status(code, message))) => {
                        *done = true;
                        Frame::trailers(trailers(code, &message))
                    }
                    None => {
                        *done = true;
                        Frame::trailers(trailers(0, ""))
                    }
                })
            };
            futures::future::ready(out.map(Ok::<_, Infallible>))
        });
    Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(http_body_util::StreamBody::new(body)))
        .unwrap()
}

fn trailers(code: i32, message: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty() {
        let clean: String = message
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        map.insert("grpc-message", HeaderValue::from_str(&clean).unwrap());
    }
    map
}

fn unary<M: Message + 'static>(result: Result<M, Status>) -> Response<Body> {
    let item = result.map(|message| frame(&message));
    grpc_response(Box::pin(futures::stream::once(async move { item })))
}

async fn call(
    State(state): State<Arc<ModalState>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    state.calls.lock().await.push(method.clone());
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if header("x-modal-token-id") != Some(TOKEN_ID)
        || header("x-modal-token-secret") != Some(TOKEN_SECRET)
    {
        return unary::<proto::Empty>(Err(Status(
            UNAUTHENTICATED,
            "Token ID or secret is invalid".into(),
        )));
    }
    if header("content-type").is_none_or(|value| !value.starts_with("application/grpc")) {
        return unary::<proto::Empty>(Err(Status(INTERNAL, "not a gRPC request".into())));
    }
    match method.as_str() {
        "AppGetOrCreate" => unary(app_get_or_create(&state, &body).await),
        "ImageGetOrCreate" => unary(image_get_or_create(&state, &body).await),
        "SandboxCreate" => unary(sandbox_create(&state, &body).await),
        "SandboxGetTaskId" => unary(sandbox_get_task_id(&state, &body).await),
        "SandboxWait" => unary(sandbox_wait(&state, &body).await),
        "SandboxList" => unary(sandbox_list(&state, &body).await),
        "SandboxTagsSet" => unary(sandbox_tags_set(&state, &body).await),
        "SandboxTagsGet" => unary(sandbox_tags_get(&state, &body).await),
        "SandboxTerminate" => unary(sandbox_terminate(&state, &body).await),
        "SandboxSnapshotFs" => unary(sandbox_snapshot_fs(&state, &body).await),
        "SandboxGetTunnels" => unary(sandbox_get_tunnels(&state, &body).await),
        "ContainerExec" => unary(container_exec(&state, &body).await),
        "ContainerExecPutInput" => unary(container_exec_put_input(&state, &body).await),
        "ContainerExecWait" => unary(container_exec_wait(&state, &body).await),
        "ContainerExecGetOutput" => container_exec_get_output(&state, &body).await,
        other => unary::<proto::Empty>(Err(Status(
            UNIMPLEMENTED,
            format!("the fake does not implement {other}"),
        ))),
    }
}

async fn app_get_or_create(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::AppGetOrCreateResponse, Status> {
    let request: proto::AppGetOrCreateRequest = decode(body)?;
    let mut apps = state.apps.lock().await;
    let app_id = apps
        .entry(request.app_name)
        .or_insert_with(|| next_id("ap"))
        .clone();
    Ok(proto::AppGetOrCreateResponse { app_id })
}

async fn image_get_or_create(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::ImageGetOrCreateResponse, Status> {
    let request: proto::ImageGetOrCreateRequest = decode(body)?;
    let image = request
        .image
        .ok_or_else(|| Status(INVALID_ARGUMENT, "image is required".into()))?;
    if request.builder_version.is_empty() {
        return Err(Status(
            INVALID_ARGUMENT,
            "builder_version is required".into(),
        ));
    }
    let image_id = next_id("im");
    let base = image.base_images.first().map(|base| base.image_id.clone());
    let result = match state
        .images
        .build(&image_id, &image.dockerfile_commands, base.as_deref())
        .await
    {
        Ok(log) => proto::GenericResult {
            status: proto::GENERIC_STATUS_SUCCESS,
            exception: log,
            exitcode: 0,
        },
        Err(why) => proto::GenericResult {
            status: proto::GENERIC_STATUS_FAILURE,
            exception: why,
            exitcode: 1,
        },
    };
    Ok(proto::ImageGetOrCreateResponse {
        image_id,
        result: Some(result),
    })
}

async fn sandbox_create(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::SandboxCreateResponse, Status> {
    let request: proto::SandboxCreateRequest = decode(body)?;
    if !state
        .apps
        .lock()
        .await
        .values()
        .any(|id| *id == request.app_id)
    {
        return Err(Status(
            NOT_FOUND,
            format!("app {} not found", request.app_id),
        ));
    }
    let definition = request
        .definition
        .ok_or_else(|| Status(INVALID_ARGUMENT, "definition is required".into()))?;
    let image = state
        .images
        .get(&definition.image_id)
        .await
        .ok_or_else(|| {
            Status(
                NOT_FOUND,
                format!("image {} not found", definition.image_id),
            )
        })?;
    let machine = Machine::create(&state.dir.join("sandboxes"), Some(&image))
        .await
        .map_err(|error| Status(INTERNAL, error.to_string()))?;
    let sandbox_id = next_id("sb");
    let env = definition
        .environment_variables
        .map(|map| map.contents.into_iter().collect())
        .unwrap_or_default();
    state.sandboxes.lock().await.insert(
        sandbox_id.clone(),
        FakeSandbox {
            machine,
            task_id: next_id("ta"),
            env,
            ports: definition
                .open_ports
                .map(|ports| ports.ports.iter().map(|port| port.port).collect())
                .unwrap_or_default(),
            ended: None,
            app_id: request.app_id,
            tags: request.tags,
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs_f64())
                .unwrap_or_default(),
        },
    );
    Ok(proto::SandboxCreateResponse { sandbox_id })
}

async fn sandbox_get_task_id(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::SandboxGetTaskIdResponse, Status> {
    let request: proto::SandboxGetTaskIdRequest = decode(body)?;
    let sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get(&request.sandbox_id)
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    Ok(proto::SandboxGetTaskIdResponse {
        task_id: sandbox.ended.is_none().then(|| sandbox.task_id.clone()),
        task_result: sandbox.ended.map(ended_result),
    })
}

fn ended_result(status: i32) -> proto::GenericResult {
    proto::GenericResult {
        status,
        exception: String::new(),
        exitcode: 0,
    }
}

async fn sandbox_wait(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::SandboxWaitResponse, Status> {
    let request: proto::SandboxWaitRequest = decode(body)?;
    let sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get(&request.sandbox_id)
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    Ok(proto::SandboxWaitResponse {
        result: sandbox.ended.map(ended_result),
    })
}

/// Running (unless `include_finished`) sandboxes of the app carrying every requested
/// tag, newest first, those created before `before_timestamp` when it is set, a page
/// at a time.
async fn sandbox_list(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::SandboxListResponse, Status> {
    let request: proto::SandboxListRequest = decode(body)?;
    let sandboxes = state.sandboxes.lock().await;
    let mut listed: Vec<proto::SandboxInfo> = sandboxes
        .iter()
        .filter(|(_, sandbox)| request.app_id.is_empty() || sandbox.app_id == request.app_id)
        .filter(|(_, sandbox)| request.include_finished || sandbox.ended.is_none())
        .filter(|(_, sandbox)| request.tags.iter().all(|tag| sandbox.tags.contains(tag)))
        .filter(|(_, sandbox)| {
            request.before_timestamp == 0.0 || sandbox.created_at < request.before_timestamp
        })
        .map(|(id, sandbox)| proto::SandboxInfo {
            id: id.clone(),
            created_at: sandbox.created_at,
            app_id: sandbox.app_id.clone(),
            tags: sandbox.tags.clone(),
        })
        .collect();
    listed.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
    listed.truncate(LIST_PAGE);
    Ok(proto::SandboxListResponse { sandboxes: listed })
}

/// Replaces the sandbox's tags (the stricter reading of Modal's "sets tags": a caller
/// that forgot one loses it here).
async fn sandbox_tags_set(state: &ModalState, body: &[u8]) -> Result<proto::Empty, Status> {
    let request: proto::SandboxTagsSetRequest = decode(body)?;
    let mut sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get_mut(&request.sandbox_id)
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    sandbox.tags = request.tags;
    Ok(proto::Empty {})
}

async fn sandbox_tags_get(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::SandboxTagsGetResponse, Status> {
    let request: proto::SandboxTagsGetRequest = decode(body)?;
    let sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get(&request.sandbox_id)
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    Ok(proto::SandboxTagsGetResponse {
        tags: sandbox.tags.clone(),
    })
}

async fn sandbox_terminate(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::SandboxTerminateResponse, Status> {
    let request: proto::SandboxTerminateRequest = decode(body)?;
    let mut sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get_mut(&request.sandbox_id)
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    let existing = sandbox.ended.map(ended_result);
    if sandbox.ended.is_none() {
        sandbox.machine.kill_all();
        sandbox.ended = Some(proto::GENERIC_STATUS_TERMINATED);
    }
    Ok(proto::SandboxTerminateResponse {
        existing_result: existing,
    })
}

async fn sandbox_snapshot_fs(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::SandboxSnapshotFsResponse, Status> {
    let request: proto::SandboxSnapshotFsRequest = decode(body)?;
    let machine = {
        let sandboxes = state.sandboxes.lock().await;
        let sandbox = sandboxes
            .get(&request.sandbox_id)
            .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
        if sandbox.ended.is_some() {
            return Err(Status(FAILED_PRECONDITION, "sandbox has finished".into()));
        }
        sandbox.machine.clone()
    };
    let image_id = next_id("im");
    state
        .images
        .snapshot(&machine, &image_id)
        .await
        .map_err(|error| Status(INTERNAL, error.to_string()))?;
    Ok(proto::SandboxSnapshotFsResponse {
        image_id,
        result: Some(ended_result(proto::GENERIC_STATUS_SUCCESS)),
    })
}

async fn sandbox_get_tunnels(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::SandboxGetTunnelsResponse, Status> {
    let request: proto::SandboxGetTunnelsRequest = decode(body)?;
    let sandboxes = state.sandboxes.lock().await;
    let sandbox = sandboxes
        .get(&request.sandbox_id)
        .ok_or_else(|| Status(NOT_FOUND, "sandbox not found".into()))?;
    Ok(proto::SandboxGetTunnelsResponse {
        result: Some(ended_result(proto::GENERIC_STATUS_SUCCESS)),
        tunnels: sandbox
            .ports
            .iter()
            .map(|port| proto::TunnelData {
                host: format!("{}-{port}.modal.fake", request.sandbox_id),
                port: 443,
                container_port: *port,
            })
            .collect(),
    })
}

async fn container_exec(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::ContainerExecResponse, Status> {
    let request: proto::ContainerExecRequest = decode(body)?;
    let (machine, env) = {
        let sandboxes = state.sandboxes.lock().await;
        let sandbox = sandboxes
            .values()
            .find(|sandbox| sandbox.task_id == request.task_id)
            .ok_or_else(|| Status(NOT_FOUND, format!("task {} not found", request.task_id)))?;
        if sandbox.ended.is_some() {
            return Err(Status(
                FAILED_PRECONDITION,
                "the sandbox has finished".into(),
            ));
        }
        (sandbox.machine.clone(), sandbox.env.clone())
    };
    let mut running = machine
        .spawn(&request.command, request.workdir.as_deref(), &env)
        .map_err(|error| Status(INTERNAL, format!("cannot start the command: {error}")))?;
    let exec = Arc::new(FakeExec {
        items: Mutex::new(Items::default()),
        changed: Notify::new(),
        stdin: Mutex::new(running.stdin.take()),
        next_input: Mutex::new(1),
    });
    let exec_id = next_id("ex");
    state
        .execs
        .lock()
        .await
        .insert(exec_id.clone(), exec.clone());
    if request.timeout_secs > 0 {
        // Modal ends an exec that outlives its timeout.
        let pid = running.pid as i32;
        let timeout = Duration::from_secs(u64::from(request.timeout_secs));
        let watched = exec.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            // Only a command still running: its process group id is still its own.
            if watched.items.lock().await.exit.is_some() {
                return;
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        });
    }
    tokio::spawn(async move {
        while let Some(output) = running.output.recv().await {
            loop {
                let drained = exec.changed.notified();
                if exec.items.lock().await.list.len() < HELD_ITEMS {
                    break;
                }
                drained.await;
            }
            let mut items = exec.items.lock().await;
            match output {
                Output::Stdout(bytes) => {
                    items.list.push_back((proto::FILE_DESCRIPTOR_STDOUT, bytes))
                }
                Output::Stderr(bytes) => {
                    items.list.push_back((proto::FILE_DESCRIPTOR_STDERR, bytes))
                }
                Output::Exit(code) => items.exit = Some(code),
            }
            drop(items);
            exec.changed.notify_waiters();
        }
    });
    Ok(proto::ContainerExecResponse { exec_id })
}

async fn find_exec(state: &ModalState, exec_id: &str) -> Result<Arc<FakeExec>, Status> {
    state
        .execs
        .lock()
        .await
        .get(exec_id)
        .cloned()
        .ok_or_else(|| Status(NOT_FOUND, format!("exec {exec_id} not found")))
}

async fn container_exec_put_input(state: &ModalState, body: &[u8]) -> Result<proto::Empty, Status> {
    let request: proto::ContainerExecPutInputRequest = decode(body)?;
    let exec = find_exec(state, &request.exec_id).await?;
    let input = request
        .input
        .ok_or_else(|| Status(INVALID_ARGUMENT, "input is required".into()))?;
    let mut next = exec.next_input.lock().await;
    if input.message_index < *next {
        return Ok(proto::Empty {}); // a retried message: already written
    }
    *next = input.message_index + 1;
    let mut stdin = exec.stdin.lock().await;
    if let Some(pipe) = stdin.as_mut()
        && !input.message.is_empty()
        && pipe.write_all(&input.message).await.is_err()
    {
        *stdin = None;
    }
    if input.eof {
        *stdin = None;
    }
    Ok(proto::Empty {})
}

async fn container_exec_wait(
    state: &ModalState,
    body: &[u8],
) -> Result<proto::ContainerExecWaitResponse, Status> {
    let request: proto::ContainerExecWaitRequest = decode(body)?;
    let exec = find_exec(state, &request.exec_id).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f32(request.timeout.max(0.0));
    loop {
        let changed = exec.changed.notified();
        if let Some(code) = exec.items.lock().await.exit {
            return Ok(proto::ContainerExecWaitResponse {
                exit_code: Some(code),
                completed: true,
            });
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return Ok(proto::ContainerExecWaitResponse {
                exit_code: None,
                completed: false,
            });
        }
    }
}

async fn container_exec_get_output(state: &ModalState, body: &[u8]) -> Response<Body> {
    let request: proto::ContainerExecGetOutputRequest = match decode(body) {
        Ok(request) => request,
        Err(status) => return unary::<proto::Empty>(Err(status)),
    };
    let exec = match find_exec(state, &request.exec_id).await {
        Ok(exec) => exec,
        Err(status) => return unary::<proto::Empty>(Err(status)),
    };
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs_f32(request.timeout.clamp(0.0, 60.0));
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, Status>>(16);
    tokio::spawn(async move {
        let mut sent = request.last_batch_index as usize;
        loop {
            let changed = exec.changed.notified();
            let (batch, exit) = {
                let mut items = exec.items.lock().await;
                let base = items.base;
                let start = sent.max(base);
                let mut bytes = 0;
                let mut batch = Vec::new();
                let mut next = start;
                for (fd, chunk) in items.list.iter().skip(start - base) {
                    if bytes >= BATCH_BYTES {
                        break;
                    }
                    next += 1;
                    if request.file_descriptor == 0 || *fd == request.file_descriptor {
                        bytes += chunk.len();
                        batch.push(proto::RuntimeOutputMessage {
                            file_descriptor: *fd,
                            message: String::new(),
                            message_bytes: chunk.clone(),
                        });
                    }
                }
                sent = next;
                let all_read = next == base + items.list.len();
                items.cursors.insert(request.file_descriptor, next);
                // Drop what every reader has seen.
                let low = [proto::FILE_DESCRIPTOR_STDOUT, proto::FILE_DESCRIPTOR_STDERR]
                    .iter()
                    .map(|fd| items.cursors.get(fd).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(0)
                    .max(items.cursors.get(&0).copied().unwrap_or(0));
                while items.base < low && items.list.pop_front().is_some() {
                    items.base += 1;
                }
                (batch, items.exit.filter(|_| all_read))
            };
            exec.changed.notify_waiters();
            if !batch.is_empty() || exit.is_some() {
                let message = proto::RuntimeOutputBatch {
                    items: batch,
                    batch_index: sent as u64,
                    exit_code: exit,
                };
                if sender.send(Ok(frame(&message))).await.is_err() || exit.is_some() {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return; // the long poll ends; the client resumes
            }
            // Let output gather into a batch, as Modal does, rather than one message
            // per pipe read.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    grpc_response(Box::pin(stream))
}
