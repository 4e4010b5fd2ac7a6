//! The `docker` provider: one container per sandbox on a Docker Engine, for
//! self-hosters with one machine and Docker.
//!
//! - create: pull the image when missing (`POST /images/create`), `POST
//!   /containers/create` (`sleep infinity`, working directory `/workspace`, `init`,
//!   network `none` or the default bridge) and start it. The container gets the local
//!   provider's posture as far as the Engine allows: an unprivileged `User`
//!   (`SANDBOX_DOCKER_USER`, default `1000:1000`, which owns `/workspace` in the image
//!   built from `docker/`), every capability dropped, `no-new-privileges`, a pids limit,
//!   memory without extra swap, a CPU cap (`NanoCpus`) and a size-limited tmpfs `/tmp`.
//!   The root file system stays writable: templates install packages into it and fork
//!   and snapshots commit it. The disk a container writes is not limited (the Engine's
//!   `StorageOpt` size works only on some storage drivers), so `disk` is reported
//!   missing.
//! - exec: `POST /containers/{id}/exec` of the command in its own process group (see
//!   [`super::remote`]), `POST /exec/{id}/start` hijacked for stdin and the
//!   multiplexed output, `GET /exec/{id}/json` for the exit code; a timeout or kill
//!   runs `kill -s KILL -- -<pgid>` through a second exec ([`super::remote::exec`]).
//! - files: the container's `realpath` resolves the path and checks it stays in the
//!   workspace, then `GET`/`PUT /containers/{id}/archive` move the bytes.
//! - stop/start: `POST /containers/{id}/stop` and `/start` (the filesystem is kept).
//!   Before a session's container starts again (a wake), the runner of the image a
//!   new sandbox would get is installed into it at `/.nightshift-runner/runner`
//!   through the archive API, and that one starts ([`runner_install`]).
//! - fork and snapshots: `POST /commit` gives an image; a fork is a new container from
//!   it. Templates: `POST /build` of a generated Dockerfile.
//! - reattach: the container id is the handle; `GET /containers/{id}/json` says
//!   whether it still runs.
//! - gateway: a sandbox created with one gets `nightshift-gateway serve` started in
//!   the container (the sandbox image has it), reached by the relay through an exec of
//!   `nightshift-gateway connect`, never through a published port ([`gateway`]).
//! - runner: a session's runner runs inside its container as a user of its own,
//!   started and supervised there, its commands as the sandbox's user ([`runner`]).
//!
//! Settings: `SANDBOX_DOCKER_IMAGE` (enables the provider; e.g.
//! `debian:bookworm-slim` or the image built from `docker/`), `DOCKER_HOST` (default
//! `unix:///var/run/docker.sock`), `SANDBOX_DOCKER_PIDS_LIMIT` (default 1024),
//! `SANDBOX_DOCKER_MEMORY_MB` (default 4096), `SANDBOX_DOCKER_CPUS` (default 2),
//! `SANDBOX_DOCKER_TMP_MB` (default 512), `SANDBOX_DOCKER_USER` (default `1000:1000`;
//! `0:0` for an image whose `/workspace` only root can write, still without
//! capabilities).

pub mod api_version;
pub mod client;
pub mod egress;
pub mod gateway;
pub mod image_ref;
pub mod runner;
pub mod runner_install;
mod shell;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use hyper::{Method, StatusCode};
use nightshift_protocol::sandbox::{GatewayStatus, NetworkMode};
use serde_json::{Value, json};

use tokio_util::sync::CancellationToken;

use self::client::{DockerClient, DockerHost, docker_error};
use self::shell::DockerShell;
use super::remote;
use super::{
    BuiltTemplate, Capabilities, GatewayPlace, GatewayStream, ProviderError, ProviderHandle,
    Reconciled, RunnerPlacement, SandboxSpec, StdinStream, TemplateBuild, TemplateRef,
};
use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;
use crate::providers::local::sandbox_agent::egress::EgressPolicy;
use nightshift_protocol::sandbox::RunnerBootConfig;

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub host: DockerHost,
    pub image: String,
    pub pids_limit: i64,
    pub memory_mb: Option<i64>,
    pub workspace: String,
    /// `uid:gid` the container runs as.
    pub user: String,
    pub cpus: f64,
    pub tmp_mb: i64,
    /// Whether a sandbox may ask for `private` (Docker's default bridge, which reaches
    /// the host and its networks): only with `SANDBOX_ALLOW_PRIVATE_NETWORK=true`.
    pub allow_private_network: bool,
    /// Where the sockets of `isolated` sandboxes' ways out are served
    /// (`SANDBOX_DOCKER_ISOLATED=true`; a directory of the backend's data directory,
    /// so the Engine must share this host), and the policy they apply.
    pub isolated: Option<(std::path::PathBuf, Arc<EgressPolicy>)>,
}

