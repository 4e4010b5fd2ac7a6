//! `archive` and `delete`: ending sessions, several at once through
//! `POST /api/sessions/bulk`. Each session is resolved first (a prefix that matches
//! nothing or several stops the command before anything ends); the server then
//! answers per session, and the command fails when any session was refused.

use std::io::{BufRead, Write};

use nightshift_protocol::session_list::{BulkAction, BulkOutcome, BulkRequest};

use super::{Context, print_json};
use crate::args::{ArchiveArgs, DeleteArgs};
use crate::error::{CliError, CliResult};
use crate::{resolve, terminal};

pub async fn archive(context: &Context, args: ArchiveArgs) -> CliResult<()> {
    end(context, BulkAction::Archive, &args.sessions).await
}

pub async fn delete(context: &Context, args: DeleteArgs) -> CliResult<()> {
    if !args.yes {
        confirm_delete(args.sessions.len())?;
    }
    end(context, BulkAction::Delete, &args.sessions).await
}

/// Asks on a terminal; refuses without one (a script says `--yes`).
fn confirm_delete(count: usize) -> CliResult<()> {
    if !terminal::stdin_is_terminal() {
        return Err(CliError::Usage(
            "deleting needs --yes when standard input is not a terminal".into(),
        ));
    }
    eprint!("{}", delete_question(count));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| CliError::Local(format!("cannot read the answer: {error}")))?;
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Usage("nothing was deleted".into()))
    }
}

fn delete_question(count: usize) -> String {
    let sessions = if count == 1 { "session" } else { "sessions" };
    format!(
        "Delete {count} {sessions} and everything kept about them? This cannot be undone. [y/N] "
    )
}

async fn end(context: &Context, action: BulkAction, arguments: &[String]) -> CliResult<()> {
    let mut ids = Vec::with_capacity(arguments.len());
    for argument in arguments {
        let id = resolve::session_id(&context.client, argument).await?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let answer = context.client.bulk(&BulkRequest { action, ids }).await?;
    if context.json {
        print_json(&answer)?;
    } else {
        for outcome in &answer.results {
            println!("{}", outcome_line(action, outcome));
        }
    }
    let refused = answer.results.iter().filter(|outcome| !outcome.ok).count();
    if refused == 0 {
        Ok(())
    } else {
        Err(CliError::PartlyRefused(format!(
            "{refused} of {} sessions were refused",
            answer.results.len()
        )))
    }
}

/// One line of the text output: the id and what became of it.
fn outcome_line(action: BulkAction, outcome: &BulkOutcome) -> String {
    let done = match action {
        BulkAction::Archive => "archived",
        BulkAction::Delete => "deleted",
    };
    match (outcome.ok, outcome.error) {
        (true, _) => format!("{}  {done}", outcome.id),
        (false, Some(code)) => format!("{}  refused: {}", outcome.id, code.as_str()),
        (false, None) => format!("{}  refused", outcome.id),
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::ErrorCode;

    use super::*;

    #[test]
    fn the_question_names_how_many() {
        assert!(delete_question(1).starts_with("Delete 1 session and"));
        assert!(delete_question(3).starts_with("Delete 3 sessions and"));
    }

    #[test]
    fn each_outcome_is_one_line() {
        let ok = BulkOutcome {
            id: "s1".into(),
            ok: true,
            error: None,
        };
        let refused = BulkOutcome {
            id: "s2".into(),
            ok: false,
            error: Some(ErrorCode::Forbidden),
        };
        assert_eq!(outcome_line(BulkAction::Archive, &ok), "s1  archived");
        assert_eq!(outcome_line(BulkAction::Delete, &ok), "s1  deleted");
        assert_eq!(
            outcome_line(BulkAction::Delete, &refused),
            "s2  refused: forbidden"
        );
    }
}
