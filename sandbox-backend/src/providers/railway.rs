//! The `railway` provider: Railway sandboxes (ephemeral VMs in a Railway
//! environment), driven the way the Railway CLI v5.43 and Mastra's `RailwaySandbox`
//! use them.
//!
//! - create: `sandboxCreate` (network isolation, variables, idle timeout, a template
//!   or checkpoint), then `sandbox` polled until `RUNNING`.
//! - exec: `generateShellToken`, then the `/ws/exec` bridge for streaming output,
//!   stdin and the exit code; `sandboxHeartbeat` keeps the sandbox from Railway's idle
//!   reaper. Timeouts and kills signal the bridge and run `kill -KILL -- -<pgid>` (see
//!   [`super::remote`]).
//! - files: through commands, confined to the workspace by `realpath`.
//! - fork: `sandboxCreate` with `sourceSandboxId`. Templates:
//!   `sandboxTemplateBuild` (shell instructions), polled until `READY`. Snapshots:
//!   `sandboxCheckpointCreate`.
//! - stop and destroy: `sandboxDestroy` (Railway has no stopped state).
//! - reattach: the Railway sandbox id is the handle; `sandbox` tells whether it runs.
//!
//! Settings: `RAILWAY_TOKEN` (or `RAILWAY_API_TOKEN`; enables the provider),
//! `RAILWAY_ENVIRONMENT_ID` (required), `RAILWAY_GRAPHQL_URL`,
//! `RAILWAY_TCP_PROXY_WS_ENDPOINT` (the exec bridge), `RAILWAY_IDLE_TIMEOUT_MINUTES`
//! (Railway's own idle teardown, default 120).

pub mod client;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, SinkExt, StreamExt};
use nightshift_protocol::sandbox::NetworkMode;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use self::client::RailwayClient;
use super::remote::{self, RemoteEvent};
use super::shell::shell_quote;
use super::{
    BuiltTemplate, Capabilities, ProviderError, ProviderHandle, Reconciled, RunnerPlacement,
    SandboxSpec, StdinStream, TemplateBuild,
};
use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;

#[derive(Debug, Clone)]
pub struct RailwayConfig {
    pub token: nightshift_protocol::redacted::Redacted<String>,
    pub environment_id: String,
    pub graphql_url: String,
    pub exec_url: String,
    pub idle_timeout_minutes: u32,
    pub workspace: String,
}

impl RailwayConfig {
    pub fn from_lookup(
        lookup: &(dyn Fn(&str) -> Option<String> + Send + Sync),
    ) -> Result<Option<RailwayConfig>, String> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let Some(token) = get("RAILWAY_TOKEN").or_else(|| get("RAILWAY_API_TOKEN")) else {
            return Ok(None);
        };
        let environment_id = get("RAILWAY_ENVIRONMENT_ID").ok_or(
            "RAILWAY_ENVIRONMENT_ID must be set to use the railway provider (sandboxes live in an environment)",
        )?;
        let idle_timeout_minutes = match get("RAILWAY_IDLE_TIMEOUT_MINUTES") {
            None => 120,
            Some(text) => text.trim().parse().map_err(|_| {
                format!("RAILWAY_IDLE_TIMEOUT_MINUTES={text:?} is not a number of minutes")
            })?,
        };
        Ok(Some(RailwayConfig {
            token: token.into(),
            environment_id,
            graphql_url: get("RAILWAY_GRAPHQL_URL")
                .unwrap_or_else(|| client::DEFAULT_GRAPHQL_URL.into()),
            exec_url: get("RAILWAY_TCP_PROXY_WS_ENDPOINT")
                .unwrap_or_else(|| client::DEFAULT_EXEC_URL.into()),
            idle_timeout_minutes,
            workspace: remote::DEFAULT_WORKSPACE.into(),
        }))
    }
}