impl DockerConfig {
    pub fn from_lookup(
        lookup: &(dyn Fn(&str) -> Option<String> + Send + Sync),
    ) -> Result<Option<DockerConfig>, String> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let Some(image) = get("SANDBOX_DOCKER_IMAGE") else {
            return Ok(None);
        };
        let host = DockerHost::parse(&get("DOCKER_HOST").unwrap_or_else(|| DEFAULT_HOST.into()))?;
        let number = |name: &str| -> Result<Option<i64>, String> {
            get(name)
                .map(|text| {
                    text.trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|value| *value > 0)
                        .ok_or_else(|| format!("{name}={text:?} is not a positive number"))
                })
                .transpose()
        };
        let isolated = isolated_egress(&get, &host)?;
        Ok(Some(DockerConfig {
            host,
            image,
            pids_limit: number("SANDBOX_DOCKER_PIDS_LIMIT")?.unwrap_or(1024),
            memory_mb: Some(number("SANDBOX_DOCKER_MEMORY_MB")?.unwrap_or(4096)),
            workspace: remote::DEFAULT_WORKSPACE.into(),
            user: get("SANDBOX_DOCKER_USER").unwrap_or_else(|| "1000:1000".into()),
            cpus: match get("SANDBOX_DOCKER_CPUS") {
                None => 2.0,
                Some(text) => text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|cpus| cpus.is_finite() && *cpus > 0.0)
                    .ok_or_else(|| {
                        format!("SANDBOX_DOCKER_CPUS={text:?} is not a positive number")
                    })?,
            },
            tmp_mb: number("SANDBOX_DOCKER_TMP_MB")?.unwrap_or(512),
            allow_private_network: get("SANDBOX_ALLOW_PRIVATE_NETWORK")
                .is_some_and(|text| matches!(text.trim(), "1" | "true" | "yes" | "on")),
            isolated,
        }))
    }
}

/// `SANDBOX_DOCKER_ISOLATED=true`: the egress sockets' directory and the policy
/// (`SANDBOX_ISOLATED_ALLOW`, as for the local provider).
fn isolated_egress(
    get: &dyn Fn(&str) -> Option<String>,
    host: &DockerHost,
) -> Result<Option<(std::path::PathBuf, Arc<EgressPolicy>)>, String> {
    let wanted = get("SANDBOX_DOCKER_ISOLATED")
        .is_some_and(|text| matches!(text.trim(), "1" | "true" | "yes" | "on"));
    if !wanted {
        return Ok(None);
    }
    if !matches!(host, DockerHost::Unix(_)) {
        return Err(
            "SANDBOX_DOCKER_ISOLATED=true needs the Engine on this host (a unix:// DOCKER_HOST): \
             the way out is a socket of this host bound into each container"
                .into(),
        );
    }
    let policy = EgressPolicy::with_allow_list(&get("SANDBOX_ISOLATED_ALLOW").unwrap_or_default())
        .map_err(|error| format!("SANDBOX_ISOLATED_ALLOW: {error}"))?;
    let data = get("NIGHTSHIFT_DATA_DIR").unwrap_or_else(|| crate::config::DEFAULT_DATA_DIR.into());
    let root = std::path::absolute(std::path::Path::new(&data).join("docker-egress"))
        .map_err(|error| format!("NIGHTSHIFT_DATA_DIR: {error}"))?;
    Ok(Some((root, Arc::new(policy))))
}

pub struct DockerProvider {
    client: DockerClient,
    shell: DockerShell,
    config: DockerConfig,
    gateways: gateway::Started,
    egress: Option<egress::Egress>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Handle {
    container_id: String,
    /// The image a fork was committed to: only its container uses it, so it is
    /// removed with the container (the Engine keeps a committed image until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fork_image: Option<String>,
}

fn handle_of(sandbox: &SandboxSpec) -> Result<Handle, ProviderError> {
    remote::exec::handle_of(sandbox, "container")
}

/// `uid:gid` as numbers, when the configured user is written that way.
fn numeric_owner(user: &str) -> Option<(u64, u64)> {
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    Some((uid.trim().parse().ok()?, gid.trim().parse().ok()?))
}

/// Percent-encodes a query value.
fn query_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Percent-encodes what an image name may contain that a path segment may not.
fn encode(text: &str) -> String {
    text.replace('%', "%25")
        .replace('/', "%2F")
        .replace('?', "%3F")
        .replace('#', "%23")
}

impl DockerProvider {
    pub fn new(config: DockerConfig) -> DockerProvider {
        let client = DockerClient::new(config.host.clone());
        DockerProvider {
            shell: DockerShell::new(
                client.clone(),
                config.workspace.clone(),
                config.user.clone(),
            ),
            client,
            egress: config
                .isolated
                .clone()
                .map(|(root, policy)| egress::Egress::new(root, policy)),
            config,
            gateways: gateway::Started::default(),
        }
    }

