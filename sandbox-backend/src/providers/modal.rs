//! The `modal` provider: sandboxes on Modal (<https://modal.com>), driven through
//! Modal's gRPC control plane the way libmodal's Go client v0.6.3 does it.
//!
//! - create: `AppGetOrCreate` (once) → `ImageGetOrCreate` (`FROM <image>`, once per
//!   image) → `SecretGetOrCreate` (an ephemeral secret holding the sandbox's
//!   environment, as the official clients pass `env`) → `SandboxCreate` (`sleep
//!   infinity`, working directory `/workspace`) → `SandboxTagsSet` (the create request
//!   has no tags) → `SandboxGetTaskId`, asked again until Modal gives the task
//!   ([`task`]).
//! - exec: `ContainerExec` of the command wrapped in its own process group (see
//!   [`super::remote`]), `ContainerExecPutInput` for stdin, `ContainerExecGetOutput`
//!   per stream (resumed from the last batch index) for output and the exit code.
//!   Timeouts and kills run `kill -s KILL -- -<pgid>` through a second `ContainerExec`.
//! - files: through commands (`base64`), confined to the workspace by `realpath`.
//! - fork and snapshots: `SandboxSnapshotFs` gives an image; a fork is a new sandbox
//!   from it. Templates: `ImageGetOrCreate` with Dockerfile commands.
//! - sleep and wake (`crate::sandboxes::sleep`): a stop ends a Modal sandbox and its
//!   filesystem, so a sleep first keeps the whole filesystem (workspace and home) as
//!   an image with `SandboxSnapshotFs`, recorded in the handle, then terminates the
//!   sandbox: nothing runs (or is billed as compute) while it sleeps. A wake is a new
//!   Modal sandbox from that image (as a fork is), tagged with the same backend id.
//!   The image is deleted (`ImageDelete`) once no sandbox needs it: after the next
//!   sleep kept a newer one, or when the sandbox is destroyed.
//! - tunnels: `SandboxGetTunnels` for the ports in `MODAL_PORTS`.
//! - reattach: the Modal sandbox id is the handle; `SandboxWait` with a zero timeout
//!   tells whether it still runs.
//!
//! Settings: `MODAL_TOKEN_ID` and `MODAL_TOKEN_SECRET` (the provider is enabled when
//! both are set), `MODAL_APP` (default `nightshift`), `MODAL_ENVIRONMENT`,
//! `MODAL_IMAGE` (default `debian:bookworm-slim`), `MODAL_SERVER_URL` (default
//! `https://api.modal.com:443`), `MODAL_PORTS` (comma-separated ports to expose
//! through tunnels, default none), `MODAL_POLL_SECS` (the long polls' length).
//!
//! The messages are checked against Modal's official `api.proto` in the tests (the
//! fake Modal server reads and writes them through it); see `docs/PROVIDERS.md`.

mod auth_token;
pub mod client;
pub mod proto;
mod shared;
mod shell;
mod task;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use nightshift_protocol::sandbox::{GATEWAY_PORT, GatewayStatus, NetworkMode};
use serde_json::json;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use self::client::ModalClient;
use self::shell::ModalShell;
use super::remote;
use super::{
    BuiltTemplate, Capabilities, FoundSandbox, GatewayPlace, ProviderError, ProviderHandle,
    Reconciled, RunnerPlacement, SandboxSpec, StdinStream, TemplateBuild, Tunnel,
};
use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;

pub const DEFAULT_SERVER_URL: &str = "https://api.modal.com:443";
pub const DEFAULT_IMAGE: &str = "debian:bookworm-slim";
/// The longest a Modal sandbox may live (Modal's own maximum is 24 hours).
const SANDBOX_LIFETIME_SECS: u32 = 24 * 60 * 60;
/// Long-poll length of Modal's waiting calls, as libmodal uses (`MODAL_POLL_SECS`).
const DEFAULT_POLL_SECS: f32 = 55.0;
/// How much longer than its long poll a waiting call may take before it is given up.
const POLL_MARGIN: Duration = Duration::from_secs(10);

