//! A fake Docker Engine: the Engine HTTP API (version-prefixed paths, JSON bodies,
//! `{"message": ...}` errors) on a unix socket, with `POST /exec/{id}/start`
//! hijacking the connection (`101 UPGRADED`, `Upgrade: tcp`) and writing Docker's
//! multiplexed stream frames. The Docker socket carries no credentials (access is the
//! socket's file permission), so the fake checks what the daemon checks: a supported
//! API version in the path and a `Host` header. It answers `GET /version` as Docker
//! Engine 29 does (API 1.44 to 1.52) unless told another range, and refuses any other
//! version with the Engine's own messages, so the provider's negotiation is checked
//! against the range the real Engine of the tests (20.10, up to 1.41) does not have.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use super::{Images, Machine, Output, next_id};

pub struct FakeDocker {
    /// `unix://<socket>` for `DOCKER_HOST`.
    pub host: String,
    pub state: Arc<DockerState>,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDocker {
    fn drop(&mut self) {
        self.server.abort();
        if let Ok(containers) = self.state.containers.try_lock() {
            for container in containers.values() {
                container.machine.kill_all();
            }
        }
    }
}

pub struct DockerState {
    dir: PathBuf,
    images: Images,
    pub containers: Mutex<HashMap<String, Container>>,
    execs: Mutex<HashMap<String, Exec>>,
    pub calls: Mutex<Vec<String>>,
    /// Every `POST /containers/create` body, in order.
    pub create_bodies: Mutex<Vec<Value>>,
    /// Every image pulled, as `repo:tag` or `repo@digest`.
    pub pulls: Mutex<Vec<String>>,
    /// The API versions this Engine accepts (minor numbers of `1.x`).
    versions: std::ops::RangeInclusive<u32>,
}

pub struct Container {
    pub machine: Machine,
    pub env: BTreeMap<String, String>,
    pub running: bool,
    pub network: String,
}

struct Exec {
    container: String,
    argv: Vec<String>,
    workdir: Option<String>,
    exit: Arc<Mutex<Option<i32>>>,
}

type Params = HashMap<String, String>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"message": message.into()}))).into_response()
}

impl FakeDocker {
    /// An Engine 29: API 1.44 to 1.52.
    pub async fn start() -> FakeDocker {
        FakeDocker::start_accepting(44..=52).await
    }

    /// An Engine accepting API versions `1.<min>` to `1.<max>`.
    pub async fn start_accepting(versions: std::ops::RangeInclusive<u32>) -> FakeDocker {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        let state = Arc::new(DockerState {
            dir: dir.path().to_path_buf(),
            images: Images::new(dir.path().join("images")),
            containers: Mutex::default(),
            execs: Mutex::default(),
            calls: Mutex::default(),
            create_bodies: Mutex::default(),
            pulls: Mutex::default(),
            versions,
        });
        let app = Router::new()
            .route("/_ping", get(|| async { "OK" }))
            .route("/version", get(version))
            .route("/{version}/images/{name}/json", get(image_inspect))
            .route("/{version}/images/create", post(image_pull))
            .route("/{version}/images/{name}", delete(image_remove))
            .route("/{version}/build", post(build))
            .route("/{version}/containers/create", post(container_create))
            .route("/{version}/containers/{id}/start", post(container_start))
            .route("/{version}/containers/{id}/stop", post(container_stop))
            .route("/{version}/containers/{id}/json", get(container_inspect))
            .route("/{version}/containers/{id}", delete(container_remove))
            .route("/{version}/containers/{id}/exec", post(exec_create))
            .route("/{version}/exec/{id}/start", post(exec_start))
            .route("/{version}/exec/{id}/json", get(exec_inspect))
            .route("/{version}/commit", post(commit))
            .route(
                "/{version}/containers/{id}/archive",
                get(archive_get).put(archive_put),
            )
            .layer(axum::middleware::from_fn_with_state(state.clone(), check))
            .with_state(state.clone());
        let socket = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDocker {
            host: format!("unix://{}", socket.display()),
            state,
            _dir: dir,
            server,
        }
    }
}

