//! `sessions` or `ls` (the list, with its filters) and `new` (start a session, with its first prompt).

use nightshift_protocol::api::{CreateSessionRequest, PostMessageRequest, QueueMode, SessionList};
use nightshift_protocol::limits::MAX_TITLE_CHARS;
use serde_json::json;

use super::watch::{self, Follow};
use super::{Context, print_json, print_json_line, prompts};
use crate::args::{NewArgs, SessionsArgs};
use crate::error::{CliError, CliResult};
use crate::render::clean;
use crate::{table, terminal};

/// The largest page the API serves.
const MAX_PAGE: u32 = 200;

pub async fn list(context: &Context, args: SessionsArgs) -> CliResult<()> {
    let filter = args.filter().map_err(CliError::Usage)?;
    let list = if args.all {
        let mut sessions = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = context
                .client
                .sessions_page(MAX_PAGE, cursor.as_deref(), &filter)
                .await?;
            sessions.extend(page.sessions);
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        SessionList {
            sessions,
            next_cursor: None,
        }
    } else {
        context
            .client
            .sessions_page(args.limit, None, &filter)
            .await?
    };
    if context.json {
        return print_json(&list);
    }
    if list.sessions.is_empty() {
        if filter == Default::default() {
            println!("No sessions yet: start one with `nightshift new \"a prompt\"`.");
        } else {
            println!("No sessions match.");
        }
        return Ok(());
    }
    print!("{}", table::sessions_table(&list.sessions, now_ms()));
    if list.next_cursor.is_some() {
        eprintln!("(older sessions follow: --all lists them)");
    }
    Ok(())
}

pub async fn new(context: &Context, args: NewArgs) -> CliResult<()> {
    // Checked before anything is created, so a refused prompt leaves no empty session.
    let prompt = match args.prompt.as_deref() {
        Some(prompt) => Some(prompts::checked_prompt(&terminal::text_argument(prompt)?)?),
        None => None,
    };
    if let Some(title) = &args.title
        && title.chars().count() > MAX_TITLE_CHARS
    {
        return Err(CliError::Usage(format!(
            "the title is {} characters; the limit is {MAX_TITLE_CHARS}",
            title.chars().count()
        )));
    }
    let request = CreateSessionRequest {
        repo: args.repo_choice(),
        title: args.title,
        agent: args.agent,
        model: args.model,
        permission_mode: args.permission_mode,
    };
    let session = context.client.create_session(&request).await?;
    let message = match prompt {
        Some(content) => Some(
            context
                .client
                .post_message(
                    &session.id,
                    &PostMessageRequest {
                        content,
                        mode: QueueMode::Followup,
                    },
                )
                .await?,
        ),
        None => None,
    };
    let url = context.client.session_url(&session.id);
    let follow = match (&message, args.wait, args.watch) {
        (Some(message), true, _) => Some(Follow::Prompt(message.message.id.clone())),
        (_, _, true) => Some(Follow::Forever),
        _ => None,
    };
    if context.json {
        let created = json!({"session": session, "message": message, "url": url});
        // Followed by events, one a line: then this is a line too.
        match follow {
            Some(_) => print_json_line(&created)?,
            None => print_json(&created)?,
        }
    } else {
        println!(
            "Started session {} ({}).",
            session.id,
            session.agent.as_str()
        );
        if let Some(repo) = &session.repo {
            println!(
                "It works on {} on branch {} (from {}).",
                clean(&repo.full_name, false),
                clean(&repo.branch, false),
                clean(&repo.base_branch, false)
            );
        }
        if message.is_some() {
            println!("Its first prompt is queued.");
        }
        println!("{url}");
    }
    if let Some(follow) = follow {
        return watch::watch(context, &session.id, 0, follow).await;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