/// The provider's settings.
#[derive(Debug, Clone)]
pub struct ModalConfig {
    pub server_url: String,
    pub token_id: String,
    pub token_secret: nightshift_protocol::redacted::Redacted<String>,
    pub app_name: String,
    pub environment: String,
    pub image: String,
    pub ports: Vec<u16>,
    pub workspace: String,
    /// Modal's image builder version (`MODAL_IMAGE_BUILDER_VERSION`, libmodal's
    /// default `2024.10`).
    pub image_builder_version: String,
    /// How long Modal may hold one waiting call (task id, output, image build) open
    /// before answering that nothing happened yet; the client then asks again.
    pub poll_secs: f32,
}

impl ModalConfig {
    /// The deadline of one waiting call: its long poll and a margin.
    pub fn poll_deadline(&self) -> Duration {
        Duration::from_secs_f32(self.poll_secs) + POLL_MARGIN
    }

    /// `None` when Modal is not configured (no token).
    pub fn from_lookup(
        lookup: &(dyn Fn(&str) -> Option<String> + Send + Sync),
    ) -> Result<Option<ModalConfig>, String> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let (token_id, token_secret) = match (get("MODAL_TOKEN_ID"), get("MODAL_TOKEN_SECRET")) {
            (None, None) => return Ok(None),
            (Some(id), Some(secret)) => (id, secret),
            _ => {
                return Err(
                    "set both MODAL_TOKEN_ID and MODAL_TOKEN_SECRET to use the modal provider"
                        .into(),
                );
            }
        };
        let ports = match get("MODAL_PORTS") {
            None => Vec::new(),
            Some(text) => text
                .split(',')
                .map(|port| port.trim().parse::<u16>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("MODAL_PORTS={text:?} is not a list of ports"))?,
        };
        let poll_secs = match get("MODAL_POLL_SECS") {
            None => DEFAULT_POLL_SECS,
            Some(text) => text
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|secs| (1.0..=DEFAULT_POLL_SECS).contains(secs))
                .ok_or_else(|| {
                    format!("MODAL_POLL_SECS={text:?} is not a number of seconds from 1 to 55")
                })?,
        };
        Ok(Some(ModalConfig {
            poll_secs,
            server_url: get("MODAL_SERVER_URL").unwrap_or_else(|| DEFAULT_SERVER_URL.into()),
            token_id,
            token_secret: token_secret.into(),
            app_name: get("MODAL_APP").unwrap_or_else(|| "nightshift".into()),
            environment: get("MODAL_ENVIRONMENT").unwrap_or_default(),
            image: get("MODAL_IMAGE").unwrap_or_else(|| DEFAULT_IMAGE.into()),
            ports,
            workspace: remote::DEFAULT_WORKSPACE.into(),
            image_builder_version: get("MODAL_IMAGE_BUILDER_VERSION")
                .unwrap_or_else(|| "2024.10".into()),
        }))
    }
}

pub struct ModalProvider {
    client: ModalClient,
    shell: ModalShell,
    config: ModalConfig,
    app_id: Mutex<Option<String>>,
    /// Image ids by their Dockerfile commands.
    images: Mutex<HashMap<Vec<String>, String>>,
}

/// What the backend persists for a Modal sandbox.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Handle {
    sandbox_id: String,
    task_id: String,
    /// The image the last sleep kept the filesystem in: what a wake starts from
    /// while the sandbox sleeps, and the image its sandbox runs from once woken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_id: Option<String>,
    /// Images of earlier sleeps that no sandbox runs from any more, deleted at the
    /// next stop, wake or destroy (kept here until a delete succeeded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired_image_ids: Vec<String>,
}

impl Handle {
    fn persisted(&self) -> ProviderHandle {
        ProviderHandle(serde_json::to_value(self).expect("a handle serializes"))
    }
}

impl ModalProvider {
    pub fn new(config: ModalConfig) -> Result<ModalProvider, String> {
        let client = ModalClient::new(
            &config.server_url,
            &config.token_id,
            config.token_secret.expose(),
        )?;
        Ok(ModalProvider {
            shell: ModalShell::new(client.clone(), &config),
            client,
            config,
            app_id: Mutex::new(None),
            images: Mutex::new(HashMap::new()),
        })
    }

