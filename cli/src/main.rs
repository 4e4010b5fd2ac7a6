//! `nightshift`: the command-line client of a Nightshift deployment.
//!
//! It speaks the Worker's public API (`docs/API.md`) with a personal API token, using
//! the protocol crate's wire types: it never defines a body of its own. This file
//! only parses the command line, runs the command and turns its outcome into an exit
//! code; the commands are in [`commands`], and what they print is built by plain
//! types ([`render`], [`table`]) that are tested without a server.
//!
//! Must not depend on: `worker`, `app` (the CLI is a client like the browser).

use std::process::ExitCode;

use clap::Parser;

mod args;
mod client;
mod commands;
mod config;
mod error;
mod follow;
mod questions;
mod render;
mod resolve;
mod sse;
mod table;
mod terminal;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("nightshift: cannot start: {error}");
            return ExitCode::from(error::EXIT_ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(error) => {
            if json {
                println!("{}", error.to_json());
            } else {
                eprintln!("nightshift: {error}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}