pub struct RailwayProvider {
    client: RailwayClient,
    config: RailwayConfig,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Handle {
    sandbox_id: String,
}

fn handle_of(sandbox: &SandboxSpec) -> Result<Handle, ProviderError> {
    serde_json::from_value(sandbox.handle.0.clone()).map_err(|_| {
        ProviderError::Unavailable(format!(
            "sandbox {} has no Railway sandbox recorded",
            sandbox.id
        ))
    })
}

const SANDBOX_FIELDS: &str = "id status region environmentId createdAt idleTimeoutMinutes";

impl RailwayProvider {
    pub fn new(config: RailwayConfig) -> Result<RailwayProvider, String> {
        let client = RailwayClient::new(
            config.graphql_url.clone(),
            config.exec_url.clone(),
            config.token.expose().clone(),
        )?;
        Ok(RailwayProvider { client, config })
    }

    /// `sandboxCreate` with `extra` merged into the input, then waits until running.
    async fn create_with(
        &self,
        sandbox: &SandboxSpec,
        extra: Value,
    ) -> Result<ProviderHandle, ProviderError> {
        let mut input = json!({
            "environmentId": self.config.environment_id,
            "idleTimeoutMinutes": self.config.idle_timeout_minutes,
            "networkIsolation": if sandbox.network == NetworkMode::Private { "PRIVATE" } else { "ISOLATED" },
            "variables": sandbox.env,
        });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        let data = self
            .client
            .graphql(
                &format!(
                    "mutation SandboxCreate($input: SandboxCreateInput!) {{ sandboxCreate(input: $input) {{ {SANDBOX_FIELDS} }} }}"
                ),
                json!({ "input": input }),
                remote::CALL_TIMEOUT,
            )
            .await?;
        let sandbox_id = data["sandboxCreate"]["id"]
            .as_str()
            .ok_or_else(|| ProviderError::Unavailable("Railway returned no sandbox id".into()))?
            .to_string();
        let handle = ProviderHandle(json!({ "sandbox_id": sandbox_id }));
        if let Err(error) = self.wait_running(&sandbox_id).await {
            self.destroy_remote(&sandbox_id).await;
            return Err(error);
        }
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
            self.destroy_remote(&sandbox_id).await;
            return Err(ProviderError::Unavailable(format!(
                "cannot create the workspace in the Railway sandbox: {stderr}"
            )));
        }
        Ok(handle)
    }

    async fn status(&self, sandbox_id: &str) -> Result<Option<String>, ProviderError> {
        let data = self
            .client
            .graphql(
                "query Sandbox($environmentId: String!, $id: String!) { sandbox(environmentId: $environmentId, id: $id) { id status } }",
                json!({ "environmentId": self.config.environment_id, "id": sandbox_id }),
                remote::CALL_TIMEOUT,
            )
            .await?;
        Ok(data["sandbox"]["status"].as_str().map(String::from))
    }