    /// Starts the sandbox's gateway in its running container, when it has one. A
    /// gateway that cannot start leaves the sandbox usable: its status says why.
    async fn start_gateway(&self, sandbox: &SandboxSpec, handle: &ProviderHandle) {
        let Some(launch) = &sandbox.gateway else {
            return;
        };
        let mut spec = sandbox.clone();
        spec.handle = handle.clone();
        let outcome = self.run_to_end(&spec, gateway::start_plan(launch)).await;
        let (status, reason) = match outcome {
            Ok((_, _, exit)) if exit.code == 0 => (GatewayStatus::Running, None),
            Ok((_, stderr, exit)) => (
                GatewayStatus::Unavailable,
                Some(format!(
                    "the gateway did not start (exit code {}): {}",
                    exit.code,
                    stderr.trim().chars().take(512).collect::<String>()
                )),
            ),
            Err(error) => (
                GatewayStatus::Unavailable,
                Some(format!("the gateway did not start: {error}")),
            ),
        };
        if let Some(reason) = &reason {
            tracing::warn!(sandbox = %sandbox.id, %reason, "no gateway in a docker sandbox");
        }
        self.gateways.record(&sandbox.id, status, reason);
    }

    /// Serves an isolated sandbox's way out and starts its proxy in the running
    /// container. Without the proxy (an image without `nightshift-gateway`) the
    /// sandbox still works, with no way out at all.
    async fn start_egress(&self, sandbox: &SandboxSpec, handle: &ProviderHandle) {
        let Some(egress) = &self.egress else { return };
        if sandbox.network != NetworkMode::Isolated {
            return;
        }
        if let Err(error) = egress.serve(&sandbox.id) {
            tracing::warn!(sandbox = %sandbox.id, %error, "cannot serve a docker sandbox's way out");
            return;
        }
        let mut spec = sandbox.clone();
        spec.handle = handle.clone();
        let plan = ExecPlan {
            argv: vec!["sh".into(), "-c".into(), egress::start_script()],
            env: Default::default(),
            cwd: None,
            timeout: Duration::from_secs(30),
            stdin: None,
        };
        match self.run_to_end(&spec, plan).await {
            Ok((_, _, exit)) if exit.code == 0 => {}
            Ok((_, stderr, exit)) => tracing::warn!(
                sandbox = %sandbox.id, code = exit.code, stderr = %stderr.trim(),
                "the egress proxy did not start in a docker sandbox"
            ),
            Err(error) => {
                tracing::warn!(sandbox = %sandbox.id, %error, "the egress proxy did not start in a docker sandbox")
            }
        }
    }

    /// The proxy on the container's loopback, for a sandbox whose way out is one.
    fn proxy_of(&self, sandbox: &SandboxSpec) -> Option<String> {
        (sandbox.network == NetworkMode::Isolated && self.egress.is_some())
            .then(|| format!("http://127.0.0.1:{}", egress::PROXY_PORT))
    }

    fn close_egress(&self, id: &str) {
        if let Some(egress) = &self.egress {
            egress.close(id);
        }
    }

    async fn ensure_image(&self, image: &str) -> Result<(), ProviderError> {
        let inspect = self
            .client
            .call(
                Method::GET,
                &format!("/images/{}/json", encode(image)),
                None,
                remote::CALL_TIMEOUT,
            )
            .await?;
        if inspect.status.is_success() {
            return Ok(());
        }
        if inspect.status != StatusCode::NOT_FOUND {
            return Err(docker_error("image inspect", &inspect));
        }
        let reference = image_ref::PullReference::parse(image);
        let pulled = self
            .client
            .call(
                Method::POST,
                &format!(
                    "/images/create?fromImage={}&tag={}",
                    query_encode(&reference.repository),
                    query_encode(&reference.tag)
                ),
                None,
                remote::CREATE_TIMEOUT,
            )
            .await?;
        if !pulled.status.is_success() {
            return Err(docker_error(&format!("pulling {image}"), &pulled));
        }
        // Progress lines; a failure arrives as a line with "error".
        for line in pulled.body.split(|byte| *byte == b'\n') {
            if let Ok(value) = serde_json::from_slice::<Value>(line)
                && let Some(error) = value["error"].as_str()
            {
                return Err(ProviderError::Unavailable(format!(
                    "Docker could not pull {image}: {error}"
                )));
            }
        }
        Ok(())
    }

