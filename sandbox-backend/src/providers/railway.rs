//! The `railway` provider: Railway sandboxes (ephemeral VMs in a Railway
//! environment), driven the way the Railway CLI v5.43 and Mastra's `RailwaySandbox`
//! use them.
//!
//! - create: `sandboxCreate` (network isolation, variables, idle timeout, a template
//!   or checkpoint), then `sandbox` polled until `RUNNING`, backing off from 0.5 s to
//!   5 s as Railway's SDK does ([`backoff`]).
//! - exec: `generateShellToken`, then the `/ws/exec` bridge for streaming output,
//!   stdin and the exit code; `sandboxHeartbeat` keeps the sandbox from Railway's idle
//!   reaper. Timeouts and kills signal the bridge and run `kill -s KILL -- -<pgid>` (see
//!   [`super::remote`]).
//! - files: through commands, confined to the workspace by `realpath`.
//! - fork: `sandboxCreate` with `sourceSandboxId`. Templates:
//!   `sandboxTemplateBuild` (shell instructions), polled (with the same backoff)
//!   until `READY`. Snapshots:
//!   `sandboxCheckpointCreate`.
//! - stop and destroy: `sandboxDestroy` (Railway has no stopped state).
//! - sleep and wake (`crate::sandboxes::sleep`): Railway keeps nothing of a
//!   destroyed sandbox, but a checkpoint (`sandboxCheckpointCreate`: "the sandbox's
//!   current disk", bootable as soon as it answers) outlives it. A sleep checkpoints
//!   the disk, records the checkpoint in the handle and destroys the sandbox; a wake
//!   is `sandboxCreate` from the checkpoint (`template: {name}`). The checkpoint is
//!   deleted (`sandboxCheckpointDelete`) once no sandbox needs it: after the next
//!   sleep kept a newer one, or when the sandbox is destroyed.
//! - reattach: the Railway sandbox id is the handle; `sandbox` tells whether it runs.
//!
//! Settings: `RAILWAY_TOKEN` (a project token) or `RAILWAY_API_TOKEN` (an account or
//! workspace token), each sent the way Railway takes it ([`auth`]; either enables the
//! provider),
//! `RAILWAY_ENVIRONMENT_ID` (required), `RAILWAY_GRAPHQL_URL`,
//! `RAILWAY_TCP_PROXY_WS_ENDPOINT` (the exec bridge), `RAILWAY_IDLE_TIMEOUT_MINUTES`
//! (Railway's own idle teardown, default 120).

pub mod auth;
mod backoff;
pub mod client;
mod shell;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use nightshift_protocol::sandbox::NetworkMode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use self::client::RailwayClient;
use self::shell::RailwayShell;
use super::remote;
use super::shell::shell_quote;
use super::{
    BuiltTemplate, Capabilities, ProviderError, ProviderHandle, Reconciled, RunnerPlacement,
    SandboxSpec, StdinStream, TemplateBuild,
};
use crate::exec::{ExecPlan, ExecRun};
use crate::files::WorkspacePath;

