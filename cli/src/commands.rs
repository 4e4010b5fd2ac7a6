//! The commands, each in its own module, and what they share: the credentials from
//! the config file and the environment, and printing JSON for scripts.

use serde::Serialize;

use crate::args::{Cli, Command};
use crate::client::Client;
use crate::config;
use crate::error::{CliError, CliResult};
use watch::Follow;

mod end;
mod login;
mod open;
mod prompts;
mod sessions;
mod watch;

/// What every command that talks to the server gets.
pub struct Context {
    pub client: Client,
    /// `--json`: print JSON for scripts instead of text for people.
    pub json: bool,
}

impl Context {
    /// A context with the stored credentials, overridden by the environment.
    fn from_config(json: bool) -> CliResult<Context> {
        let path = config::config_path(env_var)?;
        let stored = config::load(&path)?;
        let credentials = config::resolve(&stored, env_var)?;
        Ok(Context {
            client: Client::new(credentials)?,
            json,
        })
    }
}

pub async fn run(cli: Cli) -> CliResult<()> {
    let json = cli.json;
    match cli.command {
        Command::Login(args) => login::login(args, json).await,
        Command::Logout => login::logout(json),
        command => {
            let context = Context::from_config(json)?;
            match command {
                Command::Sessions(args) => sessions::list(&context, args).await,
                Command::New(args) => sessions::new(&context, args).await,
                Command::Send(args) => prompts::send(&context, args).await,
                Command::Answer(args) => prompts::answer(&context, args).await,
                Command::Abort(args) => prompts::abort(&context, args).await,
                Command::Watch(args) => {
                    watch::watch(&context, &args.session, args.after, Follow::Forever).await
                }
                Command::Open(args) => open::open(&context, args).await,
                Command::Archive(args) => end::archive(&context, args).await,
                Command::Delete(args) => end::delete(&context, args).await,
                Command::Login(_) | Command::Logout => unreachable!("handled above"),
            }
        }
    }
}

fn env_var(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// Prints one JSON document on one line (before the events `--wait` and `--watch`
/// print one a line).
pub fn print_json_line(value: &impl Serialize) -> CliResult<()> {
    let text = serde_json::to_string(value)
        .map_err(|error| CliError::Local(format!("cannot print JSON: {error}")))?;
    println!("{text}");
    Ok(())
}

/// Prints one JSON document.
pub fn print_json(value: &impl Serialize) -> CliResult<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| CliError::Local(format!("cannot print JSON: {error}")))?;
    println!("{text}");
    Ok(())
}
