//! `sandbox-backend`: serves the sandbox backend's HTTP API until SIGTERM or SIGINT.
//!
//! On shutdown it stops accepting connections, then stops every runner and exec'd
//! command it started (SIGTERM, SIGKILL after a grace period) and exits. Sandboxes
//! keep their status on disk, so the next start restarts the runners of ready
//! sandboxes; a runner that reconnects after such a restart is a new runner to the
//! `SessionAgent`, which re-queues the interrupted turn. Runners are stopped rather
//! than left running so that no process keeps dialing a Worker after its backend is
//! gone (for example when a development stack is stopped with Ctrl-C).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use sandbox_backend::providers::local::{launch, sandbox_agent};
use sandbox_backend::{AppState, Config, app, tls};
use tokio_util::sync::CancellationToken;

/// How long open connections (streamed execs) get to finish after a shutdown signal.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Inside OpenCode's sandbox, as its `$SHELL`: runs the command in the session's
    // sandbox instead.
    if sandbox_agent::tool_shell::invoked_as_tool_shell(&argv0) {
        return sandbox_agent::tool_shell::main(&args);
    }
    match args.first().map(String::as_str) {
        // Inside a sandbox: its agent.
        Some("__agent") => return sandbox_agent::server::main(&args[1..]),
        // The local provider's `command_wrapper`.
        Some("enter") => return sandbox_agent::enter::main(&args[1..]),
        // Inside a sandbox: byte bridges between the runner and services in it.
        Some("__connect") => return sandbox_agent::bridge::connect_main(&args[1..]),
        Some("__listen") => return sandbox_agent::bridge::listen_main(&args[1..]),
        // A container's health check: does the backend configured here answer?
        Some("health") => return sandbox_backend::health_probe::main(),
        // Joins resource-control groups, then becomes the given command.
        Some("__launch") => return launch::main(&args[1..]),
        _ => {}
    }
    serve_main()
}

#[tokio::main]
async fn serve_main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sandbox-backend: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    // Before anything else: a refused listen must leave nothing behind.
    config.check_listen()?;
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    raise_open_file_limit();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let state = AppState::start(&config).await?;
    tracing::info!(listen = %config.listen, https = acceptor.is_some(), "sandbox backend listening");

    let stopping = CancellationToken::new();
    tokio::spawn(wait_for_signal(stopping.clone()));
    // Stopping the runners and commands right away also ends streamed execs, so the
    // graceful shutdown below is not held up by them.
    let cleanup = tokio::spawn({
        let state = state.clone();
        let stopping = stopping.clone();
        async move {
            stopping.cancelled().await;
            state.shutdown().await;
        }
    });
    match acceptor {
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor)?;
            serve(listener, app(state), stopping.clone()).await?;
        }
        None => {
            // Streamed answers (exec output, NDJSON lines) are many small writes:
            // without TCP_NODELAY, Nagle's algorithm holds each after the first until
            // the client's delayed ACK, about 40 ms.
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            });
            serve(listener, app(state), stopping.clone()).await?;
        }
    }
    stopping.cancel();
    if tokio::time::timeout(SHUTDOWN_DRAIN, cleanup).await.is_err() {
        tracing::warn!("runners did not all stop in time");
    }
    tracing::info!("sandbox backend stopped");
    Ok(())
}

/// Serves until `stopping`, then lets open connections drain for at most
/// [`SHUTDOWN_DRAIN`].
async fn serve<L>(listener: L, app: axum::Router, stopping: CancellationToken) -> anyhow::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let serve =
        axum::serve(listener, app).with_graceful_shutdown(stopping.clone().cancelled_owned());
    let drain_deadline = async {
        stopping.cancelled().await;
        tokio::time::sleep(SHUTDOWN_DRAIN).await;
    };
    tokio::select! {
        served = serve => served.context("the HTTP server failed")?,
        () = drain_deadline => tracing::warn!("connections still open after {SHUTDOWN_DRAIN:?}; exiting anyway"),
    }
    Ok(())
}

async fn wait_for_signal(stopping: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the backend");
            let _ = tokio::signal::ctrl_c().await;
            stopping.cancel();
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
    }
    stopping.cancel();
}

/// Every sandbox costs the backend a few sockets; raise the soft limit on open files
/// to the hard one, so hundreds of sandboxes fit.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(%error, "cannot raise the open-file limit");
    }
}