    async fn create_from_image(
        &self,
        sandbox: &SandboxSpec,
        image: &str,
    ) -> Result<ProviderHandle, ProviderError> {
        self.ensure_image(image).await?;
        let env: Vec<String> = sandbox
            .env
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let mut labels = serde_json::Map::new();
        for (name, value) in &sandbox.labels {
            labels.insert(name.clone(), Value::String(value.clone()));
        }
        labels.insert(
            "nightshift.sandbox".into(),
            Value::String(sandbox.id.clone()),
        );
        let mut env = env;
        let mut host_config = json!({
            // Isolated is network `none` too: its way out is the backend's socket.
            "NetworkMode": if sandbox.network == NetworkMode::Private { "bridge" } else { "none" },
            "Init": true,
            "PidsLimit": self.config.pids_limit,
            "SecurityOpt": ["no-new-privileges"],
            "CapDrop": ["ALL"],
            "NanoCpus": (self.config.cpus * 1e9) as i64,
            "Tmpfs": {"/tmp": format!("rw,nosuid,nodev,size={}m", self.config.tmp_mb)},
        });
        if sandbox.network == NetworkMode::Isolated
            && let Some(egress) = &self.egress
        {
            let dir = egress.serve(&sandbox.id).map_err(|error| {
                ProviderError::Unavailable(format!("cannot serve the sandbox's way out: {error}"))
            })?;
            host_config["Binds"] =
                json!([format!("{}:{}:ro", dir.display(), egress::CONTAINER_DIR)]);
            env.extend(egress::proxy_env());
        }
        let mut body = json!({
            "Image": image,
            "User": self.config.user,
            "Cmd": ["sleep", "infinity"],
            "WorkingDir": self.config.workspace,
            "Labels": labels,
        });
        if sandbox.has_runner {
            // The runner needs these: `setpriv` to the sandbox's user for its
            // commands, and signals to them. The Engine gives them to a process only when the container
            // runs as root (with `no-new-privileges` an exec as root of a container
            // of another user has none), so the container's own process is root's,
            // outside the image's entrypoint; every exec names its user (the
            // sandbox's, but the one starting the runner). The runner's directory
            // is a tmpfs, never committed into a fork's image.
            body["User"] = json!(runner::START_USER);
            body["Entrypoint"] = json!(["sleep"]);
            body["Cmd"] = json!(["infinity"]);
            host_config["CapAdd"] = json!(runner::KEPT_CAPABILITIES);
            host_config["Tmpfs"][runner::RUNNER_DIR] = json!(runner::tmpfs_options());
            host_config["Tmpfs"][runner::GIT_SOCKETS_DIR] =
                json!(runner::git_sockets_tmpfs_options());
        }
        if let Some(mb) = self.config.memory_mb {
            host_config["Memory"] = json!(mb * 1024 * 1024);
            // The same figure for memory and swap together: no swap on top.
            host_config["MemorySwap"] = json!(mb * 1024 * 1024);
        }
        let created = self
            .client
            .call(
                Method::POST,
                &format!("/containers/create?name=nightshift-{}", sandbox.id),
                Some({
                    body["Env"] = json!(env);
                    body["HostConfig"] = host_config;
                    body
                }),
                remote::CALL_TIMEOUT,
            )
            .await;
        let created = match created {
            Ok(created) if created.status == StatusCode::CREATED => created,
            failed => {
                // No container: its way out is not served either.
                self.close_egress(&sandbox.id);
                return Err(match failed {
                    Ok(answer) => docker_error("container create", &answer),
                    Err(error) => error,
                });
            }
        };
        let container_id = created.json()["Id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let handle = ProviderHandle(json!({ "container_id": container_id }));
        if let Err(error) = self.start_container(&container_id).await {
            self.remove(&container_id).await;
            self.close_egress(&sandbox.id);
            return Err(error);
        }
        self.start_egress(sandbox, &handle).await;
        self.start_gateway(sandbox, &handle).await;
        Ok(handle)
    }

    async fn start_container(&self, container_id: &str) -> Result<(), ProviderError> {
        let started = self
            .client
            .call(
                Method::POST,
                &format!("/containers/{container_id}/start"),
                None,
                remote::CALL_TIMEOUT,
            )
            .await?;
        if started.status.is_success() || started.status == StatusCode::NOT_MODIFIED {
            Ok(())
        } else {
            Err(docker_error("container start", &started))
        }
    }

    async fn remove(&self, container_id: &str) {
        let result = self
            .client
            .call(
                Method::DELETE,
                &format!("/containers/{container_id}?force=true&v=true"),
                None,
                remote::CALL_TIMEOUT,
            )
            .await;
        match result {
            Ok(answer) if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND => {}
            Ok(answer) => {
                tracing::warn!(container_id, message = %answer.message(), "could not remove a container")
            }
            Err(error) => tracing::warn!(container_id, %error, "could not remove a container"),
        }
    }

    /// Removes an image nothing else uses (a fork of this fork, committed from it,
    /// keeps it: the Engine refuses, and it stays until that one goes).
    async fn remove_image(&self, image: &str) {
        let result = self
            .client
            .call(
                Method::DELETE,
                &format!("/images/{}", encode(image)),
                None,
                remote::CALL_TIMEOUT,
            )
            .await;
        match result {
            Ok(answer) if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND => {}
            Ok(answer) => tracing::info!(image, message = %answer.message(), "kept an image"),
            Err(error) => tracing::warn!(image, %error, "could not remove an image"),
        }
    }

    async fn commit(&self, sandbox: &SandboxSpec, repo: &str) -> Result<String, ProviderError> {
        let handle = handle_of(sandbox)?;
        let committed = self
            .client
            .call(
                Method::POST,
                &format!(
                    "/commit?container={}&repo={repo}&tag={}",
                    handle.container_id,
                    uuid::Uuid::new_v4().simple()
                ),
                Some(json!({})),
                Duration::from_secs(300),
            )
            .await?;
        if !committed.status.is_success() {
            return Err(docker_error("commit", &committed));
        }
        committed.json()["Id"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| {
                ProviderError::Unavailable("Docker's commit returned no image id".into())
            })
    }

    async fn run_to_end(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
    ) -> Result<(String, String, nightshift_protocol::sandbox::ExecExit), ProviderError> {
        remote::exec::run_to_end(&self.shell, sandbox, plan).await
    }

    /// Where `path` really is in the container, checked to stay in the workspace
    /// (symlinks resolved by the container's own `realpath`).
    async fn resolve(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
        for_write: bool,
    ) -> Result<String, ProviderError> {
        let plan = remote::resolve_file_plan(&self.config.workspace, path, for_write);
        let (stdout, stderr, exit) = self.run_to_end(sandbox, plan).await?;
        remote::file_error(path, &stderr, &exit)?;
        if !stdout.starts_with('/') {
            return Err(ProviderError::Unavailable(format!(
                "the container did not resolve {path}: {stdout:?}"
            )));
        }
        Ok(stdout)
    }

    async fn container_state(&self, container_id: &str) -> Result<Option<Value>, ProviderError> {
        let inspect = self
            .client
            .call(
                Method::GET,
                &format!("/containers/{container_id}/json"),
                None,
                remote::CALL_TIMEOUT,
            )
            .await?;
        match inspect.status {
            StatusCode::OK => Ok(Some(inspect.json()["State"].clone())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(docker_error("container inspect", &inspect)),
        }
    }
}

#[async_trait]
impl super::Provider for DockerProvider {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // The default bridge network reaches the host and its networks, and Docker
            // alone cannot enforce "outbound internet only": without the operator's
            // consent a container gets no network at all.
            // `isolated` only with the backend's egress (`SANDBOX_DOCKER_ISOLATED`),
            // whose proxy runs from the sandbox image.
            network_modes: {
                let mut modes = Vec::new();
                if self.egress.is_some() {
                    modes.push(NetworkMode::Isolated);
                }
                modes.push(NetworkMode::None);
                if self.config.allow_private_network {
                    modes.push(NetworkMode::Private);
                }
                modes
            },
            isolated: true,
            fork: true,
            templates: true,
            stdin: true,
            processes: true,
            snapshots: true,
            reattach: true,
            restart: true,
            // The stopped container keeps its files (`sandboxes::sleep`).
            sleep: true,
            tunnels: false,
            gateway: true,
            package_managers: vec!["apt".into(), "pip".into(), "npm".into()],
            enforced_limits: ["pids", "memory", "cpu", "tmp"].map(String::from).to_vec(),
            missing_limits: vec!["disk".into()],
        }
    }

