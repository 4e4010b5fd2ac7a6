//! A fake Modal control plane: gRPC (`modal.client.ModalClient`) over HTTP/2 without
//! TLS, with hand-framed messages (5-byte prefix, protobuf, `grpc-status` trailers).
//!
//! Its messages are Modal's own: every request is decoded, and every reply built,
//! through the official `api.proto` ([`official`]), never through the provider's
//! `prost` structs, so a wrong field number, wire type or method path on the
//! provider's side fails here. It checks the metadata the official clients send (the
//! token pair, a client type `api.proto` defines, a client version, and on every call
//! but `AuthTokenGet` an auth token it issued and that has not expired) and answers
//! `UNAUTHENTICATED` / `INVALID_ARGUMENT` otherwise.

pub mod exec;
pub mod official;
mod sandboxes;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Response};
use axum::routing::post;
use tokio::sync::Mutex;

use self::official::Msg;
use super::{Images, Machine};

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
    /// Auth tokens issued by `AuthTokenGet`, with their expiry (seconds since the epoch).
    auth_tokens: Mutex<HashMap<String, u64>>,
    /// Secrets by id: the environment a sandbox naming them gets.
    secrets: Mutex<HashMap<String, BTreeMap<String, String>>>,
    pub sandboxes: Mutex<HashMap<String, FakeSandbox>>,
    execs: Mutex<HashMap<String, Arc<exec::FakeExec>>>,
    /// Every method called, in order (tests look at it).
    pub calls: Mutex<Vec<String>>,
    /// The metadata of every call, in order (tests look at it).
    pub headers: Mutex<Vec<HeaderMap>>,
    /// How many `SandboxGetTaskId` answers say "not scheduled yet" before the task id
    /// is given (Modal's long poll ending before the sandbox is up).
    pub task_id_delays: std::sync::atomic::AtomicU32,
    /// How many `SandboxSnapshotFs` calls fail (with a failed `GenericResult`, as
    /// Modal reports a snapshot it could not take) before they work again.
    pub snapshot_failures: std::sync::atomic::AtomicU32,
    /// How many `SandboxCreate` calls fail (`UNAVAILABLE`) before they work again.
    pub create_failures: std::sync::atomic::AtomicU32,
}

pub struct FakeSandbox {
    pub machine: Machine,
    pub task_id: String,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<u32>,
    pub ended: Option<i32>,
    /// The image it was created from (`Sandbox.image_id`).
    pub image_id: String,
    /// For `SandboxList`: its app, its tags (name, value) and when it was created
    /// (seconds, as Modal's `created_at`).
    pub app_id: String,
    pub tags: Vec<(String, String)>,
    pub created_at: f64,
}

impl ModalState {
    /// Whether image `id` exists (was built or snapshotted and not deleted).
    pub async fn has_image(&self, id: &str) -> bool {
        self.images.get(id).await.is_some()
    }
}

impl FakeModal {
    /// The fake, or `None` when the run opted out of the checks against Modal's
    /// official definitions (`MODAL_PROTO_TESTS=skip`; printed with `test`'s name).
    pub async fn start(test: &str) -> Option<FakeModal> {
        if let official::Loaded::Skipped = official::load() {
            eprintln!(
                "{test}: SKIPPED (MODAL_PROTO_TESTS=skip: no official api.proto in this run)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        let state = Arc::new(ModalState {
            dir: dir.path().to_path_buf(),
            images: Images::new(dir.path().join("images")),
            apps: Mutex::default(),
            auth_tokens: Mutex::default(),
            secrets: Mutex::default(),
            sandboxes: Mutex::default(),
            execs: Mutex::default(),
            calls: Mutex::default(),
            headers: Mutex::default(),
            task_id_delays: Default::default(),
            snapshot_failures: Default::default(),
            create_failures: Default::default(),
        });
        let app = Router::new()
            .route("/{service}/{method}", post(call))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Some(FakeModal {
            url,
            state,
            _dir: dir,
            server,
        })
    }
}

/// A gRPC status (code and message).
pub struct Status(pub i32, pub String);

pub const INVALID_ARGUMENT: i32 = 3;
pub const NOT_FOUND: i32 = 5;
pub const FAILED_PRECONDITION: i32 = 9;
pub const UNIMPLEMENTED: i32 = 12;
pub const UNAVAILABLE: i32 = 14;
pub const INTERNAL: i32 = 13;
pub const UNAUTHENTICATED: i32 = 16;

/// The one message of a gRPC request body.
fn unframe(body: &[u8]) -> Result<&[u8], Status> {
    if body.len() < 5 || body[0] != 0 {
        return Err(Status(
            INTERNAL,
            "expected one uncompressed gRPC message".into(),
        ));
    }
    let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    body.get(5..5 + length)
        .ok_or_else(|| Status(INTERNAL, "truncated gRPC message".into()))
}

pub fn frame(message: &Msg) -> Bytes {
    let encoded = message.encode();
    let mut framed = Vec::with_capacity(5 + encoded.len());
    framed.push(0);
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    Bytes::from(framed)
}

