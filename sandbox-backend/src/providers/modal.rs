//! The `modal` provider: sandboxes on Modal (<https://modal.com>), driven through
//! Modal's gRPC control plane the way libmodal's Go client v0.6.3 does it.
//!
//! - create: `AppGetOrCreate` (once) → `ImageGetOrCreate` (`FROM <image>`, once per
//!   image) → `SandboxCreate` (`sleep infinity`, working directory `/workspace`) →
//!   `SandboxGetTaskId`.
//! - exec: `ContainerExec` of the command wrapped in its own process group (see
//!   [`super::remote`]), `ContainerExecPutInput` for stdin, `ContainerExecGetOutput`
//!   per stream (resumed from the last batch index) for output and the exit code.
//!   Timeouts and kills run `kill -KILL -- -<pgid>` through a second `ContainerExec`.
//! - files: through commands (`base64`), confined to the workspace by `realpath`.
//! - fork and snapshots: `SandboxSnapshotFs` gives an image; a fork is a new sandbox
//!   from it. Templates: `ImageGetOrCreate` with Dockerfile commands.
//! - tunnels: `SandboxGetTunnels` for the ports in `MODAL_PORTS`.
//! - reattach: the Modal sandbox id is the handle; `SandboxWait` with a zero timeout
//!   tells whether it still runs.
//!
//! Settings: `MODAL_TOKEN_ID` and `MODAL_TOKEN_SECRET` (the provider is enabled when
//! both are set), `MODAL_APP` (default `nightshift`), `MODAL_ENVIRONMENT`,
//! `MODAL_IMAGE` (default `debian:bookworm-slim`), `MODAL_SERVER_URL` (default
//! `https://api.modal.com:443`), `MODAL_PORTS` (comma-separated ports to expose
//! through tunnels, default none).

pub mod client;
pub mod proto;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use nightshift_protocol::sandbox::{GATEWAY_PORT, GatewayStatus, NetworkMode};
use serde_json::json;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use self::client::ModalClient;
use super::remote::{self, RemoteEvent};
use super::shell::shell_quote;
use super::{
    BuiltTemplate, Capabilities, GatewayPlace, ProviderError, ProviderHandle, Reconciled,
    RunnerPlacement, SandboxSpec, StdinStream, TemplateBuild, Tunnel,
};
use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;

pub const DEFAULT_SERVER_URL: &str = "https://api.modal.com:443";
pub const DEFAULT_IMAGE: &str = "debian:bookworm-slim";
/// The longest a Modal sandbox may live (Modal's own maximum is 24 hours).
const SANDBOX_LIFETIME_SECS: u32 = 24 * 60 * 60;
/// Long-poll length of Modal's waiting calls, as libmodal uses.
const POLL_SECS: f32 = 55.0;

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
}

