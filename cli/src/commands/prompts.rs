//! `send`, `answer` and `abort`: what changes a session's queue or its running turn.
//!
//! `--steer` and `--collect` are the API's queue modes (`QueueMode`), the same the web
//! app's composer sends: `steer` goes to the front and stops the running turn,
//! `collect` merges with the sender's other `collect` prompts of the moment.

use nightshift_protocol::api::{PostMessageRequest, QueueMode};
use nightshift_protocol::limits::MAX_MESSAGE_BYTES;

use super::watch::{self, Follow};
use super::{Context, print_json, print_json_line};
use crate::args::{AnswerArgs, SendArgs, SessionArg};
use crate::error::{CliError, CliResult};
use crate::{resolve, terminal};

/// A prompt the server would accept, or why not (checked here so `new` creates no
/// session for a prompt that would be refused).
pub fn checked_prompt(content: &str) -> CliResult<String> {
    if content.trim().is_empty() {
        return Err(CliError::Usage("the prompt is empty".into()));
    }
    if content.len() > MAX_MESSAGE_BYTES {
        return Err(CliError::Usage(format!(
            "the prompt is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
            content.len()
        )));
    }
    Ok(content.to_string())
}

pub async fn send(context: &Context, args: SendArgs) -> CliResult<()> {
    let content = checked_prompt(&terminal::text_argument(&args.text)?)?;
    let mode = match (args.steer, args.collect) {
        (true, _) => QueueMode::Steer,
        (_, true) => QueueMode::Collect,
        _ => QueueMode::Followup,
    };
    let id = resolve::session_id(&context.client, &args.session).await?;
    let answer = context
        .client
        .post_message(&id, &PostMessageRequest { content, mode })
        .await?;
    let follow = args.wait.then(|| Follow::Prompt(answer.message.id.clone()));
    if context.json {
        match follow {
            // Followed by events, one a line: then this is a line too.
            Some(follow) => {
                print_json_line(&answer)?;
                return watch::watch(context, &id, 0, follow).await;
            }
            None => return print_json(&answer),
        }
    }
    let place = match answer.position {
        0 => "runs next".to_string(),
        n => format!("{n} ahead of it"),
    };
    if answer.message_id != answer.message.id || answer.message.mode != mode {
        println!("Merged into prompt {} ({place}).", answer.message.id);
    } else {
        println!(
            "Queued prompt {} ({}, {place}).",
            answer.message_id,
            mode.as_str()
        );
    }
    if let Some(follow) = follow {
        return watch::watch(context, &id, 0, follow).await;
    }
    Ok(())
}

pub async fn answer(context: &Context, args: AnswerArgs) -> CliResult<()> {
    let id = resolve::session_id(&context.client, &args.session).await?;
    let event = context
        .client
        .answer(&id, &args.question_id, &args.answer)
        .await?;
    if context.json {
        return print_json(&event);
    }
    println!("Answered question {}.", args.question_id);
    Ok(())
}

pub async fn abort(context: &Context, args: SessionArg) -> CliResult<()> {
    let id = resolve::session_id(&context.client, &args.session).await?;
    let answer = context.client.abort(&id).await?;
    if context.json {
        return print_json(&answer);
    }
    match answer.aborted_turn_id {
        Some(turn) => println!("Stopping turn {turn}."),
        None => println!("Nothing was running."),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_checked_as_the_server_would() {
        assert!(checked_prompt(" \n ").is_err());
        assert!(checked_prompt(&"x".repeat(MAX_MESSAGE_BYTES + 1)).is_err());
        assert_eq!(checked_prompt("fix it").unwrap(), "fix it");
    }
}
