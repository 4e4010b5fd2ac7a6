//! `open`: a session's web page, printed, and opened with `$BROWSER` when it is set.

use std::process::{Command, Stdio};

use serde_json::json;

use super::{Context, print_json};
use crate::args::SessionArg;
use crate::error::{CliError, CliResult};
use crate::resolve;

pub async fn open(context: &Context, args: SessionArg) -> CliResult<()> {
    let id = resolve::session_id(&context.client, &args.session).await?;
    // Checks the session exists and is visible before a browser is sent to it.
    let session = context.client.session(&id).await?;
    let url = context.client.session_url(&session.id);
    let browser = std::env::var("BROWSER")
        .ok()
        .and_then(|b| browser_command(&b, &url));
    if let Some(argv) = &browser {
        // Started and left running: a browser may stay open long after we exit.
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| {
                CliError::Local(format!("cannot start $BROWSER ({}): {error}", argv[0]))
            })?;
    }
    if context.json {
        return print_json(&json!({"url": url, "opened": browser.is_some()}));
    }
    println!("{url}");
    Ok(())
}

/// The command `$BROWSER` names for `url`: its first entry (the variable may list
/// several, separated by `:`), split on whitespace, with `%s` replaced by the URL or
/// the URL appended. The URL is one argument: no shell ever sees it.
fn browser_command(browser: &str, url: &str) -> Option<Vec<String>> {
    let first = browser.split(':').map(str::trim).find(|b| !b.is_empty())?;
    let mut argv: Vec<String> = first.split_whitespace().map(str::to_string).collect();
    if argv.iter().any(|a| a.contains("%s")) {
        for arg in &mut argv {
            *arg = arg.replace("%s", url);
        }
    } else {
        argv.push(url.to_string());
    }
    Some(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_takes_the_url_as_one_argument() {
        let url = "https://ns.example/sessions/a;rm -rf";
        assert_eq!(browser_command("firefox", url).unwrap(), ["firefox", url]);
        assert_eq!(
            browser_command("xdg-open:firefox", url).unwrap(),
            ["xdg-open", url]
        );
        assert_eq!(
            browser_command("chromium --new-window %s", url).unwrap(),
            ["chromium", "--new-window", url]
        );
        assert_eq!(browser_command(" : ", url), None);
    }
}