pub fn grpc_response(
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

pub fn unary(result: Result<Msg, Status>) -> Response<Body> {
    let item = result.map(|message| frame(&message));
    grpc_response(Box::pin(futures::stream::once(async move { item })))
}

fn refuse(status: Status) -> Response<Body> {
    grpc_response(Box::pin(futures::stream::once(async move { Err(status) })))
}

/// The client types `api.proto` defines for SDKs (`CLIENT_TYPE_*`); a request
/// claiming none of them is refused, as Modal refuses unknown clients.
fn known_client_type(value: &str) -> bool {
    let Ok(number) = value.parse::<i32>() else {
        return false;
    };
    let official = official::get();
    [
        "CLIENT_TYPE_CLIENT",
        "CLIENT_TYPE_LIBMODAL_JS",
        "CLIENT_TYPE_LIBMODAL_GO",
    ]
    .iter()
    .any(|name| official.enum_number("modal.client.ClientType", name) == number)
}

async fn call(
    State(state): State<Arc<ModalState>>,
    Path((service, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    state.calls.lock().await.push(method.clone());
    state.headers.lock().await.push(headers.clone());
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if header("x-modal-token-id") != Some(TOKEN_ID)
        || header("x-modal-token-secret") != Some(TOKEN_SECRET)
    {
        return refuse(Status(
            UNAUTHENTICATED,
            "Token ID or secret is invalid".into(),
        ));
    }
    if header("content-type").is_none_or(|value| !value.starts_with("application/grpc")) {
        return refuse(Status(INTERNAL, "not a gRPC request".into()));
    }
    if !header("x-modal-client-type").is_some_and(known_client_type)
        || header("x-modal-client-version").is_none_or(str::is_empty)
    {
        return refuse(Status(
            INVALID_ARGUMENT,
            "x-modal-client-type must be a ClientType of api.proto and x-modal-client-version set"
                .into(),
        ));
    }
    let official = official::get();
    let descriptor = match official.method(&method) {
        Some(descriptor) if service == official::SERVICE => descriptor,
        _ => {
            return refuse(Status(
                UNIMPLEMENTED,
                format!("api.proto has no method /{service}/{method}"),
            ));
        }
    };
    if method != "AuthTokenGet" {
        let now = unix_now();
        let valid = match header("x-modal-auth-token") {
            Some(token) => state
                .auth_tokens
                .lock()
                .await
                .get(token)
                .is_some_and(|expiry| *expiry > now),
            None => false,
        };
        if !valid {
            return refuse(Status(
                UNAUTHENTICATED,
                "x-modal-auth-token is missing, unknown or expired".into(),
            ));
        }
    }
    let request = match unframe(&body).and_then(|bytes| {
        official
            .decode_request(&descriptor, bytes)
            .map_err(|why| Status(INVALID_ARGUMENT, why))
    }) {
        Ok(request) => request,
        Err(status) => return refuse(status),
    };
    match method.as_str() {
        "AuthTokenGet" => unary(auth_token_get(&state).await),
        "AppGetOrCreate" => unary(sandboxes::app_get_or_create(&state, request).await),
        "ImageGetOrCreate" => unary(sandboxes::image_get_or_create(&state, request).await),
        "ImageDelete" => unary(sandboxes::image_delete(&state, request).await),
        "SecretGetOrCreate" => unary(sandboxes::secret_get_or_create(&state, request).await),
        "SandboxCreate" => unary(sandboxes::sandbox_create(&state, request).await),
        "SandboxGetTaskId" => unary(sandboxes::sandbox_get_task_id(&state, request).await),
        "SandboxWait" => unary(sandboxes::sandbox_wait(&state, request).await),
        "SandboxList" => unary(sandboxes::sandbox_list(&state, request).await),
        "SandboxTagsSet" => unary(sandboxes::sandbox_tags_set(&state, request).await),
        "SandboxTagsGet" => unary(sandboxes::sandbox_tags_get(&state, request).await),
        "SandboxTerminate" => unary(sandboxes::sandbox_terminate(&state, request).await),
        "SandboxSnapshotFs" => unary(sandboxes::sandbox_snapshot_fs(&state, request).await),
        "SandboxGetTunnels" => unary(sandboxes::sandbox_get_tunnels(&state, request).await),
        "ContainerExec" => unary(exec::container_exec(&state, request).await),
        "ContainerExecPutInput" => unary(exec::container_exec_put_input(&state, request).await),
        "ContainerExecWait" => unary(exec::container_exec_wait(&state, request).await),
        "ContainerExecGetOutput" => exec::container_exec_get_output(&state, request).await,
        other => refuse(Status(
            UNIMPLEMENTED,
            format!("the fake does not implement {other}"),
        )),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// A JWT-shaped token whose payload states its expiry, twenty minutes on, as Modal's do.
async fn auth_token_get(state: &ModalState) -> Result<Msg, Status> {
    use base64::Engine;
    let expiry = unix_now() + 20 * 60;
    let encode = |text: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let token = format!(
        "{}.{}.{}",
        encode(r#"{"alg":"none"}"#.into()),
        encode(format!(
            r#"{{"exp":{expiry},"jti":"{}"}}"#,
            super::next_id("at")
        )),
        encode("fake".into())
    );
    state.auth_tokens.lock().await.insert(token.clone(), expiry);
    Ok(official::get()
        .reply("AuthTokenGetResponse")
        .set_str("token", token))
}

/// A `GenericResult` with only its status (`GENERIC_STATUS_*` by name).
pub fn generic_result(status: i32) -> Msg {
    official::get()
        .reply("GenericResult")
        .set_int("status", i64::from(status))
}

/// The number of `GenericResult.GenericStatus` value `name`.
pub fn generic_status(name: &str) -> i32 {
    official::get().enum_number("modal.client.GenericResult.GenericStatus", name)
}

/// The number of `FileDescriptor` value `name`.
pub fn file_descriptor(name: &str) -> i32 {
    official::get().enum_number("modal.client.FileDescriptor", name)
}