    async fn create(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let image = self.current_image(sandbox);
        self.create_from_image(sandbox, &image).await
    }

    fn runner_placement(&self, sandbox: &SandboxSpec) -> RunnerPlacement {
        runner::placement(
            &self.config.workspace,
            &self.config.user,
            self.proxy_of(sandbox).as_deref(),
        )
    }

    fn runs_runner_inside(&self) -> bool {
        true
    }

    async fn start_runner_inside(
        &self,
        sandbox: &SandboxSpec,
        config: &RunnerBootConfig,
    ) -> Result<(), ProviderError> {
        if sandbox.network == NetworkMode::None {
            return Err(ProviderError::InvalidRequest(
                "a session's runner needs a way out to the Worker: network mode `isolated` \
                 (SANDBOX_DOCKER_ISOLATED=true) or `private`, not `none`"
                    .into(),
            ));
        }
        let installed = runner_install::recorded_digest(&sandbox.handle.0);
        let plan = runner::start_plan(config, installed).map_err(|error| {
            ProviderError::Unavailable(format!("cannot write the runner config: {error}"))
        })?;
        let root = self.shell.as_user(runner::START_USER);
        match remote::exec::run_to_end(&root, sandbox, plan).await? {
            (_, _, exit) if exit.code == 0 => Ok(()),
            (_, stderr, exit) => Err(ProviderError::Unavailable(format!(
                "the runner did not start in the container (exit code {}): {}",
                exit.code,
                stderr.trim().chars().take(512).collect::<String>()
            ))),
        }
    }