async fn check(
    State(state): State<Arc<DockerState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_string();
    state
        .calls
        .lock()
        .await
        .push(format!("{} {path}", request.method()));
    if request.headers().get("host").is_none() {
        return error(StatusCode::BAD_REQUEST, "missing Host header");
    }
    if path != "/_ping" && path != "/version" {
        let version = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let Some(minor) = version
            .strip_prefix("v1.")
            .and_then(|minor| minor.parse::<u32>().ok())
        else {
            return error(StatusCode::NOT_FOUND, "page not found");
        };
        let (min, max) = (*state.versions.start(), *state.versions.end());
        if minor > max {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "client version 1.{minor} is too new. Maximum supported API version is 1.{max}"
                ),
            );
        }
        if minor < min {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "client version 1.{minor} is too old. Minimum supported API version is 1.{min}, please upgrade your client to a newer version"
                ),
            );
        }
    }
    next.run(request).await
}

async fn version(State(state): State<Arc<DockerState>>) -> Response {
    axum::Json(json!({
        "Version": "29.0.0",
        "ApiVersion": format!("1.{}", state.versions.end()),
        "MinAPIVersion": format!("1.{}", state.versions.start()),
        "Os": "linux",
        "Arch": "amd64",
    }))
    .into_response()
}

async fn image_inspect(
    State(state): State<Arc<DockerState>>,
    Path((_, name)): Path<(String, String)>,
) -> Response {
    match state.images.get(&name).await {
        Some(_) => axum::Json(json!({"Id": name})).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("No such image: {name}")),
    }
}

async fn image_pull(
    State(state): State<Arc<DockerState>>,
    Query(params): Query<Params>,
) -> Response {
    let (Some(name), tag) = (params.get("fromImage"), params.get("tag")) else {
        return error(StatusCode::BAD_REQUEST, "fromImage is required");
    };
    // As the Engine: `tag` is a tag or, for a reference by digest, the digest.
    let full = match tag.map(String::as_str) {
        Some(digest) if digest.starts_with("sha256:") => format!("{name}@{digest}"),
        tag => format!("{name}:{}", tag.unwrap_or("latest")),
    };
    state.pulls.lock().await.push(full.clone());
    match state.images.pull(&full).await {
        Ok(_) => format!(
            "{}\n{}\n",
            json!({"status": format!("Pulling from {name}")}),
            json!({"status": format!("Status: Downloaded newer image for {full}")})
        )
        .into_response(),
        Err(why) => error(StatusCode::INTERNAL_SERVER_ERROR, why.to_string()),
    }
}

async fn image_remove(Path((_, name)): Path<(String, String)>) -> Response {
    axum::Json(json!([{"Untagged": name}])).into_response()
}

async fn build(
    State(state): State<Arc<DockerState>>,
    Query(params): Query<Params>,
    body: Bytes,
) -> Response {
    let Some(tag) = params.get("t") else {
        return error(StatusCode::BAD_REQUEST, "t is required");
    };
    let mut archive = tar::Archive::new(&body[..]);
    let mut dockerfile = None;
    if let Ok(entries) = archive.entries() {
        for mut entry in entries.flatten() {
            if entry
                .path()
                .is_ok_and(|path| path.to_str() == Some("Dockerfile"))
            {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut entry, &mut text);
                dockerfile = Some(text);
            }
        }
    }
    let Some(dockerfile) = dockerfile else {
        return error(
            StatusCode::BAD_REQUEST,
            "Cannot locate specified Dockerfile: Dockerfile",
        );
    };
    let lines: Vec<String> = dockerfile.lines().map(String::from).collect();
    match state.images.build(tag, &lines, None).await {
        Ok(log) => format!(
            "{}\n{}\n",
            json!({"stream": log}),
            json!({"aux": {"ID": format!("sha256:{}", next_id("built"))}})
        )
        .into_response(),
        Err(why) => format!(
            "{}\n",
            json!({"errorDetail": {"message": why}, "error": why})
        )
        .into_response(),
    }
}

