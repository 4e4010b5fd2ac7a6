//! `login` (check a token against a server, then store both) and `logout`.

use nightshift_protocol::redacted::Redacted;
use serde_json::json;

use super::{env_var, print_json};
use crate::args::LoginArgs;
use crate::client::Client;
use crate::config::{self, Credentials};
use crate::error::{CliError, CliResult};
use crate::terminal;

pub async fn login(args: LoginArgs, json: bool) -> CliResult<()> {
    let server = config::normalize_server(&args.server)?;
    if config::is_plaintext_remote(&server) {
        eprintln!(
            "nightshift: warning: {server} is plain http: the token crosses the network unencrypted; use https://"
        );
    }
    let token = match args.token {
        Some(token) => token.trim().to_string(),
        None => terminal::read_secret("API token: ").await?,
    };
    if token.is_empty() {
        return Err(CliError::Usage(
            "no token given: pass --token or type it when asked (create one in Settings, API tokens)"
                .into(),
        ));
    }
    let credentials = Credentials {
        server: server.clone(),
        token: Redacted::new(token),
    };
    // Nothing is stored unless the server accepts the token.
    let me = Client::new(credentials.clone())?.me().await?;
    let path = config::config_path(env_var)?;
    let mut stored = config::load(&path).unwrap_or_default();
    stored.server = Some(credentials.server);
    stored.token = Some(credentials.token);
    config::save(&path, &stored)?;
    if json {
        return print_json(&json!({
            "server": server,
            "user": me.user,
            "team": me.team,
            "config": path,
        }));
    }
    let email = me
        .user
        .email
        .as_deref()
        .map(|email| format!(" <{email}>"))
        .unwrap_or_default();
    println!(
        "Logged in to {server} as {}{email} (team {}). Stored in {}.",
        me.user.display_name(),
        me.team.name,
        path.display()
    );
    Ok(())
}

pub fn logout(json: bool) -> CliResult<()> {
    let path = config::config_path(env_var)?;
    let mut stored = config::load(&path)?;
    let had_token = stored.token.take().is_some();
    if had_token {
        config::save(&path, &stored)?;
    }
    if json {
        return print_json(&json!({"logged_out": had_token, "config": path}));
    }
    if had_token {
        println!(
            "Forgot the token stored in {}. It still works until it is revoked in Settings, API tokens.",
            path.display()
        );
    } else {
        println!("No token was stored in {}.", path.display());
    }
    Ok(())
}