#[derive(Debug, Clone)]
pub struct RailwayConfig {
    pub token: auth::RailwayToken,
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
        let Some(token) = auth::RailwayToken::from_lookup(get) else {
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
            token,
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
    shell: RailwayShell,
    config: RailwayConfig,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Handle {
    sandbox_id: String,
    /// The checkpoint the last sleep kept the disk in: what a wake boots from while
    /// the sandbox sleeps, and what its sandbox was booted from once woken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<Checkpoint>,
    /// Checkpoints of earlier sleeps no sandbox needs any more, deleted at the next
    /// stop, wake or destroy (kept here until a delete succeeded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired_checkpoints: Vec<Checkpoint>,
}

/// A checkpoint: a sandbox boots from it by name, it is deleted by id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    id: String,
    name: String,
}

impl Handle {
    fn persisted(&self) -> ProviderHandle {
        ProviderHandle(serde_json::to_value(self).expect("a handle serializes"))
    }
}

fn handle_of(sandbox: &SandboxSpec) -> Result<Handle, ProviderError> {
    remote::exec::handle_of(sandbox, "Railway sandbox")
}

const SANDBOX_FIELDS: &str = "id status region environmentId createdAt idleTimeoutMinutes";

impl RailwayProvider {
    pub fn new(config: RailwayConfig) -> Result<RailwayProvider, String> {
        let client = RailwayClient::new(
            config.graphql_url.clone(),
            config.exec_url.clone(),
            config.token.clone(),
        )?;
        Ok(RailwayProvider {
            shell: RailwayShell::new(
                client.clone(),
                config.environment_id.clone(),
                config.workspace.clone(),
            ),
            client,
            config,
        })
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
        let created = data["sandboxCreate"]["status"].as_str();
        if let Err(error) = self.wait_running(&sandbox_id, created).await {
            self.destroy_remote(&sandbox_id).await;
            return Err(error);
        }
        let mut with_handle = sandbox.clone();
        with_handle.handle = handle.clone();
        if let Err(error) = remote::exec::make_workspace(&self.shell, &with_handle).await {
            self.destroy_remote(&sandbox_id).await;
            return Err(error);
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

    /// Polls `sandbox` until it runs, backing off as the SDK does; `created` is the
    /// status `sandboxCreate` answered (a sandbox already running needs no poll).
    async fn wait_running(
        &self,
        sandbox_id: &str,
        created: Option<&str>,
    ) -> Result<(), ProviderError> {
        let deadline = tokio::time::Instant::now() + remote::CREATE_TIMEOUT;
        let mut backoff = backoff::Backoff::default();
        let mut status = created.map(String::from);
        loop {
            match status.as_deref() {
                Some("RUNNING") => return Ok(()),
                Some("CREATING") | None => {}
                Some(other) => {
                    return Err(ProviderError::Unavailable(format!(
                        "Railway sandbox {sandbox_id} is {other} instead of running"
                    )));
                }
            }
            backoff
                .wait(deadline, || {
                    ProviderError::Unavailable(format!(
                        "Railway sandbox {sandbox_id} did not start in time"
                    ))
                })
                .await?;
            status = self.status(sandbox_id).await?;
        }
    }

    /// Best effort, for a sandbox that failed to come up.
    async fn destroy_remote(&self, sandbox_id: &str) {
        if let Err(error) = self.end(sandbox_id).await {
            tracing::warn!(%error, sandbox_id, "could not destroy a Railway sandbox");
        }
    }

    /// `sandboxDestroy`; a sandbox Railway no longer knows is gone already.
    async fn end(&self, sandbox_id: &str) -> Result<(), ProviderError> {
        let result = self
            .client
            .graphql(
                "mutation SandboxDestroy($id: String!, $environmentId: String!) { sandboxDestroy(id: $id, environmentId: $environmentId) { id status } }",
                json!({ "id": sandbox_id, "environmentId": self.config.environment_id }),
                remote::CALL_TIMEOUT,
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if unknown_to_railway(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `sandboxCheckpointCreate` of a running sandbox's disk, under a fresh name.
    async fn checkpoint(&self, sandbox_id: &str) -> Result<Checkpoint, ProviderError> {
        let name = format!("nightshift-{}", uuid::Uuid::new_v4().simple());
        let data = self.client
            .graphql(
                "mutation SandboxCheckpointCreate($environmentId: String!, $sandboxId: String!, $name: String!) { sandboxCheckpointCreate(environmentId: $environmentId, sandboxId: $sandboxId, name: $name) { id key createdAt environmentId } }",
                json!({
                    "environmentId": self.config.environment_id,
                    "sandboxId": sandbox_id,
                    "name": name,
                }),
                Duration::from_secs(300),
            )
            .await?;
        let id = data["sandboxCheckpointCreate"]["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ProviderError::Unavailable("Railway returned no checkpoint id".into())
            })?;
        Ok(Checkpoint {
            id: id.to_string(),
            name,
        })
    }

    /// `sandboxCheckpointDelete` of each checkpoint (one Railway no longer knows is
    /// deleted already); answers those that could not be deleted.
    async fn delete_checkpoints(&self, checkpoints: &[Checkpoint]) -> Vec<Checkpoint> {
        let mut left = Vec::new();
        for checkpoint in checkpoints {
            let result = self
                .client
                .graphql(
                    "mutation SandboxCheckpointDelete($environmentId: String!, $id: ID!) { sandboxCheckpointDelete(environmentId: $environmentId, id: $id) }",
                    json!({ "environmentId": self.config.environment_id, "id": checkpoint.id }),
                    remote::CALL_TIMEOUT,
                )
                .await;
            match result {
                Ok(_) => {}
                Err(error) if unknown_to_railway(&error) => {}
                Err(error) => {
                    tracing::warn!(%error, checkpoint = %checkpoint.name, "could not delete a Railway checkpoint");
                    left.push(checkpoint.clone());
                }
            }
        }
        left
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
            // A stop destroys the sandbox; a sleep keeps its disk as a checkpoint first.
            restart: false,
            sleep: true,
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
            remote::dockerfile::template_dockerfile("base", &self.config.workspace, &build.spec)?
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
        let mut backoff = backoff::Backoff::default();
        while status == "PENDING" || status == "BUILDING" {
            backoff
                .wait(deadline, || {
                    ProviderError::Unavailable(format!(
                        "Railway template {template_id} did not finish building in time"
                    ))
                })
                .await?;
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
        let checkpoint = self.checkpoint(&handle.sandbox_id).await?;
        Ok(ProviderHandle(json!({ "checkpoint": checkpoint.name })))
    }

    /// Keeps the disk as a checkpoint; the one the sandbox was woken from (if any) is
    /// retired, to be deleted once this one is recorded.
    async fn keep_for_sleep(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let mut handle = handle_of(sandbox)?;
        let checkpoint = self.checkpoint(&handle.sandbox_id).await?;
        if let Some(previous) = handle.checkpoint.replace(checkpoint) {
            handle.retired_checkpoints.push(previous);
        }
        Ok(handle.persisted())
    }

    /// Wakes a sandbox put to sleep: a new Railway sandbox booted from the checkpoint
    /// its sleep kept (the backend asks only for a sandbox recorded asleep).
    async fn start(&self, sandbox: &SandboxSpec) -> Result<ProviderHandle, ProviderError> {
        let asleep = handle_of(sandbox)?;
        let checkpoint = asleep.checkpoint.clone().ok_or_else(|| {
            ProviderError::InvalidRequest(format!(
                "no checkpoint was kept for sandbox {}: a stopped Railway sandbox is \
                 destroyed unless it was put to sleep",
                sandbox.id
            ))
        })?;
        // Whatever runs under the old id must not run twice (a stop that could not
        // destroy it is retried here).
        self.end(&asleep.sandbox_id).await?;
        let retired = self.delete_checkpoints(&asleep.retired_checkpoints).await;
        let created = self
            .create_with(sandbox, json!({ "template": { "name": checkpoint.name } }))
            .await?;
        let woken = Handle {
            sandbox_id: created.0["sandbox_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            checkpoint: Some(checkpoint),
            retired_checkpoints: retired,
        };
        Ok(woken.persisted())
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
        // A Railway sandbox is running or destroyed; stopping destroys it (a sleep
        // kept its disk as a checkpoint first). Failing to destroy it is an error: it
        // would go on running, and billing, unseen.
        if let Ok(handle) = handle_of(sandbox) {
            self.end(&handle.sandbox_id).await?;
            self.delete_checkpoints(&handle.retired_checkpoints).await;
        }
        Ok(())
    }

    /// Destroys the sandbox and deletes every checkpoint kept for it, so nothing of
    /// a sleeping sandbox outlives it; a checkpoint that could not be deleted fails
    /// the destroy (the sandbox goes to `error`, and destroying it again retries).
    async fn destroy(&self, sandbox: &SandboxSpec) -> Result<(), ProviderError> {
        if let Ok(handle) = handle_of(sandbox) {
            self.end(&handle.sandbox_id).await?;
            let checkpoints: Vec<Checkpoint> = handle
                .checkpoint
                .into_iter()
                .chain(handle.retired_checkpoints)
                .collect();
            let left = self.delete_checkpoints(&checkpoints).await;
            if !left.is_empty() {
                let names: Vec<&str> = left.iter().map(|left| left.name.as_str()).collect();
                return Err(ProviderError::Unavailable(format!(
                    "Railway could not delete the sandbox's checkpoints {}; destroy it again",
                    names.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Whether Railway answered that it does not know the object of an operation (see
/// `client::RailwayClient::graphql`), not that it does not know the environment (a
/// setting to fix, not a sandbox already gone).
fn unknown_to_railway(error: &ProviderError) -> bool {
    matches!(error, ProviderError::Unavailable(message)
        if message.to_ascii_lowercase().contains("not found")
            && !message.to_ascii_lowercase().contains("environment not found"))
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