    async fn wait_running(&self, sandbox_id: &str) -> Result<(), ProviderError> {
        let deadline = tokio::time::Instant::now() + remote::CREATE_TIMEOUT;
        loop {
            match self.status(sandbox_id).await?.as_deref() {
                Some("RUNNING") => return Ok(()),
                Some("CREATING") | None => {}
                Some(other) => {
                    return Err(ProviderError::Unavailable(format!(
                        "Railway sandbox {sandbox_id} is {other} instead of running"
                    )));
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ProviderError::Unavailable(format!(
                    "Railway sandbox {sandbox_id} did not start in time"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn destroy_remote(&self, sandbox_id: &str) {
        let result = self
            .client
            .graphql(
                "mutation SandboxDestroy($id: String!, $environmentId: String!) { sandboxDestroy(id: $id, environmentId: $environmentId) { id status } }",
                json!({ "id": sandbox_id, "environmentId": self.config.environment_id }),
                remote::CALL_TIMEOUT,
            )
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, sandbox_id, "could not destroy a Railway sandbox");
        }
    }

    async fn heartbeat(&self, sandbox_id: &str) {
        let _ = self
            .client
            .graphql(
                "mutation SandboxHeartbeat($id: String!, $environmentId: String!) { sandboxHeartbeat(id: $id, environmentId: $environmentId) { id status idleTimeoutMinutes } }",
                json!({ "id": sandbox_id, "environmentId": self.config.environment_id }),
                Duration::from_secs(10),
            )
            .await;
    }

    async fn start_exec(
        &self,
        sandbox: &SandboxSpec,
        plan: ExecPlan,
        stdin: Option<StdinStream>,
        cancel: CancellationToken,
    ) -> Result<ExecRun, ProviderError> {
        let handle = handle_of(sandbox)?;
        self.heartbeat(&handle.sandbox_id).await;
        let plan = remote::with_default_cwd(sandbox, plan);
        let run_id = remote::run_id();
        let command = remote::command_line(&self.config.workspace, &sandbox.env, &plan, &run_id);
        let socket = self
            .client
            .connect_exec(&self.config.environment_id, &handle.sandbox_id)
            .await?;
        let (mut sink, mut stream) = socket.split();
        sink.send(Message::text(client::init_exec(&command)))
            .await
            .map_err(|error| {
                ProviderError::Unavailable(format!("Railway's exec bridge failed: {error}"))
            })?;

        // Writer: stdin, end of input, and a kill signal.
        let (signal_sender, signal_receiver) = oneshot::channel::<()>();
        let fixed_input = plan.stdin.clone();
        tokio::spawn(async move {
            let frame = |bytes: &[u8]| {
                let mut data = Vec::with_capacity(bytes.len() + 1);
                data.push(client::STREAM_STDIN);
                data.extend_from_slice(bytes);
                Message::binary(data)
            };
            let mut signal_receiver = signal_receiver;
            let feed = async {
                if let Some(text) = fixed_input.filter(|text| !text.is_empty())
                    && sink.send(frame(text.as_bytes())).await.is_err()
                {
                    return;
                }
                if let Some(mut input) = stdin {
                    while let Some(bytes) = input.recv().await {
                        if sink.send(frame(&bytes)).await.is_err() {
                            return;
                        }
                    }
                }
                let _ = sink.send(Message::text(client::stdin_close())).await;
                // Keep the socket's write half for a later signal.
                std::future::pending::<()>().await;
            };
            tokio::select! {
                _ = feed => {}
                _ = &mut signal_receiver => {}
            }
            let _ = sink.send(Message::text(client::signal("KILL"))).await;
            let _ = sink.close().await;
        });

        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                let event = match message {
                    Ok(Message::Binary(data)) if data.len() > 1 => match data[0] {
                        client::STREAM_STDERR => RemoteEvent::Stderr(data[1..].to_vec()),
                        client::STREAM_STDOUT => RemoteEvent::Stdout(data[1..].to_vec()),
                        _ => continue,
                    },
                    Ok(Message::Text(text)) => {
                        let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        if frame["type"] != "exit" {
                            continue;
                        }
                        let code = frame["data"]["exit_code"].as_i64().unwrap_or(-1);
                        let _ = sender
                            .send(Ok(RemoteEvent::Exit(i32::try_from(code).unwrap_or(-1))))
                            .await;
                        return;
                    }
                    Ok(Message::Close(_)) => break,
                    Ok(_) => continue,
                    Err(error) => {
                        let _ = sender
                            .send(Err(ProviderError::Unavailable(format!(
                                "Railway's exec bridge broke: {error}"
                            ))))
                            .await;
                        return;
                    }
                };
                if sender.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            let _ = sender
                .send(Err(ProviderError::Unavailable(
                    "Railway's exec bridge closed before the command exited".into(),
                )))
                .await;
        });
        let events = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|event| (event, receiver))
        })
        .boxed();

