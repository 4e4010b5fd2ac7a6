//! The Nightshift runner: the process that lives in one sandbox and does a session's
//! work there.
//!
//! It holds one WebSocket link to its session's `SessionAgent` ([`link`]), receives
//! prompts and aborts over it, runs each prompt as a turn of an agent ([`turns`],
//! [`agent`]) that talks to an LLM ([`llm`]) and uses tools confined to the sandbox's
//! workspace ([`tools`]), and streams every step back as numbered events that survive
//! reconnects (exactly once, see `nightshift_protocol::runner_link`).
//!
//! Invariant: the runner's token and the LLM key stay in this process. Commands the
//! agent runs get a cleared environment and never see either; neither is logged.
//!
//! This crate knows tokio and the OS; it must not depend on the Worker, the app or
//! the sandbox backend, only on `nightshift-protocol` for what crosses the wire.

pub mod agent;
pub mod artifacts;
pub mod config;
pub mod link;
pub mod llm;
pub mod outbound;
pub mod repo;
pub mod sandbox_bridge;
pub mod tools;
pub mod turns;

#[cfg(test)]
mod test_llm;

use std::path::Path;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::agent::{AgentSet, BuiltinAgent, OpencodeAgent};
use crate::config::ConfigFile;
use crate::link::{EventQueue, LinkEnd, LinkSettings, RunnerLink};
use crate::tools::ToolSet;
use crate::turns::TurnController;

/// How a runner process ended, for its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// SIGTERM or SIGINT: the link was closed cleanly.
    Shutdown,
    /// The `SessionAgent` kept refusing the token; restarting will not help.
    Unauthorized,
}

/// Runs the runner described by the boot config at `config_path` until it is told to
/// stop or its token is refused for good.
pub async fn run(config_path: &Path) -> anyhow::Result<RunEnd> {
    let (config_file, config) = ConfigFile::load(config_path)
        .with_context(|| format!("reading the runner config {}", config_path.display()))?;
    tracing::info!(
        session_id = %config.session_id,
        worker_url = %config.worker_url,
        workspace_dir = %config.workspace_dir,
        "runner starting"
    );
    outbound::check(config.proxy.as_deref()).map_err(anyhow::Error::msg)?;
    outbound::use_proxy(config.proxy.clone());

    let tools = ToolSet::from_config(&config).context("opening the workspace")?;
    // The link renews the token; uploads read the newest one.
    let (token_sender, token_receiver) = watch::channel(config.token.expose().clone());
    let session_url = link::session_url(&config.worker_url, &config.session_id)
        .context("the runner config's worker_url")?;
    let api = repo::worker_api::WorkerApi::new(session_url, token_receiver.clone())
        .context("creating the Worker client")?;
    let uploader = artifacts::ArtifactUploader::new(
        link::artifacts_url(&config.worker_url, &config.session_id)
            .context("the runner config's worker_url")?,
        token_receiver,
    )
    .context("creating the artifact uploader")?;

    // Two stop signals, because order matters on shutdown: first the turn stops (its
    // last events are queued), then the link flushes the queue and closes.
    let stop_turns = CancellationToken::new();
    let stop_link = CancellationToken::new();
    let events = EventQueue::new(nightshift_protocol::limits::RUNNER_OUTBOX_CAPACITY);
    let (active_turn_sender, active_turn) = watch::channel(None);
    let (command_sender, commands) = mpsc::channel(64);
    let (repo_sender, repo_receiver) = watch::channel(None);
    let memory = agent::ConversationMemory::new(api.clone());
    let opencode_memory = agent::ConversationMemory::new(api.clone());
    let (repo_handle, repo_states) = repo::start(
        repo_settings(&config, api),
        repo_receiver,
        Some(events.clone()),
        stop_turns.clone(),
    );

    let builtin = BuiltinAgent::new(tools, &config.sandbox_workspace_dir)
        .context("creating the agent")?
        .with_artifacts(uploader)
        .with_repo(repo_handle.clone())
        .with_memory(memory);
    let opencode = OpencodeAgent::new(agent::opencode::OpencodeSettings::from_boot(
        &config,
        config_path,
    ))
    .with_repo(repo_handle.clone())
    .with_memory(opencode_memory);
    let agent = AgentSet::new(Box::new(builtin), Box::new(opencode));

    let settings = LinkSettings::new(&config.worker_url, &config.session_id)
        .context("the runner config's worker_url")?;
    let link = RunnerLink::new(
        settings,
        config.token.expose().clone(),
        Some(config_file),
        events.clone(),
        active_turn,
        command_sender,
    )
    .with_token_watch(token_sender)
    .with_repo(repo_sender, repo_states);
    let mut link_task = tokio::spawn(link.run(stop_link.clone()));

    let controller = TurnController::new(Box::new(agent), events, active_turn_sender)
        .with_question_timeout(question_timeout())
        .with_repo(repo_handle);
    let controller_task = tokio::spawn(controller.run(commands, stop_turns.clone()));

    let link_end = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down");
            stop_turns.cancel();
            let _ = controller_task.await;
            stop_link.cancel();
            link_task.await
        }
        link_end = &mut link_task => {
            stop_turns.cancel();
            let _ = controller_task.await;
            link_end
        }
    };
    let end = match link_end {
        Ok(LinkEnd::Shutdown) => RunEnd::Shutdown,
        Ok(LinkEnd::Unauthorized) => RunEnd::Unauthorized,
        Err(error) => anyhow::bail!("the link task failed: {error}"),
    };
    Ok(end)
}

/// Where the repository's git runs (the sandbox, through the command wrapper) and
/// where its credential socket goes (the sandbox's sockets directory, when the
/// provider gives it one).
fn repo_settings(
    config: &nightshift_protocol::sandbox::RunnerBootConfig,
    api: repo::worker_api::WorkerApi,
) -> repo::RepoSettings {
    use nightshift_protocol::sandbox::SANDBOX_SOCKETS_DIR;
    let seen_at = config
        .sandbox_sockets_dir
        .as_deref()
        .unwrap_or(SANDBOX_SOCKETS_DIR);
    let credential_socket = config.sockets_dir.as_ref().map(|dir| {
        (
            Path::new(dir).join(repo::credential::CREDENTIAL_SOCKET),
            format!("{seen_at}/{}", repo::credential::CREDENTIAL_SOCKET),
        )
    });
    repo::RepoSettings {
        git: repo::git::SandboxGit {
            wrapper: config.command_wrapper.clone(),
            workspace_dir: config.workspace_dir.clone().into(),
            home: config.sandbox_workspace_dir.clone(),
        },
        credential_socket,
        egress_socket: config
            .egress_credential_socket
            .as_ref()
            .map(std::path::PathBuf::from),
        api,
    }
}

/// `NIGHTSHIFT_QUESTION_TIMEOUT_MS`, or ten minutes.
fn question_timeout() -> std::time::Duration {
    std::env::var("NIGHTSHIFT_QUESTION_TIMEOUT_MS")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(std::time::Duration::from_millis)
        .unwrap_or(agent::DEFAULT_QUESTION_TIMEOUT)
}

/// Resolves on SIGTERM (how the sandbox backend stops a runner) or SIGINT (a person
/// pressing Ctrl-C in development), naming the signal.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    match (terminate, interrupt) {
        (Ok(mut terminate), Ok(mut interrupt)) => tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        },
        _ => {
            tracing::warn!("cannot listen for signals; the runner stops only when killed");
            std::future::pending().await
        }
    }
}