    async fn exec(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        remote::exec::start(&self.shell, sandbox, plan, None, cancel).await
    }

    async fn spawn(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        stdin: StdinStream,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        remote::exec::start(&self.shell, sandbox, plan, Some(stdin), cancel).await
    }

    async fn read_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, ProviderError> {
        let handle = handle_of(sandbox)?;
        let real = self.resolve(sandbox, path, false).await?;
        let answer = self
            .client
            .call(
                Method::GET,
                &format!(
                    "/containers/{}/archive?path={}",
                    handle.container_id,
                    query_encode(&real)
                ),
                None,
                Duration::from_secs(120),
            )
            .await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(ProviderError::FileNotFound(path.to_string())),
            _ => return Err(docker_error("archive read", &answer)),
        }
        let mut archive = tar::Archive::new(&answer.body[..]);
        let mut entries = archive
            .entries()
            .map_err(|error| ProviderError::io("reading Docker's archive", error))?;
        let mut entry = entries
            .next()
            .ok_or_else(|| ProviderError::FileNotFound(path.to_string()))?
            .map_err(|error| ProviderError::io("reading Docker's archive", error))?;
        if !entry.header().entry_type().is_file() {
            return Err(ProviderError::NotAFile(path.to_string()));
        }
        let mut contents = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut entry, crate::files::MAX_FILE_BYTES as u64 + 1),
            &mut contents,
        )
        .map_err(|error| ProviderError::io("reading Docker's archive", error))?;
        if contents.len() > crate::files::MAX_FILE_BYTES {
            return Err(ProviderError::InvalidRequest(format!(
                "{path} is larger than {} bytes",
                crate::files::MAX_FILE_BYTES
            )));
        }
        Ok(contents)
    }

    async fn write_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
        contents: Vec<u8>,
    ) -> Result<(), ProviderError> {
        let handle = handle_of(sandbox)?;
        let real = self.resolve(sandbox, path, true).await?;
        let (parent, name) = real
            .rsplit_once('/')
            .filter(|(_, name)| !name.is_empty())
            .ok_or_else(|| ProviderError::InvalidPath(path.to_string()))?;
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // The file belongs to the container's user, as if it wrote it. With a numeric
        // `uid:gid` the archive says so itself: the Engine's `copyUIDGID` looks the
        // user up by name in the container's passwd, which fails for `1000:1000`
        // (Engine 20.10: `getent unable to find entry "1000:1000"`).
        let owner = numeric_owner(&self.config.user);
        if let Some((uid, gid)) = owner {
            header.set_uid(uid);
            header.set_gid(gid);
        }
        header.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs())
                .unwrap_or(0),
        );
        header.set_cksum();
        archive
            .append_data(&mut header, name, &contents[..])
            .map_err(|error| ProviderError::io("packing the file", error))?;
        let body = archive
            .into_inner()
            .map_err(|error| ProviderError::io("packing the file", error))?;
        let answer = self
            .client
            .call_bytes(
                Method::PUT,
                &format!(
                    "/containers/{}/archive?path={}&noOverwriteDirNonDir=true{}",
                    handle.container_id,
                    query_encode(if parent.is_empty() { "/" } else { parent }),
                    if owner.is_some() {
                        ""
                    } else {
                        "&copyUIDGID=true"
                    }
                ),
                Bytes::from(body),
                "application/x-tar",
                Duration::from_secs(120),
            )
            .await?;
        match answer.status {
            StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Err(ProviderError::FileNotFound(path.to_string())),
            _ => Err(docker_error("archive write", &answer)),
        }
    }

    async fn fork(
        &self,
        source: &SandboxSpec,
        target: &SandboxSpec,
    ) -> Result<ProviderHandle, ProviderError> {
        let image = self.commit(source, "nightshift-fork").await?;
        match self.create_from_image(target, &image).await {
            Ok(mut handle) => {
                handle.0["fork_image"] = json!(image);
                Ok(handle)
            }
            Err(error) => {
                self.remove_image(&image).await;
                Err(error)
            }
        }
    }

    async fn build_template(&self, build: &TemplateBuild) -> Result<BuiltTemplate, ProviderError> {
        let base = build.spec.base.as_deref().unwrap_or(&self.config.image);
        let lines =
            remote::dockerfile::template_dockerfile(base, &self.config.workspace, &build.spec)?;
        let dockerfile = lines.join("\n") + "\n";
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
            .map_err(|error| ProviderError::io("packing the Dockerfile", error))?;
        let context = archive
            .into_inner()
            .map_err(|error| ProviderError::io("packing the Dockerfile", error))?;
        let tag = format!("nightshift-template:{}", build.id.to_ascii_lowercase());
        let built = self
            .client
            .call_bytes(
                Method::POST,
                &format!("/build?t={}&rm=1&forcerm=1", encode(&tag)),
                Bytes::from(context),
                "application/x-tar",
                Duration::from_secs(1800),
            )
            .await?;
        if !built.status.is_success() {
            return Err(docker_error("image build", &built));
        }
        let mut log = String::new();
        for line in built.body.split(|byte| *byte == b'\n') {
            let Ok(value) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            if let Some(text) = value["stream"].as_str() {
                log.push_str(text);
            }
            if let Some(error) = value["error"].as_str() {
                return Err(ProviderError::InvalidRequest(format!(
                    "the template failed to build: {error}\n{log}"
                )));
            }
        }
        Ok(BuiltTemplate {
            handle: ProviderHandle(json!({ "image": tag })),
            log,
        })
    }

    async fn delete_template(&self, template: &TemplateRef) -> Result<(), ProviderError> {
        if let Some(image) = template.handle.0["image"].as_str() {
            let _ = self
                .client
                .call(
                    Method::DELETE,
                    &format!("/images/{}?force=1", encode(image)),
                    None,
                    remote::CALL_TIMEOUT,
                )
                .await;
        }
        Ok(())
    }

    async fn snapshot(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let image = self.commit(sandbox, "nightshift-snapshot").await?;
        Ok(ProviderHandle(json!({ "image": image })))
    }

    async fn start(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let handle = handle_of(sandbox)?;
        let mut started = sandbox.handle.clone();
        if sandbox.has_runner {
            // Before anything runs in it again: the runner a new sandbox would get,
            // not the one of the image the container was made from.
            self.install_current_runner(sandbox, &handle.container_id)
                .await?
                .record(&mut started.0);
        }
        self.start_container(&handle.container_id).await?;
        self.start_egress(sandbox, &started).await;
        self.start_gateway(sandbox, &started).await;
        Ok(started)
    }

    async fn gateway(&self, sandbox: &SandboxSpec) -> Result<GatewayPlace, ProviderError> {
        Ok(self.gateways.place(&sandbox.id, sandbox.gateway.is_some()))
    }

    async fn connect_gateway(
        &self,
        sandbox: &SandboxSpec,
    ) -> Result<Box<dyn GatewayStream>, ProviderError> {
        let handle = handle_of(sandbox)?;
        let argv = gateway::CONNECT_ARGV.map(String::from).to_vec();
        let (_, io) = self.shell.open_exec(&handle.container_id, argv).await?;
        Ok(gateway::stream_of(io))
    }

    async fn reconcile(&self, sandbox: &SandboxSpec) -> Result<Reconciled, ProviderError> {
        let Ok(handle) = handle_of(sandbox) else {
            return Ok(Reconciled::Gone("no container was recorded".into()));
        };
        match self.container_state(&handle.container_id).await? {
            None => Ok(Reconciled::Gone(format!(
                "container {} no longer exists",
                handle.container_id
            ))),
            Some(state) if state["Running"] == Value::Bool(true) => {
                // A restarted backend serves the way out again; the proxy inside
                // still runs and finds the new socket at the same path.
                if sandbox.network == NetworkMode::Isolated
                    && let Some(egress) = &self.egress
                    && let Err(error) = egress.serve(&sandbox.id)
                {
                    tracing::warn!(sandbox = %sandbox.id, %error, "cannot serve a docker sandbox's way out");
                }
                Ok(Reconciled::Running(sandbox.handle.clone()))
            }
            Some(state) => Ok(Reconciled::Stopped(format!(
                "the container stopped while the backend was down (exit code {})",
                state["ExitCode"]
            ))),
        }
    }

    async fn stop(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        self.gateways.forget(&sandbox.id);
        let Ok(handle) = handle_of(sandbox) else {
            return Ok(());
        };
        let stopped = self
            .client
            .call(
                Method::POST,
                &format!("/containers/{}/stop?t=5", handle.container_id),
                None,
                remote::CALL_TIMEOUT,
            )
            .await?;
        match stopped.status.as_u16() {
            200..=299 | 304 | 404 => Ok(()),
            _ => Err(docker_error("container stop", &stopped)),
        }
    }

    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        self.gateways.forget(&sandbox.id);
        self.close_egress(&sandbox.id);
        if let Ok(handle) = handle_of(sandbox) {
            self.remove(&handle.container_id).await;
            if let Some(image) = handle.fork_image {
                self.remove_image(&image).await;
            }
        }
        Ok(())
    }
}