async fn container_create(
    State(state): State<Arc<DockerState>>,
    Query(params): Query<Params>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let image_name = body["Image"].as_str().unwrap_or_default();
    let Some(image) = state.images.get(image_name).await else {
        return error(
            StatusCode::NOT_FOUND,
            format!("No such image: {image_name}"),
        );
    };
    if body["Cmd"].as_array().is_none_or(|cmd| cmd.is_empty()) {
        return error(StatusCode::BAD_REQUEST, "no command specified");
    }
    let machine = match Machine::create(&state.dir.join("containers"), Some(&image)).await {
        Ok(machine) => machine,
        Err(why) => return error(StatusCode::INTERNAL_SERVER_ERROR, why.to_string()),
    };
    let env = body["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    state.create_bodies.lock().await.push(body.clone());
    let id = format!("{:0>64}", next_id("c").replace('-', ""));
    let _ = params.get("name");
    state.containers.lock().await.insert(
        id.clone(),
        Container {
            machine,
            env,
            running: false,
            network: body["HostConfig"]["NetworkMode"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
        },
    );
    (
        StatusCode::CREATED,
        axum::Json(json!({"Id": id, "Warnings": []})),
    )
        .into_response()
}

async fn container_start(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let mut containers = state.containers.lock().await;
    match containers.get_mut(&id) {
        None => error(StatusCode::NOT_FOUND, format!("No such container: {id}")),
        Some(container) if container.running => StatusCode::NOT_MODIFIED.into_response(),
        Some(container) => {
            container.running = true;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn container_stop(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let mut containers = state.containers.lock().await;
    match containers.get_mut(&id) {
        None => error(StatusCode::NOT_FOUND, format!("No such container: {id}")),
        Some(container) if !container.running => StatusCode::NOT_MODIFIED.into_response(),
        Some(container) => {
            container.machine.kill_all();
            container.running = false;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn container_inspect(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let containers = state.containers.lock().await;
    match containers.get(&id) {
        None => error(StatusCode::NOT_FOUND, format!("No such container: {id}")),
        Some(container) => axum::Json(json!({
            "Id": id,
            "State": {
                "Status": if container.running { "running" } else { "exited" },
                "Running": container.running,
                "ExitCode": if container.running { 0 } else { 137 },
            },
            "HostConfig": {"NetworkMode": container.network},
        }))
        .into_response(),
    }
}

async fn container_remove(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    let mut containers = state.containers.lock().await;
    match containers.get(&id) {
        None => error(StatusCode::NOT_FOUND, format!("No such container: {id}")),
        Some(container)
            if container.running && params.get("force").map(String::as_str) != Some("true") =>
        {
            error(
                StatusCode::CONFLICT,
                "You cannot remove a running container. Stop the container before attempting removal or force remove",
            )
        }
        Some(container) => {
            container.machine.kill_all();
            let _ = tokio::fs::remove_dir_all(&container.machine.root).await;
            containers.remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

async fn exec_create(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    match state.containers.lock().await.get(&id) {
        None => return error(StatusCode::NOT_FOUND, format!("No such container: {id}")),
        Some(container) if !container.running => {
            return error(
                StatusCode::CONFLICT,
                format!("Container {id} is not running"),
            );
        }
        Some(_) => {}
    }
    let argv: Vec<String> = body["Cmd"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|arg| arg.as_str().map(String::from))
        .collect();
    if argv.is_empty() {
        return error(StatusCode::BAD_REQUEST, "No exec command specified");
    }
    let exec_id = format!("{:0>64}", next_id("e").replace('-', ""));
    state.execs.lock().await.insert(
        exec_id.clone(),
        Exec {
            container: id,
            argv,
            workdir: body["WorkingDir"].as_str().map(String::from),
            exit: Arc::default(),
        },
    );
    (StatusCode::CREATED, axum::Json(json!({"Id": exec_id}))).into_response()
}

async fn exec_start(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    mut request: Request,
) -> Response {
    let upgrade = headers
        .get("upgrade")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("tcp"));
    if !upgrade {
        return error(
            StatusCode::BAD_REQUEST,
            "this fake only serves hijacked exec streams (Upgrade: tcp)",
        );
    }
    let (machine, env, argv, workdir, exit) = {
        let execs = state.execs.lock().await;
        let Some(exec) = execs.get(&id) else {
            return error(
                StatusCode::NOT_FOUND,
                format!("No such exec instance: {id}"),
            );
        };
        let containers = state.containers.lock().await;
        let Some(container) = containers.get(&exec.container).filter(|c| c.running) else {
            return error(StatusCode::CONFLICT, "Container is not running");
        };
        (
            container.machine.clone(),
            container.env.clone(),
            exec.argv.clone(),
            exec.workdir.clone(),
            exec.exit.clone(),
        )
    };
    let mut running = match machine.spawn(&argv, workdir.as_deref(), &env) {
        Ok(running) => running,
        Err(why) => {
            *exit.lock().await = Some(126);
            return error(StatusCode::INTERNAL_SERVER_ERROR, why.to_string());
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (mut reader, mut writer) = tokio::io::split(io);
        let mut stdin = running.stdin.take();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        if let Some(pipe) = stdin.as_mut()
                            && pipe.write_all(&buffer[..read]).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                }
            }
            drop(stdin);
        });
        while let Some(output) = running.output.recv().await {
            let (stream, bytes) = match output {
                Output::Stdout(bytes) => (1u8, bytes),
                Output::Stderr(bytes) => (2u8, bytes),
                Output::Exit(code) => {
                    *exit.lock().await = Some(code);
                    break;
                }
            };
            let mut frame = vec![stream, 0, 0, 0];
            frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            frame.extend_from_slice(&bytes);
            if writer.write_all(&frame).await.is_err() {
                // The client went away; keep draining so the exit code is recorded.
                while let Some(output) = running.output.recv().await {
                    if let Output::Exit(code) = output {
                        *exit.lock().await = Some(code);
                    }
                }
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "tcp")
        .header("content-type", "application/vnd.docker.multiplexed-stream")
        .body(Body::empty())
        .unwrap()
}

async fn exec_inspect(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let execs = state.execs.lock().await;
    let Some(exec) = execs.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("No such exec instance: {id}"),
        );
    };
    let code = *exec.exit.lock().await;
    axum::Json(json!({
        "ID": id,
        "Running": code.is_none(),
        "ExitCode": code,
        "ContainerID": exec.container,
    }))
    .into_response()
}

async fn commit(State(state): State<Arc<DockerState>>, Query(params): Query<Params>) -> Response {
    let Some(id) = params.get("container") else {
        return error(StatusCode::BAD_REQUEST, "container is required");
    };
    let machine = match state.containers.lock().await.get(id) {
        None => return error(StatusCode::NOT_FOUND, format!("No such container: {id}")),
        Some(container) => container.machine.clone(),
    };
    let image_id = format!("sha256:{:0>64}", next_id("i").replace('-', ""));
    if let Err(why) = state.images.snapshot(&machine, &image_id).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, why.to_string());
    }
    if let (Some(repo), Some(tag)) = (params.get("repo"), params.get("tag")) {
        let _ = state
            .images
            .alias(&image_id, &format!("{repo}:{tag}"))
            .await;
    }
    (StatusCode::CREATED, axum::Json(json!({"Id": image_id}))).into_response()
}

/// Where a container path is on this host, resolved inside the container's root the
/// way Docker does (a symlink cannot lead out of the container).
async fn container_path(state: &DockerState, id: &str, path: &str) -> Result<PathBuf, Response> {
    let root = match state.containers.lock().await.get(id) {
        None => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("No such container: {id}"),
            ));
        }
        Some(container) => container.machine.root.clone(),
    };
    if !path.starts_with('/') {
        return Err(error(StatusCode::BAD_REQUEST, "path must be absolute"));
    }
    // A path the machine's own commands printed (`realpath`) is a host path here: the
    // inverse of the fake's `/workspace` rewriting.
    let canonical_root = tokio::fs::canonicalize(&root)
        .await
        .unwrap_or_else(|_| root.clone());
    let path = [
        root.display().to_string(),
        canonical_root.display().to_string(),
    ]
    .iter()
    .find_map(|prefix| path.strip_prefix(prefix.as_str()))
    .unwrap_or(path);
    let host = root.join(path.trim_start_matches('/'));
    let resolved = match tokio::fs::canonicalize(&host).await {
        Ok(resolved) => resolved,
        Err(_) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("Could not find the file {path} in container {id}"),
            ));
        }
    };
    let root = tokio::fs::canonicalize(&root).await.unwrap_or(root);
    if !resolved.starts_with(&root) {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("Could not find the file {path} in container {id}"),
        ));
    }
    Ok(resolved)
}

