//! `runner --config <path>`: the process a sandbox provider starts for a session.
//!
//! Exit codes: 0 after SIGTERM/SIGINT, 1 on a start-up error (for example an
//! unreadable config), 2 on a usage error, 3 when the `SessionAgent` keeps refusing
//! the token (the sandbox backend does not restart a runner that exits with 3).
//! Everything else lives in the library; this file only parses arguments and sets up
//! logging, TLS and the async runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use nightshift_protocol::sandbox::RUNNER_EXIT_TOKEN_REJECTED;
use nightshift_runner::RunEnd;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: runner --config <path-to-runner-boot-config.json>";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let config_path = match parse_args(std::env::args().skip(1)) {
        Ok(path) => path,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // Both the WebSocket and the HTTP client use rustls. When more than one crypto
    // provider is compiled in (features unify across a workspace build), rustls cannot
    // pick one by itself, so pick ring once, here, before any connection is made.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(nightshift_runner::run(&config_path)) {
        Ok(RunEnd::Shutdown) => ExitCode::SUCCESS,
        Ok(RunEnd::Unauthorized) => {
            tracing::error!(
                "the session refused the runner's token; exiting with code {RUNNER_EXIT_TOKEN_REJECTED}"
            );
            ExitCode::from(u8::try_from(RUNNER_EXIT_TOKEN_REJECTED).unwrap_or(3))
        }
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::from(1)
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<PathBuf, String> {
    let mut config = None;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            config = Some(args.next().ok_or("--config needs a path")?);
        } else if let Some(path) = arg.strip_prefix("--config=") {
            config = Some(path.to_string());
        } else if arg == "--help" || arg == "-h" {
            return Err("the Nightshift runner".to_string());
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    config
        .map(PathBuf::from)
        .ok_or_else(|| "missing --config".to_string())
}