/// Sets up the provider from the environment, if configured.
pub fn from_lookup(
    lookup: &(dyn Fn(&str) -> Option<String> + Send + Sync),
) -> Result<Option<Arc<dyn super::Provider>>, String> {
    Ok(DockerConfig::from_lookup(lookup)?
        .map(|config| Arc::new(DockerProvider::new(config)) as Arc<dyn super::Provider>))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<String> + Send + Sync {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn settings_enable_docker_with_an_image() {
        assert!(
            DockerConfig::from_lookup(&lookup(&[("DOCKER_HOST", "tcp://x:2375")]))
                .unwrap()
                .is_none()
        );
        let config = DockerConfig::from_lookup(&lookup(&[("SANDBOX_DOCKER_IMAGE", "debian:12")]))
            .unwrap()
            .unwrap();
        assert!(matches!(config.host, DockerHost::Unix(ref path) if path.ends_with("docker.sock")));
        assert_eq!(config.pids_limit, 1024);
        let tcp = DockerConfig::from_lookup(&lookup(&[
            ("SANDBOX_DOCKER_IMAGE", "debian:12"),
            ("DOCKER_HOST", "tcp://10.0.0.2:2375"),
            ("SANDBOX_DOCKER_MEMORY_MB", "512"),
        ]))
        .unwrap()
        .unwrap();
        assert!(matches!(tcp.host, DockerHost::Tcp(ref address) if address == "10.0.0.2:2375"));
        assert_eq!(tcp.memory_mb, Some(512));
        let ssh = lookup(&[
            ("SANDBOX_DOCKER_IMAGE", "debian:12"),
            ("DOCKER_HOST", "ssh://host"),
        ]);
        assert!(DockerConfig::from_lookup(&ssh).is_err());
        let pids = lookup(&[
            ("SANDBOX_DOCKER_IMAGE", "debian:12"),
            ("SANDBOX_DOCKER_PIDS_LIMIT", "-1"),
        ]);
        assert!(DockerConfig::from_lookup(&pids).is_err());
    }

    #[test]
    fn isolated_needs_the_engine_on_this_host() {
        let config = DockerConfig::from_lookup(&lookup(&[
            ("SANDBOX_DOCKER_IMAGE", "nightshift-sandbox"),
            ("SANDBOX_DOCKER_ISOLATED", "true"),
            ("NIGHTSHIFT_DATA_DIR", "/var/lib/nightshift"),
            ("SANDBOX_ISOLATED_ALLOW", "127.0.0.2"),
        ]))
        .unwrap()
        .unwrap();
        let (root, policy) = config.isolated.unwrap();
        assert_eq!(
            root,
            std::path::Path::new("/var/lib/nightshift/docker-egress")
        );
        assert!(policy.check("127.0.0.2".parse().unwrap(), 443, &[]).is_ok());
        assert!(
            policy
                .check("127.0.0.1".parse().unwrap(), 443, &[])
                .is_err()
        );
        let remote_engine = DockerConfig::from_lookup(&lookup(&[
            ("SANDBOX_DOCKER_IMAGE", "nightshift-sandbox"),
            ("SANDBOX_DOCKER_ISOLATED", "true"),
            ("DOCKER_HOST", "tcp://engine:2375"),
        ]));
        assert!(remote_engine.unwrap_err().contains("unix://"));
        let bad_allow = DockerConfig::from_lookup(&lookup(&[
            ("SANDBOX_DOCKER_IMAGE", "nightshift-sandbox"),
            ("SANDBOX_DOCKER_ISOLATED", "true"),
            ("SANDBOX_ISOLATED_ALLOW", "nonsense"),
        ]));
        assert!(bad_allow.unwrap_err().contains("SANDBOX_ISOLATED_ALLOW"));
        let off = DockerConfig::from_lookup(&lookup(&[("SANDBOX_DOCKER_IMAGE", "x")]))
            .unwrap()
            .unwrap();
        assert!(off.isolated.is_none());
    }

    #[test]
    fn numeric_users_own_written_files_themselves() {
        assert_eq!(numeric_owner("1000:1000"), Some((1000, 1000)));
        assert_eq!(numeric_owner("0:0"), Some((0, 0)));
        assert_eq!(numeric_owner("1001"), Some((1001, 1001)));
        assert_eq!(numeric_owner("sandbox"), None);
        assert_eq!(numeric_owner("1000:staff"), None);
    }

    #[test]
    fn image_names_are_path_safe() {
        assert_eq!(encode("ghcr.io/a/b:1"), "ghcr.io%2Fa%2Fb:1");
        assert_eq!(encode("a?b#c%"), "a%3Fb%23c%25");
    }
}