async fn archive_get(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    let Some(path) = params.get("path") else {
        return error(StatusCode::BAD_REQUEST, "path is required");
    };
    let host = match container_path(&state, &id, path).await {
        Ok(host) => host,
        Err(response) => return response,
    };
    let Ok(contents) = tokio::fs::read(&host).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "the fake archives only regular files",
        );
    };
    let name = host.file_name().unwrap().to_string_lossy().into_owned();
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    archive
        .append_data(&mut header, &name, &contents[..])
        .unwrap();
    let stat = json!({"name": name, "size": contents.len(), "mode": 0o644, "mtime": "2026-01-01T00:00:00Z", "linkTarget": ""});
    use base64::Engine as _;
    Response::builder()
        .header("content-type", "application/x-tar")
        .header(
            "x-docker-container-path-stat",
            base64::engine::general_purpose::STANDARD.encode(stat.to_string()),
        )
        .body(Body::from(archive.into_inner().unwrap()))
        .unwrap()
}

async fn archive_put(
    State(state): State<Arc<DockerState>>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<Params>,
    body: Bytes,
) -> Response {
    let Some(path) = params.get("path") else {
        return error(StatusCode::BAD_REQUEST, "path is required");
    };
    let dir = match container_path(&state, &id, path).await {
        Ok(dir) => dir,
        Err(response) => return response,
    };
    if !dir.is_dir() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{path} is not a directory"),
        );
    }
    let mut archive = tar::Archive::new(&body[..]);
    let Ok(entries) = archive.entries() else {
        return error(StatusCode::BAD_REQUEST, "not a tar archive");
    };
    for entry in entries {
        let Ok(mut entry) = entry else {
            return error(StatusCode::BAD_REQUEST, "not a tar archive");
        };
        let name = entry
            .path()
            .ok()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty()
            || name.contains('/')
            || name == ".."
            || !entry.header().entry_type().is_file()
        {
            return error(
                StatusCode::BAD_REQUEST,
                "the fake extracts only plain file entries",
            );
        }
        let target = dir.join(&name);
        if target.is_dir() && params.get("noOverwriteDirNonDir").map(String::as_str) == Some("true")
        {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot overwrite directory {name} with non-directory"),
            );
        }
        let mut contents = Vec::new();
        if std::io::Read::read_to_end(&mut entry, &mut contents).is_err()
            || std::fs::write(&target, contents).is_err()
        {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot write {name}"),
            );
        }
    }
    StatusCode::OK.into_response()
}
