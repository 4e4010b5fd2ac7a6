//! `nightshift-gateway serve --listen ADDR --session ID --key-file PATH`: reads and
//! deletes the session key, starts the services, serves until SIGTERM or SIGINT,
//! then stops every service it started. `nightshift-gateway connect`: a byte bridge
//! from standard input and output to the gateway's port ([`nightshift_gateway::connect`]).
//! `nightshift-gateway egress LISTEN SOCKET`: a docker sandbox's proxy, carried to the
//! backend's socket ([`nightshift_gateway::egress`]).

use anyhow::Context;
use nightshift_gateway::config::{GatewayConfig, read_key_file};
use nightshift_gateway::services::{ServiceName, StatusTable, spec, supervisor::Supervisor};
use nightshift_gateway::{AppState, router, server};
use nightshift_protocol::gateway::ServiceState;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("connect") {
        // Nothing but the bytes on standard output: no log subscriber.
        return nightshift_gateway::connect::run()
            .await
            .context("connecting to the gateway");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if std::env::args().nth(1).as_deref() == Some("egress") {
        return nightshift_gateway::egress::run(std::env::args().skip(2))
            .await
            .context("serving the sandbox's egress proxy");
    }
    let config = match GatewayConfig::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let key = read_key_file(&config.key_file)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let status = StatusTable::default();
    let wanted: Vec<_> = spec::services(&config)
        .into_iter()
        .filter(|service| config.services.contains(&service.name))
        .collect();
    for name in ServiceName::ALL {
        if !config.services.contains(&name) {
            status.set(
                name,
                ServiceState::Unavailable,
                Some("not started by this gateway (--services)".into()),
            );
        }
    }
    let supervisor = Supervisor::start(wanted, status.clone());
    tracing::info!(listen = %config.listen, session = %config.session_id, "gateway serving");
    let header_timeout = config.header_timeout;
    let app = router(AppState::new(config, key, status));
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let stopping = CancellationToken::new();
    let stop = stopping.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        stop.cancel();
    });
    // A long request or an open socket gets a few seconds to finish, not forever.
    server::serve(listener, app, header_timeout, stopping, SHUTDOWN_GRACE).await;
    supervisor.shutdown().await;
    Ok(())
}