        let killer = RailwayProvider {
            client: self.client.clone(),
            config: self.config.clone(),
        };
        let sandbox_id = handle.sandbox_id.clone();
        let kill: remote::Killer = Box::new(move || {
            async move {
                let _ = signal_sender.send(());
                if let Ok(socket) = killer
                    .client
                    .connect_exec(&killer.config.environment_id, &sandbox_id)
                    .await
                {
                    let (mut sink, mut stream) = socket.split();
                    let command = remote::kill_command(&run_id);
                    if sink
                        .send(Message::text(client::init_exec(&command)))
                        .await
                        .is_ok()
                    {
                        let _ = sink.send(Message::text(client::stdin_close())).await;
                        let _ = tokio::time::timeout(Duration::from_secs(10), async {
                            while let Some(Ok(message)) = stream.next().await {
                                if let Message::Text(text) = message
                                    && text.contains("\"exit\"")
                                {
                                    break;
                                }
                            }
                        })
                        .await;
                    }
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

    fn template_input(handle: &Value) -> Option<Value> {
        if let Some(name) = handle["checkpoint"].as_str() {
            return Some(json!({ "name": name }));
        }
        let instructions = handle.get("instructions")?;
        let mut input = json!({ "instructions": instructions });
        if let Some(digest) = handle["base_image_digest"].as_str() {
            input["baseImageDigest"] = json!(digest);
        }
        Some(input)
    }
}

#[async_trait]
impl super::Provider for RailwayProvider {
    fn name(&self) -> &'static str {
        "railway"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // ISOLATED and PRIVATE are Railway's own modes; it has no "no network".
            network_modes: vec![NetworkMode::Isolated, NetworkMode::Private],
            isolated: true,
            fork: true,
            templates: true,
            stdin: true,
            processes: true,
            snapshots: true,
            reattach: true,
            restart: false,
            tunnels: false,
            gateway: false,
            package_managers: vec!["apt".into(), "pip".into(), "npm".into()],
            ..Capabilities::default()
        }
    }

    async fn create(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let template = sandbox
            .template
            .as_ref()
            .and_then(|template| Self::template_input(&template.handle.0));
        let extra = match template {
            Some(template) => json!({ "template": template }),
            None => json!({}),
        };
        self.create_with(sandbox, extra).await
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
        let source = handle_of(source)?;
        self.create_with(target, json!({ "sourceSandboxId": source.sandbox_id }))
            .await
    }

    async fn build_template(&self, build: &TemplateBuild) -> Result<BuiltTemplate, ProviderError> {
        let base_image_digest = match build.spec.base.as_deref() {
            None => None,
            Some(digest) if digest.starts_with("sha256:") => Some(digest.to_string()),
            Some(other) => {
                return Err(ProviderError::InvalidRequest(format!(
                    "Railway templates start from Railway's base or an image digest (sha256:...), not {other:?}"
                )));
            }
        };
        // The Dockerfile's RUN lines are the shell instructions Railway runs.
        let mut instructions = vec![format!("mkdir -p {}", shell_quote(&self.config.workspace))];
        instructions.extend(
            super::modal::template_dockerfile("base", &self.config.workspace, &build.spec)?
                .into_iter()
                .filter_map(|line| line.strip_prefix("RUN ").map(String::from)),
        );
        let mut input = json!({ "instructions": instructions });
        if let Some(digest) = &base_image_digest {
            input["baseImageDigest"] = json!(digest);
        }
        let data = self
            .client
            .graphql(
                "mutation SandboxTemplateBuild($environmentId: String!, $input: SandboxTemplateInput!) { sandboxTemplateBuild(environmentId: $environmentId, input: $input) { id status environmentId } }",
                json!({ "environmentId": self.config.environment_id, "input": input }),
                remote::CALL_TIMEOUT,
            )
            .await?;
        let template_id = data["sandboxTemplateBuild"]["id"]
            .as_str()
            .ok_or_else(|| ProviderError::Unavailable("Railway returned no template id".into()))?
            .to_string();
        let mut status = data["sandboxTemplateBuild"]["status"]
            .as_str()
            .unwrap_or("PENDING")
            .to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1800);
        while status == "PENDING" || status == "BUILDING" {
            if tokio::time::Instant::now() > deadline {
                return Err(ProviderError::Unavailable(format!(
                    "Railway template {template_id} did not finish building in time"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            let data = self
                .client
                .graphql(
                    "query SandboxTemplateBuild($environmentId: String!, $id: ID!) { sandboxTemplateBuild(environmentId: $environmentId, id: $id) { id status environmentId } }",
                    json!({ "environmentId": self.config.environment_id, "id": template_id }),
                    remote::CALL_TIMEOUT,
                )
                .await?;
            status = data["sandboxTemplateBuild"]["status"]
                .as_str()
                .unwrap_or("FAILED")
                .to_string();
        }
        if status != "READY" {
            return Err(ProviderError::InvalidRequest(format!(
                "Railway could not build template {template_id} ({status})"
            )));
        }
        Ok(BuiltTemplate {
            handle: ProviderHandle(json!({
                "template_id": template_id,
                "instructions": instructions,
                "base_image_digest": base_image_digest,
            })),
            log: format!("Railway template {template_id} is ready\n"),
        })
    }

    async fn snapshot(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let handle = handle_of(sandbox)?;
        let name = format!("nightshift-{}", uuid::Uuid::new_v4().simple());
        self.client
            .graphql(
                "mutation SandboxCheckpointCreate($environmentId: String!, $sandboxId: String!, $name: String!) { sandboxCheckpointCreate(environmentId: $environmentId, sandboxId: $sandboxId, name: $name) { id key createdAt environmentId } }",
                json!({
                    "environmentId": self.config.environment_id,
                    "sandboxId": handle.sandbox_id,
                    "name": name,
                }),
                Duration::from_secs(300),
            )
            .await?;
        Ok(ProviderHandle(json!({ "checkpoint": name })))
    }

    async fn reconcile(&self, sandbox: &SandboxSpec) -> Result<Reconciled, ProviderError> {
        let Ok(handle) = handle_of(sandbox) else {
            return Ok(Reconciled::Gone("no Railway sandbox was recorded".into()));
        };
        match self.status(&handle.sandbox_id).await {
            Ok(Some(status)) if status == "RUNNING" || status == "CREATING" => {
                Ok(Reconciled::Running(sandbox.handle.clone()))
            }
            Ok(status) => Ok(Reconciled::Gone(format!(
                "the Railway sandbox {} is {} (Railway may have reaped it while idle)",
                handle.sandbox_id,
                status.as_deref().unwrap_or("gone")
            ))),
            Err(ProviderError::Unavailable(message)) if message.contains("not found") => {
                Ok(Reconciled::Gone(message))
            }
            Err(error) => Err(error),
        }
    }

    async fn stop(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        // A Railway sandbox is running or destroyed; stopping destroys it.
        if let Ok(handle) = handle_of(sandbox) {
            self.destroy_remote(&handle.sandbox_id).await;
        }
        Ok(())
    }

    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        if let Ok(handle) = handle_of(sandbox) {
            self.destroy_remote(&handle.sandbox_id).await;
        }
        Ok(())
    }
}

/// Sets up the provider from the environment, if configured.
pub fn from_lookup(
    lookup: &(dyn Fn(&str) -> Option<String> + Send + Sync),
) -> Result<Option<Arc<dyn super::Provider>>, String> {
    match RailwayConfig::from_lookup(lookup)? {
        None => Ok(None),
        Some(config) => Ok(Some(Arc::new(RailwayProvider::new(config)?))),
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
    fn settings_need_a_token_and_an_environment() {
        assert!(RailwayConfig::from_lookup(&lookup(&[])).unwrap().is_none());
        let no_env = RailwayConfig::from_lookup(&lookup(&[("RAILWAY_TOKEN", "t")]));
        assert!(no_env.unwrap_err().contains("RAILWAY_ENVIRONMENT_ID"));
        let config = RailwayConfig::from_lookup(&lookup(&[
            ("RAILWAY_API_TOKEN", "secret-t"),
            ("RAILWAY_ENVIRONMENT_ID", "env-1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.graphql_url, client::DEFAULT_GRAPHQL_URL);
        assert_eq!(config.exec_url, client::DEFAULT_EXEC_URL);
        assert_eq!(config.idle_timeout_minutes, 120);
        assert!(!format!("{config:?}").contains("secret-t"));
        let bad = RailwayConfig::from_lookup(&lookup(&[
            ("RAILWAY_TOKEN", "t"),
            ("RAILWAY_ENVIRONMENT_ID", "env-1"),
            ("RAILWAY_IDLE_TIMEOUT_MINUTES", "soon"),
        ]));
        assert!(bad.is_err());
    }

    #[test]
    fn template_handles_become_create_inputs() {
        assert_eq!(
            RailwayProvider::template_input(&json!({"checkpoint": "c1"})),
            Some(json!({"name": "c1"}))
        );
        assert_eq!(
            RailwayProvider::template_input(
                &json!({"instructions": ["echo"], "base_image_digest": "sha256:ab"})
            ),
            Some(json!({"instructions": ["echo"], "baseImageDigest": "sha256:ab"}))
        );
        assert_eq!(RailwayProvider::template_input(&json!({})), None);
    }
}