impl ModalConfig {
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
        Ok(Some(ModalConfig {
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
}

impl ModalProvider {
    pub fn new(config: ModalConfig) -> Result<ModalProvider, String> {
        let client = ModalClient::new(
            &config.server_url,
            &config.token_id,
            config.token_secret.expose(),
        )?;
        Ok(ModalProvider {
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
                        timeout: POLL_SECS,
                        last_entry_id: last_entry_id.clone(),
                    },
                    Duration::from_secs(60),
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
    ) -> Result<ProviderHandle, ProviderError> {
        let app_id = self.app_id().await?;
        let network_access = match sandbox.network {
            NetworkMode::None => proto::NETWORK_ACCESS_BLOCKED,
            NetworkMode::Isolated | NetworkMode::Private => proto::NETWORK_ACCESS_OPEN,
        };
        let mut tags = vec![proto::SandboxTag {
            tag_name: "nightshift.sandbox".into(),
            tag_value: sandbox.id.clone(),
        }];
        tags.extend(
            sandbox
                .labels
                .iter()
                .map(|(name, value)| proto::SandboxTag {
                    tag_name: name.clone(),
                    tag_value: value.clone(),
                }),
        );
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
                        environment_variables: Some(proto::StringMap {
                            contents: sandbox.env.clone().into_iter().collect(),
                        }),
                    }),
                    tags,
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        let task: proto::SandboxGetTaskIdResponse = self
            .client
            .unary(
                "SandboxGetTaskId",
                proto::SandboxGetTaskIdRequest {
                    sandbox_id: created.sandbox_id.clone(),
                    timeout: Some(POLL_SECS),
                    wait_until_ready: true,
                },
                remote::CREATE_TIMEOUT,
            )
            .await?;
        let Some(task_id) = task.task_id else {
            let why = task
                .task_result
                .map(|result| result.exception)
                .unwrap_or_default();
            self.terminate(&created.sandbox_id).await;
            return Err(ProviderError::Unavailable(format!(
                "Modal sandbox {} ended before it started: {why}",
                created.sandbox_id
            )));
        };
        let handle = Handle {
            sandbox_id: created.sandbox_id,
            task_id,
        };
        Ok(ProviderHandle(
            serde_json::to_value(handle).expect("a handle serializes"),
        ))
    }

    async fn terminate(&self, sandbox_id: &str) {
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
        if let Err(error) = result {
            tracing::warn!(%error, sandbox_id, "could not terminate a Modal sandbox");
        }
    }

    /// Starts `plan` and returns its run; `stdin` feeds it (None: end of input at once).
    async fn start_exec(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        stdin: Option<StdinStream>,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        let handle = handle_of(sandbox)?;
        let plan = remote::with_default_cwd(sandbox, plan);
        let run_id = remote::run_id();
        let argv = remote::command_argv(&self.config.workspace, &sandbox.env, &plan, &run_id);
        let started: proto::ContainerExecResponse = self
            .client
            .unary(
                "ContainerExec",
                proto::ContainerExecRequest {
                    task_id: handle.task_id.clone(),
                    command: argv,
                    // A backstop in case this backend goes away mid-command: Modal
                    // ends a plain exec a little after its own timeout.
                    timeout_secs: if stdin.is_some() {
                        0
                    } else {
                        u32::try_from(plan.timeout.as_secs().saturating_add(30)).unwrap_or(u32::MAX)
                    },
                    workdir: Some(self.config.workspace.clone()),
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        let exec_id = started.exec_id;

        // Input: the plan's stdin or the stream, then end-of-file.
        let input_client = self.client.clone();
        let input_exec = exec_id.clone();
        let fixed_input = plan.stdin.clone();
        tokio::spawn(async move {
            let mut index = 1u64;
            let send = |message: Vec<u8>, index: u64, eof: bool| {
                let client = input_client.clone();
                let exec_id = input_exec.clone();
                async move {
                    client
                        .unary::<_, proto::Empty>(
                            "ContainerExecPutInput",
                            proto::ContainerExecPutInputRequest {
                                exec_id,
                                input: Some(proto::RuntimeInputMessage {
                                    message,
                                    message_index: index,
                                    eof,
                                }),
                            },
                            remote::CALL_TIMEOUT,
                        )
                        .await
                }
            };
            if let Some(text) = fixed_input.filter(|text| !text.is_empty()) {
                if send(text.into_bytes(), index, false).await.is_err() {
                    return;
                }
                index += 1;
            }
            if let Some(mut stream) = stdin {
                while let Some(bytes) = stream.recv().await {
                    if send(bytes, index, false).await.is_err() {
                        return;
                    }
                    index += 1;
                }
            }
            let _ = send(Vec::new(), index, true).await;
        });

        // Output: one resumable stream per file descriptor, merged.
        let (sender, receiver) = mpsc::channel(64);
        let stdout = tokio::spawn(pump_output(
            self.client.clone(),
            exec_id.clone(),
            proto::FILE_DESCRIPTOR_STDOUT,
            sender.clone(),
        ));
        let stderr = tokio::spawn(pump_output(
            self.client.clone(),
            exec_id.clone(),
            proto::FILE_DESCRIPTOR_STDERR,
            sender.clone(),
        ));
        tokio::spawn(async move {
            let out = stdout.await.unwrap_or(Err(ProviderError::Unavailable(
                "the Modal output reader stopped".into(),
            )));
            let err = stderr.await.unwrap_or(Ok(None));
            let event = match (out, err) {
                (Ok(Some(code)), _) | (Ok(None), Ok(Some(code))) => Ok(RemoteEvent::Exit(code)),
                (Err(error), _) | (_, Err(error)) => Err(error),
                (Ok(None), Ok(None)) => Err(ProviderError::Unavailable(
                    "Modal ended the output without an exit code".into(),
                )),
            };
            let _ = sender.send(event).await;
        });
        let events = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|event| (event, receiver))
        })
        .boxed();

        let kill_client = self.client.clone();
        let task_id = handle.task_id.clone();
        let workspace = self.config.workspace.clone();
        let kill: remote::Killer = Box::new(move || {
            async move {
                let result = kill_client
                    .unary::<_, proto::ContainerExecResponse>(
                        "ContainerExec",
                        proto::ContainerExecRequest {
                            task_id,
                            command: vec!["sh".into(), "-c".into(), remote::kill_command(&run_id)],
                            timeout_secs: 10,
                            workdir: Some(workspace),
                        },
                        remote::CALL_TIMEOUT,
                    )
                    .await;
                if let Ok(kill_exec) = result {
                    let _ = kill_client
                        .unary::<_, proto::ContainerExecWaitResponse>(
                            "ContainerExecWait",
                            proto::ContainerExecWaitRequest {
                                exec_id: kill_exec.exec_id,
                                timeout: 10.0,
                            },
                            Duration::from_secs(12),
                        )
                        .await;
                }
            }
            .boxed()
        });
        Ok(remote::drive(events, kill, plan.timeout, cancel))
    }

    async fn run_to_end(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
    ) -> Result<(String, String, nightshift_protocol::sandbox::ExecExit), ProviderError> {
        let run = self
            .start_exec(sandbox, plan, None, CancellationToken::new())
            .await?;
        Ok(remote::collect_raw(run).await)
    }
}

/// Reads one stream of an exec until its exit code, resuming after the last batch
/// when Modal ends a long poll. Returns the exit code if this stream saw it.
async fn pump_output(
    client: ModalClient,
    exec_id: String,
    file_descriptor: i32,
    sender: mpsc::Sender<Result<RemoteEvent, ProviderError>>,
) -> Result<Option<i32>, ProviderError> {
    let mut last_batch_index = 0u64;
    let mut retries = 10u32;
    loop {
        let opened = client
            .server_streaming::<_, proto::RuntimeOutputBatch>(
                "ContainerExecGetOutput",
                proto::ContainerExecGetOutputRequest {
                    exec_id: exec_id.clone(),
                    timeout: POLL_SECS,
                    last_batch_index,
                    file_descriptor,
                    get_raw_bytes: true,
                },
                Duration::from_secs(60),
            )
            .await;
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(error) if retries > 0 => {
                retries -= 1;
                tracing::debug!(%error, "retrying Modal output");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        while let Some(batch) = stream.next().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(status) if retries > 0 => {
                    retries -= 1;
                    tracing::debug!(%status, "Modal output stream broke; resuming");
                    break;
                }
                Err(status) => return Err(client::status_error("ContainerExecGetOutput", &status)),
            };
            for item in batch.items {
                let bytes = if item.message_bytes.is_empty() {
                    item.message.into_bytes()
                } else {
                    item.message_bytes
                };
                if bytes.is_empty() {
                    continue;
                }
                let event = if item.file_descriptor == proto::FILE_DESCRIPTOR_STDERR
                    || (item.file_descriptor == 0
                        && file_descriptor == proto::FILE_DESCRIPTOR_STDERR)
                {
                    RemoteEvent::Stderr(bytes)
                } else {
                    RemoteEvent::Stdout(bytes)
                };
                if sender.send(Ok(event)).await.is_err() {
                    return Ok(None);
                }
            }
            last_batch_index = batch.batch_index;
            if let Some(code) = batch.exit_code {
                return Ok(Some(code));
            }
        }
        if sender.is_closed() {
            return Ok(None);
        }
    }
}