    async fn app_id(&self) -> Result<String, ProviderError> {
        let mut cached = self.app_id.lock().await;
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        let response: proto::AppGetOrCreateResponse = self
            .client
            .unary(
                "AppGetOrCreate",
                proto::AppGetOrCreateRequest {
                    app_name: self.config.app_name.clone(),
                    environment_name: self.config.environment.clone(),
                    object_creation_type: proto::OBJECT_CREATION_TYPE_CREATE_IF_MISSING,
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        *cached = Some(response.app_id.clone());
        Ok(response.app_id)
    }

    /// Builds (or finds) the image of `dockerfile_commands`; `base_image_id` is
    /// `FROM base` when set.
    async fn image(
        &self,
        dockerfile_commands: Vec<String>,
        base_image_id: Option<String>,
    ) -> Result<(String, String), ProviderError> {
        let mut key = dockerfile_commands.clone();
        key.extend(base_image_id.clone());
        if let Some(id) = self.images.lock().await.get(&key) {
            return Ok((id.clone(), String::new()));
        }
        let app_id = self.app_id().await?;
        let base_images = base_image_id
            .map(|image_id| {
                vec![proto::BaseImage {
                    image_id,
                    docker_tag: "base".into(),
                }]
            })
            .unwrap_or_default();
        let response: proto::ImageGetOrCreateResponse = self
            .client
            .unary(
                "ImageGetOrCreate",
                proto::ImageGetOrCreateRequest {
                    image: Some(proto::Image {
                        base_images,
                        dockerfile_commands,
                    }),
                    app_id,
                    force_build: false,
                    builder_version: self.config.image_builder_version.clone(),
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        let mut result = response.result.filter(|result| result.status != 0);
        let mut last_entry_id = String::new();
        let deadline = tokio::time::Instant::now() + remote::CREATE_TIMEOUT;
        while result.is_none() {
            if tokio::time::Instant::now() > deadline {
                return Err(ProviderError::Unavailable(format!(
                    "Modal did not finish building image {} in time",
                    response.image_id
                )));
            }
            let mut stream = self
                .client
                .server_streaming::<_, proto::ImageJoinStreamingResponse>(
                    "ImageJoinStreaming",
                    proto::ImageJoinStreamingRequest {
                        image_id: response.image_id.clone(),
                        timeout: self.config.poll_secs,
                        last_entry_id: last_entry_id.clone(),
                    },
                    self.config.poll_deadline(),
                )
                .await?;
            while let Some(item) = stream.next().await {
                let item =
                    item.map_err(|status| client::status_error("ImageJoinStreaming", &status))?;
                if !item.entry_id.is_empty() {
                    last_entry_id = item.entry_id;
                }
                if let Some(done) = item.result.filter(|result| result.status != 0) {
                    result = Some(done);
                    break;
                }
                if item.eof {
                    break;
                }
            }
        }
        let result = result.expect("the loop ends with a result");
        if result.status != proto::GENERIC_STATUS_SUCCESS {
            return Err(ProviderError::InvalidRequest(format!(
                "Modal could not build image {}: {}",
                response.image_id, result.exception
            )));
        }
        self.images
            .lock()
            .await
            .insert(key, response.image_id.clone());
        Ok((response.image_id, result.exception))
    }

    async fn create_from_image(
        &self,
        sandbox: &SandboxSpec,
        image_id: String,
    ) -> Result<Handle, ProviderError> {
        let app_id = self.app_id().await?;
        let network_access = match sandbox.network {
            NetworkMode::None => proto::NETWORK_ACCESS_BLOCKED,
            NetworkMode::Isolated | NetworkMode::Private => proto::NETWORK_ACCESS_OPEN,
        };
        let open_ports = (!self.config.ports.is_empty()).then(|| proto::PortSpecs {
            ports: self
                .config
                .ports
                .iter()
                .map(|port| proto::PortSpec {
                    port: u32::from(*port),
                    unencrypted: false,
                })
                .collect(),
        });
        let secret_ids = self.environment_secret(sandbox).await?;
        let created: proto::SandboxCreateResponse = self
            .client
            .unary(
                "SandboxCreate",
                proto::SandboxCreateRequest {
                    app_id,
                    definition: Some(proto::Sandbox {
                        entrypoint_args: vec!["sleep".into(), "infinity".into()],
                        image_id,
                        timeout_secs: SANDBOX_LIFETIME_SECS,
                        workdir: Some(self.config.workspace.clone()),
                        open_ports,
                        network_access: Some(proto::NetworkAccess {
                            network_access_type: network_access,
                            allowed_cidrs: Vec::new(),
                        }),
                        enable_snapshot: false,
                        name: None,
                        idle_timeout_secs: None,
                        secret_ids,
                    }),
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        // `SandboxCreateRequest` has no tags in api.proto: they are set right after.
        let started = match self
            .set_tags(&created.sandbox_id, Self::all_tags(sandbox, None))
            .await
        {
            Ok(()) => self.wait_for_task(&created.sandbox_id).await,
            Err(error) => Err(error),
        };
        let task_id = match started {
            Ok(task::TaskAnswer::Running(task_id)) => task_id,
            other => {
                self.terminate(&created.sandbox_id).await;
                return Err(match other {
                    Err(error) => error,
                    Ok(task::TaskAnswer::Ended(why)) => ProviderError::Unavailable(format!(
                        "Modal sandbox {} ended before it started: {why}",
                        created.sandbox_id
                    )),
                    Ok(_) => ProviderError::Unavailable("Modal gave the sandbox no task".into()),
                });
            }
        };
        Ok(Handle {
            sandbox_id: created.sandbox_id,
            task_id,
            image_id: None,
            retired_image_ids: Vec::new(),
        })
    }

    /// The sandbox's environment as an ephemeral secret, the way both official clients
    /// pass `env` (`Sandbox` has no environment field in api.proto); none when empty.
    async fn environment_secret(
        &self,
        sandbox: &SandboxSpec,
    ) -> Result<Vec<String>, ProviderError> {
        if sandbox.env.is_empty() {
            return Ok(Vec::new());
        }
        let secret: proto::SecretGetOrCreateResponse = self
            .client
            .unary(
                "SecretGetOrCreate",
                proto::SecretGetOrCreateRequest {
                    environment_name: self.config.environment.clone(),
                    object_creation_type: proto::OBJECT_CREATION_TYPE_EPHEMERAL,
                    env_dict: sandbox.env.clone().into_iter().collect(),
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        Ok(vec![secret.secret_id])
    }

    /// Best effort, for a sandbox that failed to come up.
    async fn terminate(&self, sandbox_id: &str) {
        if let Err(error) = self.end(sandbox_id).await {
            tracing::warn!(%error, sandbox_id, "could not terminate a Modal sandbox");
        }
    }

    /// `SandboxTerminate`; a sandbox Modal no longer knows is ended already.
    async fn end(&self, sandbox_id: &str) -> Result<(), ProviderError> {
        let result: Result<proto::SandboxTerminateResponse, _> = self
            .client
            .unary(
                "SandboxTerminate",
                proto::SandboxTerminateRequest {
                    sandbox_id: sandbox_id.to_string(),
                },
                remote::CALL_TIMEOUT,
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if unknown_to_modal(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `SandboxSnapshotFs` of a running sandbox: the id of an image of its whole
    /// filesystem.
    async fn snapshot_image(&self, sandbox_id: &str) -> Result<String, ProviderError> {
        let response: proto::SandboxSnapshotFsResponse = self
            .client
            .unary(
                "SandboxSnapshotFs",
                proto::SandboxSnapshotFsRequest {
                    sandbox_id: sandbox_id.to_string(),
                    timeout: self.config.poll_secs,
                },
                self.config.poll_deadline(),
            )
            .await?;
        match response.result {
            Some(result) if result.status != proto::GENERIC_STATUS_SUCCESS => {
                Err(ProviderError::Unavailable(format!(
                    "Modal could not snapshot the sandbox: {}",
                    result.exception
                )))
            }
            _ if response.image_id.is_empty() => Err(ProviderError::Unavailable(
                "Modal returned a snapshot without an image".into(),
            )),
            _ => Ok(response.image_id),
        }
    }

    /// `ImageDelete` of each image (one Modal no longer knows is deleted already);
    /// answers those that could not be deleted.
    async fn delete_images(&self, image_ids: &[String]) -> Vec<String> {
        let mut left = Vec::new();
        for image_id in image_ids {
            let result: Result<proto::Empty, _> = self
                .client
                .unary(
                    "ImageDelete",
                    proto::ImageDeleteRequest {
                        image_id: image_id.clone(),
                    },
                    remote::CALL_TIMEOUT,
                )
                .await;
            match result {
                Ok(_) => {}
                Err(error) if unknown_to_modal(&error) => {}
                Err(error) => {
                    tracing::warn!(%error, image_id, "could not delete a Modal image");
                    left.push(image_id.clone());
                }
            }
        }
        left
    }
}

/// Whether Modal answered that it does not know the object of a call (gRPC
/// `NOT_FOUND`, see [`client::status_error`]).
fn unknown_to_modal(error: &ProviderError) -> bool {
    matches!(error, ProviderError::Unavailable(message) if message.contains("does not know"))
}

fn handle_of(sandbox: &SandboxSpec) -> Result<Handle, ProviderError> {
    remote::exec::handle_of(sandbox, "Modal sandbox")
}

#[async_trait]
impl super::Provider for ModalProvider {
    fn name(&self) -> &'static str {
        "modal"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Modal sandboxes are outside our network: "isolated" holds by
            // construction; "private" (reaching the deployment's own services) cannot.
            network_modes: vec![NetworkMode::Isolated, NetworkMode::None],
            isolated: true,
            fork: true,
            templates: true,
            stdin: true,
            processes: true,
            snapshots: true,
            reattach: true,
            // A stop ends the sandbox with its filesystem; a sleep keeps it first.
            restart: false,
            sleep: true,
            tunnels: !self.config.ports.is_empty(),
            gateway: false,
            package_managers: vec!["apt".into(), "pip".into(), "npm".into()],
            ..Capabilities::default()
        }
    }

    async fn create(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let image_id = match sandbox
            .template
            .as_ref()
            .and_then(|template| template.handle.0.get("image_id"))
            .and_then(|id| id.as_str())
        {
            Some(id) => id.to_string(),
            None => {
                self.image(vec![format!("FROM {}", self.config.image)], None)
                    .await?
                    .0
            }
        };
        let handle = self.create_from_image(sandbox, image_id).await?.persisted();
        // Make sure the workspace exists (an image may not have it).
        let mut with_handle = sandbox.clone();
        with_handle.handle = handle.clone();
        if let Err(error) = remote::exec::make_workspace(&self.shell, &with_handle).await {
            if let Ok(handle) = handle_of(&with_handle) {
                self.terminate(&handle.sandbox_id).await;
            }
            return Err(error);
        }
        Ok(handle)
    }

    fn runner_placement(&self, _sandbox: &SandboxSpec) -> RunnerPlacement {
        remote::exec::placement(&self.config.workspace)
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
        remote::exec::read_file(&self.shell, sandbox, path).await
    }

    async fn write_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
        contents: Vec<u8>,
    ) -> Result<(), ProviderError> {
        remote::exec::write_file(&self.shell, sandbox, path, &contents).await
    }

    async fn fork(
        &self,
        source: &SandboxSpec,
        target: &SandboxSpec,
    ) -> Result<ProviderHandle, ProviderError> {
        let snapshot = self.snapshot(source).await?;
        let image_id = snapshot.0["image_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(self.create_from_image(target, image_id).await?.persisted())
    }

    async fn build_template(&self, build: &TemplateBuild) -> Result<BuiltTemplate, ProviderError> {
        let base = build.spec.base.as_deref().unwrap_or(&self.config.image);
        let lines =
            remote::dockerfile::template_dockerfile(base, &self.config.workspace, &build.spec)?;
        let (image_id, log) = self.image(lines, None).await?;
        Ok(BuiltTemplate {
            handle: ProviderHandle(json!({ "image_id": image_id })),
            log,
        })
    }

    async fn snapshot(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let handle = handle_of(sandbox)?;
        let image_id = self.snapshot_image(&handle.sandbox_id).await?;
        Ok(ProviderHandle(json!({ "image_id": image_id })))
    }

    /// Keeps the whole filesystem as an image; the image the sandbox was woken from
    /// (if any) is retired, to be deleted once this one is recorded.
    async fn keep_for_sleep(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let mut handle = handle_of(sandbox)?;
        let image_id = self.snapshot_image(&handle.sandbox_id).await?;
        if let Some(previous) = handle.image_id.replace(image_id) {
            handle.retired_image_ids.push(previous);
        }
        Ok(handle.persisted())
    }

    /// Wakes a sandbox put to sleep: a new Modal sandbox from the image its sleep
    /// kept (the backend asks only for a sandbox recorded asleep).
    async fn start(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let asleep = handle_of(sandbox)?;
        let image_id = asleep.image_id.clone().ok_or_else(|| {
            ProviderError::InvalidRequest(format!(
                "no filesystem image was kept for sandbox {}: a stopped Modal sandbox \
                 keeps nothing unless it was put to sleep",
                sandbox.id
            ))
        })?;
        // Whatever runs under the old id must not run twice (a stop that could not
        // end it is retried here).
        self.end(&asleep.sandbox_id).await?;
        let retired = self.delete_images(&asleep.retired_image_ids).await;
        let mut woken = self.create_from_image(sandbox, image_id.clone()).await?;
        woken.image_id = Some(image_id);
        woken.retired_image_ids = retired;
        Ok(woken.persisted())
    }

    async fn tunnels(&self, sandbox: &SandboxSpec) -> Result<Vec<Tunnel>, ProviderError> {
        let handle = handle_of(sandbox)?;
        let response: proto::SandboxGetTunnelsResponse = self
            .client
            .unary(
                "SandboxGetTunnels",
                proto::SandboxGetTunnelsRequest {
                    sandbox_id: handle.sandbox_id,
                    timeout: 10.0,
                },
                Duration::from_secs(15),
            )
            .await?;
        Ok(response
            .tunnels
            .into_iter()
            .map(|tunnel| Tunnel {
                port: u16::try_from(tunnel.container_port).unwrap_or(0),
                url: if tunnel.port == 443 {
                    format!("https://{}", tunnel.host)
                } else {
                    format!("https://{}:{}", tunnel.host, tunnel.port)
                },
            })
            .collect())
    }

    /// The tunnel of the gateway's port, when `MODAL_PORTS` opens it. The image
    /// starts the gateway itself, so whether it runs is the gateway's `/healthz`
    /// to tell.
    async fn gateway(&self, sandbox: &SandboxSpec) -> Result<GatewayPlace, ProviderError> {
        if !self.config.ports.contains(&GATEWAY_PORT) {
            return Err(ProviderError::unsupported(
                "modal",
                "gateway tunnels unless MODAL_PORTS includes 9000",
            ));
        }
        let tunnel = self
            .tunnels(sandbox)
            .await?
            .into_iter()
            .find(|tunnel| tunnel.port == GATEWAY_PORT)
            .ok_or_else(|| {
                ProviderError::Unavailable("Modal reports no tunnel for the gateway's port".into())
            })?;
        Ok(GatewayPlace::Remote {
            url: tunnel.url,
            headers: BTreeMap::new(),
            status: GatewayStatus::Unknown,
        })
    }

    async fn reconcile(&self, sandbox: &SandboxSpec) -> Result<Reconciled, ProviderError> {
        let Ok(handle) = handle_of(sandbox) else {
            return Ok(Reconciled::Gone("no Modal sandbox was recorded".into()));
        };
        let waited: Result<proto::SandboxWaitResponse, _> = self
            .client
            .unary(
                "SandboxWait",
                proto::SandboxWaitRequest {
                    sandbox_id: handle.sandbox_id.clone(),
                    timeout: 0.0,
                },
                remote::CALL_TIMEOUT,
            )
            .await;
        match waited {
            Ok(response) => match response.result {
                Some(result) if result.status != proto::GENERIC_STATUS_UNSPECIFIED => {
                    Ok(Reconciled::Gone(format!(
                        "the Modal sandbox {} ended while the backend was down ({})",
                        handle.sandbox_id,
                        status_name(result.status)
                    )))
                }
                _ => Ok(Reconciled::Running(sandbox.handle.clone())),
            },
            Err(ProviderError::Unavailable(message)) if message.contains("does not know") => Ok(
                Reconciled::Gone(format!("Modal no longer knows the sandbox: {message}")),
            ),
            Err(error) => Err(error),
        }
    }

    fn shares_sandboxes(&self) -> bool {
        true
    }

    async fn find_sandbox(&self, id: &str) -> Result<Option<FoundSandbox>, ProviderError> {
        self.find_shared(id).await
    }

    async fn list_sandboxes(&self) -> Result<Vec<FoundSandbox>, ProviderError> {
        self.list_shared().await
    }

    async fn publish_activity(
        &self,
        sandbox: &SandboxSpec,
        at_millis: i64,
    ) -> Result<(), ProviderError> {
        self.publish(sandbox, at_millis).await
    }

    async fn shared_activity(&self, sandbox: &SandboxSpec) -> Result<Option<i64>, ProviderError> {
        self.activity(sandbox).await
    }

    async fn stop(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        // Modal keeps no filesystem of a terminated sandbox: stopping ends it (a
        // sleep kept it as an image first). Failing to end it is an error: it would
        // go on running, and billing, unseen.
        if let Ok(handle) = handle_of(sandbox) {
            self.end(&handle.sandbox_id).await?;
            self.delete_images(&handle.retired_image_ids).await;
        }
        Ok(())
    }

    /// Ends the sandbox and deletes every image kept for it, so nothing of a
    /// sleeping sandbox outlives it; an image that could not be deleted fails the
    /// destroy (the sandbox goes to `error`, and destroying it again retries).
    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        if let Ok(handle) = handle_of(sandbox) {
            self.end(&handle.sandbox_id).await?;
            let images: Vec<String> = handle
                .image_id
                .into_iter()
                .chain(handle.retired_image_ids)
                .collect();
            let left = self.delete_images(&images).await;
            if !left.is_empty() {
                return Err(ProviderError::Unavailable(format!(
                    "Modal could not delete the sandbox's snapshot images {}; destroy it again",
                    left.join(", ")
                )));
            }
        }
        Ok(())
    }
}

fn status_name(status: i32) -> &'static str {
    match status {
        proto::GENERIC_STATUS_SUCCESS => "exited",
        proto::GENERIC_STATUS_FAILURE => "failed",
        proto::GENERIC_STATUS_TERMINATED => "terminated",
        proto::GENERIC_STATUS_TIMEOUT => "timed out",
        proto::GENERIC_STATUS_IDLE_TIMEOUT => "idle timeout",
        _ => "ended",
    }
}

/// Sets up the provider from the environment, if configured.
pub fn from_lookup(
    lookup: &(dyn Fn(&str) -> Option<String> + Send + Sync),
) -> Result<Option<Arc<dyn super::Provider>>, String> {
    match ModalConfig::from_lookup(lookup)? {
        None => Ok(None),
        Some(config) => Ok(Some(Arc::new(ModalProvider::new(config)?))),
    }
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
    fn settings_enable_modal_only_with_both_token_parts() {
        assert!(ModalConfig::from_lookup(&lookup(&[])).unwrap().is_none());
        let half = ModalConfig::from_lookup(&lookup(&[("MODAL_TOKEN_ID", "ak-1")]));
        assert!(half.unwrap_err().contains("MODAL_TOKEN_SECRET"));
        let config = ModalConfig::from_lookup(&lookup(&[
            ("MODAL_TOKEN_ID", "ak-1"),
            ("MODAL_TOKEN_SECRET", "as-1"),
            ("MODAL_PORTS", "9000, 8080"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.server_url, DEFAULT_SERVER_URL);
        assert_eq!(config.app_name, "nightshift");
        assert_eq!(config.image, DEFAULT_IMAGE);
        assert_eq!(config.ports, [9000, 8080]);
        assert!(!format!("{config:?}").contains("as-1"));
        let bad = ModalConfig::from_lookup(&lookup(&[
            ("MODAL_TOKEN_ID", "ak-1"),
            ("MODAL_TOKEN_SECRET", "as-1"),
            ("MODAL_PORTS", "http"),
        ]));
        assert!(bad.is_err());
    }

    #[test]
    fn a_waiting_call_may_outlast_its_long_poll() {
        let with = |poll: &'static str| {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
                ("MODAL_TOKEN_ID", "ak-1"),
                ("MODAL_TOKEN_SECRET", "as-1"),
                ("MODAL_POLL_SECS", poll),
            ]));
            ModalConfig::from_lookup(&lookup(pairs))
        };
        let default = ModalConfig::from_lookup(&lookup(&[
            ("MODAL_TOKEN_ID", "ak-1"),
            ("MODAL_TOKEN_SECRET", "as-1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(default.poll_secs, 55.0);
        // A silent command's output call sends nothing, headers included, until its
        // poll ends: the deadline to open it must lie past the poll.
        for config in [default, with("2").unwrap().unwrap()] {
            assert!(config.poll_deadline() > Duration::from_secs_f32(config.poll_secs));
        }
        assert!(with("0").is_err());
        assert!(with("56").is_err());
        assert!(with("soon").is_err());
    }
}