fn handle_of(sandbox: &SandboxSpec) -> Result<Handle, ProviderError> {
    serde_json::from_value(sandbox.handle.0.clone()).map_err(|_| {
        ProviderError::Unavailable(format!(
            "sandbox {} has no Modal sandbox recorded",
            sandbox.id
        ))
    })
}

/// Dockerfile commands for a template (also used by the Docker provider).
pub fn template_dockerfile(
    base: &str,
    workspace: &str,
    spec: &nightshift_protocol::sandbox::TemplateSpec,
) -> Result<Vec<String>, ProviderError> {
    let mut lines = vec![format!("FROM {base}"), format!("WORKDIR {workspace}")];
    let mut by_manager: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for package in &spec.packages {
        let (manager, name) = package.split_once(':').ok_or_else(|| {
            ProviderError::InvalidRequest(format!(
                "package {package:?} is not `manager:name` (apt, pip or npm)"
            ))
        })?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+=@/:<>~".contains(&b))
        {
            return Err(ProviderError::InvalidRequest(format!(
                "package name {name:?} has characters that are not allowed"
            )));
        }
        match manager {
            "apt" | "pip" | "npm" => by_manager
                .entry(manager)
                .or_default()
                .push(shell_quote(name)),
            other => {
                return Err(ProviderError::InvalidRequest(format!(
                    "package manager {other:?} is not supported (apt, pip, npm)"
                )));
            }
        }
    }
    for (manager, names) in by_manager {
        let names = names.join(" ");
        lines.push(match manager {
            "apt" => format!(
                "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {names} && rm -rf /var/lib/apt/lists/*"
            ),
            "pip" => format!("RUN pip install --no-cache-dir {names}"),
            _ => format!("RUN npm install -g {names}"),
        });
    }
    let workdir = match spec.workdir.as_deref() {
        None | Some("") | Some(".") => workspace.to_string(),
        Some(dir) if dir.starts_with('/') || dir.split('/').any(|part| part == "..") => {
            return Err(ProviderError::InvalidRequest(format!(
                "template workdir {dir:?} must be relative to the workspace, without `..`"
            )));
        }
        Some(dir) => format!("{}/{dir}", workspace.trim_end_matches('/')),
    };
    let mut env = String::new();
    for (name, value) in &spec.env {
        env.push(' ');
        env.push_str(&shell_quote(&format!("{name}={value}")));
    }
    for command in &spec.commands {
        if command.contains('\n') {
            return Err(ProviderError::InvalidRequest(
                "template commands must be single lines".into(),
            ));
        }
        lines.push(format!(
            "RUN mkdir -p {dir} && cd {dir} && env{env} sh -c {command}",
            dir = shell_quote(&workdir),
            command = shell_quote(command),
        ));
    }
    Ok(lines)
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
            restart: false,
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
        let handle = self.create_from_image(sandbox, image_id).await?;
        // Make sure the workspace exists (an image may not have it).
        let mut with_handle = sandbox.clone();
        with_handle.handle = handle.clone();
        let mkdir = ExecPlan {
            argv: vec!["mkdir".into(), "-p".into(), self.config.workspace.clone()],
            env: Default::default(),
            cwd: Some("/".into()),
            timeout: remote::CALL_TIMEOUT,
            stdin: None,
        };
        let (_, stderr, exit) = self.run_to_end(&with_handle, mkdir).await?;
        if exit.code != 0 {
            if let Ok(handle) = handle_of(&with_handle) {
                self.terminate(&handle.sandbox_id).await;
            }
            return Err(ProviderError::Unavailable(format!(
                "cannot create the workspace in the Modal sandbox: {stderr}"
            )));
        }
        Ok(handle)
    }

    fn runner_placement(&self, _sandbox: &SandboxSpec) -> RunnerPlacement {
        RunnerPlacement {
            workspace_dir: self.config.workspace.clone(),
            sandbox_workspace_dir: self.config.workspace.clone(),
            command_wrapper: Vec::new(),
            bridge: Vec::new(),
            opencode: None,
        }
    }

    async fn exec(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        self.start_exec(sandbox, plan, None, cancel).await
    }

    async fn spawn(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        stdin: StdinStream,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        self.start_exec(sandbox, plan, Some(stdin), cancel).await
    }

    async fn read_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, ProviderError> {
        let plan = remote::read_file_plan(&self.config.workspace, path);
        let (stdout, stderr, exit) = self.run_to_end(sandbox, plan).await?;
        remote::read_file_result(path, &stdout, &stderr, &exit)
    }

    async fn write_file(
        &self,
        sandbox: &SandboxSpec,
        path: &WorkspacePath,
        contents: Vec<u8>,
    ) -> Result<(), ProviderError> {
        let plan = remote::write_file_plan(&self.config.workspace, path, &contents);
        let (_, stderr, exit) = self.run_to_end(sandbox, plan).await?;
        remote::file_error(path, &stderr, &exit)
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
        self.create_from_image(target, image_id).await
    }

    async fn build_template(&self, build: &TemplateBuild) -> Result<BuiltTemplate, ProviderError> {
        let base = build.spec.base.as_deref().unwrap_or(&self.config.image);
        let lines = template_dockerfile(base, &self.config.workspace, &build.spec)?;
        let (image_id, log) = self.image(lines, None).await?;
        Ok(BuiltTemplate {
            handle: ProviderHandle(json!({ "image_id": image_id })),
            log,
        })
    }

    async fn snapshot(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let handle = handle_of(sandbox)?;
        let response: proto::SandboxSnapshotFsResponse = self
            .client
            .unary(
                "SandboxSnapshotFs",
                proto::SandboxSnapshotFsRequest {
                    sandbox_id: handle.sandbox_id,
                    timeout: POLL_SECS,
                },
                Duration::from_secs(60),
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
            _ => Ok(ProviderHandle(json!({ "image_id": response.image_id }))),
        }
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

    async fn stop(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        // Modal keeps no filesystem of a terminated sandbox: stopping ends it.
        if let Ok(handle) = handle_of(sandbox) {
            self.terminate(&handle.sandbox_id).await;
        }
        Ok(())
    }

    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        if let Ok(handle) = handle_of(sandbox) {
            self.terminate(&handle.sandbox_id).await;
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
    fn templates_become_dockerfile_lines_and_bad_packages_are_refused() {
        let spec = nightshift_protocol::sandbox::TemplateSpec {
            base: None,
            packages: vec!["apt:jq".into(), "pip:requests".into()],
            commands: vec!["echo hi > a".into()],
            workdir: Some("app".into()),
            env: [("A".to_string(), "1".to_string())].into(),
        };
        let lines = template_dockerfile("debian:bookworm-slim", "/workspace", &spec).unwrap();
        assert_eq!(lines[0], "FROM debian:bookworm-slim");
        assert!(
            lines
                .iter()
                .any(|line| line.contains("apt-get install") && line.contains("jq"))
        );
        assert!(
            lines
                .iter()
                .any(|line| line.contains("pip install") && line.contains("requests"))
        );
        let last = lines.last().unwrap();
        assert!(
            last.contains("/workspace/app") && last.contains("A=1"),
            "{last}"
        );
        for package in ["cargo:x", "apt:", "apt:a;rm -rf /", "noseparator"] {
            let mut bad = spec.clone();
            bad.packages = vec![package.into()];
            assert!(
                template_dockerfile("b", "/workspace", &bad).is_err(),
                "{package}"
            );
        }
        let mut escape = spec.clone();
        escape.workdir = Some("../etc".into());
        assert!(template_dockerfile("b", "/workspace", &escape).is_err());
    }
}
