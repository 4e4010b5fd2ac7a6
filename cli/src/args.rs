//! The command line: commands, their arguments and the help text (with the exit
//! codes, which are part of the interface).

use clap::{Args, Parser, Subcommand};
use nightshift_protocol::api::{AgentKind, PermissionMode};
use nightshift_protocol::repo::{RepoChoice, valid_branch, valid_full_name};
use nightshift_protocol::session_list::{ArchivedFilter, ListFilter, ListScope, MAX_BULK_IDS};

use crate::error::EXIT_CODES_HELP;

/// Nightshift from the terminal: start sessions, prompt them, watch agents work.
#[derive(Debug, Parser)]
#[command(name = "nightshift", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Print JSON for scripts: one document, or one event per line for `watch`.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an API token against a server and store both for the other commands.
    Login(LoginArgs),
    /// Forget the stored token (the server keeps it until it is revoked in Settings).
    Logout,
    /// List your sessions (and those shared with you), newest first.
    #[command(visible_alias = "ls")]
    Sessions(SessionsArgs),
    /// Start a session, optionally with its first prompt.
    New(NewArgs),
    /// Send a prompt to a session.
    Send(SendArgs),
    /// Stream a session's events live until Ctrl-C (which leaves the session running).
    Watch(WatchArgs),
    /// Answer a question the agent asked (its id is in `watch --json`).
    Answer(AnswerArgs),
    /// Stop the session's running turn.
    Abort(SessionArg),
    /// Print the session's web page, and open it with $BROWSER when set.
    Open(SessionArg),
    /// Archive sessions: their sandboxes are destroyed, their history stays readable,
    /// and they take no more prompts (owner or team admin).
    Archive(ArchiveArgs),
    /// Delete sessions and everything kept about them (owner or team admin).
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The deployment's URL, e.g. https://nightshift.example.com.
    #[arg(long)]
    pub server: String,
    /// The API token (Settings, API tokens). Read from standard input when absent,
    /// without echo on a terminal; prefer that, since arguments are visible to other
    /// local users.
    #[arg(long)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// How many sessions to list.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub limit: u32,
    /// List every session, page after page.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
    /// Whose sessions: mine, shared (with me) or team (an admin's whole team; for
    /// others, the sessions shared with them). Default: every one you can see.
    #[arg(long, value_parser = parse_scope)]
    pub scope: Option<ListScope>,
    /// Only sessions whose title holds every one of these words (any case).
    #[arg(long)]
    pub search: Option<String>,
    /// Archived sessions too (any), only them (true), or not (false, the default).
    #[arg(long, value_parser = parse_archived, default_value = "false")]
    pub archived: ArchivedFilter,
}

impl SessionsArgs {
    /// The list's filter, as the server checks it.
    pub fn filter(&self) -> Result<ListFilter, String> {
        ListFilter::parse(
            self.scope.map(ListScope::as_str),
            self.search.as_deref(),
            Some(self.archived.as_str()),
        )
        .map_err(|error| error.to_string())
    }
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The sessions: ids or unique prefixes.
    #[arg(required = true, num_args = 1..=MAX_BULK_IDS)]
    pub sessions: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The sessions: ids or unique prefixes.
    #[arg(required = true, num_args = 1..=MAX_BULK_IDS)]
    pub sessions: Vec<String>,
    /// Delete without asking (required when standard input is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The agent: builtin or opencode.
    #[arg(long, value_parser = parse_agent)]
    pub agent: Option<AgentKind>,
    /// A model id the server offers (the web app's model picker lists them).
    #[arg(long)]
    pub model: Option<String>,
    /// The title; by default the session is titled after its first prompt.
    #[arg(long)]
    pub title: Option<String>,
    /// ask (the default) or allow: whether the agent's permission requests are asked.
    #[arg(long, value_parser = parse_permission_mode)]
    pub permission_mode: Option<PermissionMode>,
    /// A GitHub repository (owner/name) to clone into the session's workspace; the
    /// agent works on a new branch of it unless --branch or --pr names one.
    #[arg(long, value_parser = parse_full_name)]
    pub repo: Option<String>,
    /// The branch to start from and open the pull request against (default: the
    /// repository's default branch).
    #[arg(long, requires = "repo", value_parser = parse_branch)]
    pub base: Option<String>,
    /// Continue this existing branch instead of starting a new one.
    #[arg(long, requires = "repo", conflicts_with = "pr", value_parser = parse_branch)]
    pub branch: Option<String>,
    /// Continue this pull request: work on its branch and update it.
    #[arg(long, requires = "repo", value_parser = clap::value_parser!(u64).range(1..))]
    pub pr: Option<u64>,
    /// Watch the session after starting it (until Ctrl-C).
    #[arg(long, conflicts_with = "wait")]
    pub watch: bool,
    /// Show the first prompt's turn, and exit when it ends: 0 when it is done, 1 when
    /// it failed or was aborted.
    #[arg(long, requires = "prompt")]
    pub wait: bool,
    /// The first prompt; `-` reads it from standard input.
    pub prompt: Option<String>,
}

impl NewArgs {
    /// The request's `repo`, from the arguments clap has checked.
    pub fn repo_choice(&self) -> Option<RepoChoice> {
        self.repo.as_ref().map(|full_name| RepoChoice {
            full_name: full_name.clone(),
            base_branch: self.base.clone(),
            branch: self.branch.clone(),
            pull_request: self.pr,
        })
    }
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The session: its id or a unique prefix of it.
    pub session: String,
    /// The prompt; `-` reads it from standard input.
    pub text: String,
    /// Stop the running turn and run this next (the agent keeps that turn's work).
    #[arg(long, conflicts_with = "collect")]
    pub steer: bool,
    /// Merge with your other prompts sent within a moment into one prompt.
    #[arg(long)]
    pub collect: bool,
    /// Show the prompt's turn, and exit when it ends: 0 when it is done, 1 when it
    /// failed, was aborted or was cancelled.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The session: its id or a unique prefix of it.
    pub session: String,
    /// Start after this event number (0, the default, replays the whole session).
    #[arg(long, default_value_t = 0)]
    pub after: u64,
}

#[derive(Debug, Args)]
pub struct AnswerArgs {
    /// The session: its id or a unique prefix of it.
    pub session: String,
    /// The question's id (`question_id` of its `question_asked` event).
    pub question_id: String,
    /// The answer; for a permission request one of its options (allow, always, deny).
    pub answer: String,
}

#[derive(Debug, Args)]
pub struct SessionArg {
    /// The session: its id or a unique prefix of it.
    pub session: String,
}

fn parse_agent(value: &str) -> Result<AgentKind, String> {
    AgentKind::parse(value).ok_or_else(|| format!("{value:?} is not an agent: builtin or opencode"))
}

fn parse_full_name(value: &str) -> Result<String, String> {
    if valid_full_name(value) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not a repository: owner/name"))
    }
}

fn parse_branch(value: &str) -> Result<String, String> {
    if valid_branch(value) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not a branch name git accepts"))
    }
}

fn parse_scope(value: &str) -> Result<ListScope, String> {
    ListScope::parse(value).ok_or_else(|| format!("{value:?} is not a scope: mine, shared or team"))
}

fn parse_archived(value: &str) -> Result<ArchivedFilter, String> {
    ArchivedFilter::parse(value).ok_or_else(|| format!("{value:?} is not one of false, true, any"))
}

fn parse_permission_mode(value: &str) -> Result<PermissionMode, String> {
    PermissionMode::parse(value).ok_or_else(|| format!("{value:?} is not a mode: ask or allow"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ls_takes_the_lists_filters() {
        let parsed = Cli::try_parse_from([
            "nightshift",
            "ls",
            "--scope",
            "shared",
            "--search",
            "Fix build",
            "--archived",
            "any",
        ])
        .unwrap();
        let Command::Sessions(args) = parsed.command else {
            panic!("ls is sessions");
        };
        let filter = args.filter().unwrap();
        assert_eq!(filter.scope, Some(ListScope::Shared));
        assert_eq!(filter.words, ["fix", "build"]);
        assert_eq!(filter.archived, ArchivedFilter::Any);
        assert!(Cli::try_parse_from(["nightshift", "ls", "--scope", "all"]).is_err());
        assert!(Cli::try_parse_from(["nightshift", "ls", "--archived", "yes"]).is_err());
    }

    #[test]
    fn archive_and_delete_name_sessions() {
        assert!(Cli::try_parse_from(["nightshift", "archive"]).is_err());
        let parsed = Cli::try_parse_from(["nightshift", "delete", "ab", "cd", "--yes"]).unwrap();
        assert!(matches!(
            parsed.command,
            Command::Delete(DeleteArgs { ref sessions, yes: true }) if sessions.len() == 2
        ));
    }

    #[test]
    fn steer_and_collect_exclude_each_other() {
        let parsed =
            Cli::try_parse_from(["nightshift", "send", "abc", "hi", "--steer", "--collect"]);
        assert!(parsed.is_err());
        let parsed =
            Cli::try_parse_from(["nightshift", "--json", "send", "abc", "hi", "--collect"])
                .unwrap();
        assert!(parsed.json);
        assert!(matches!(
            parsed.command,
            Command::Send(SendArgs {
                collect: true,
                steer: false,
                ..
            })
        ));
    }

    #[test]
    fn agents_and_modes_are_the_protocols() {
        let parsed =
            Cli::try_parse_from(["nightshift", "new", "--agent", "opencode", "hello"]).unwrap();
        let Command::New(new) = parsed.command else {
            panic!("not new");
        };
        assert_eq!(new.agent, Some(AgentKind::Opencode));
        assert_eq!(new.prompt.as_deref(), Some("hello"));
        assert!(Cli::try_parse_from(["nightshift", "new", "--agent", "claude"]).is_err());
        assert!(Cli::try_parse_from(["nightshift", "sessions", "--limit", "0"]).is_err());
        // Waiting for the first prompt's turn needs a first prompt.
        assert!(Cli::try_parse_from(["nightshift", "new", "--wait"]).is_err());
        assert!(Cli::try_parse_from(["nightshift", "new", "--wait", "--watch", "p"]).is_err());
    }

    fn new_args(argv: &[&str]) -> Result<NewArgs, clap::Error> {
        let argv = ["nightshift", "new"].iter().chain(argv).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::New(new) => Ok(new),
            other => panic!("not new: {other:?}"),
        }
    }

    #[test]
    fn a_repository_and_where_to_start_are_checked() {
        let new = new_args(&["--repo", "acme/web", "--base", "dev", "--pr", "12", "go"]).unwrap();
        assert_eq!(
            new.repo_choice(),
            Some(RepoChoice {
                full_name: "acme/web".into(),
                base_branch: Some("dev".into()),
                branch: None,
                pull_request: Some(12),
            })
        );
        let new = new_args(&["--repo", "acme/web", "--branch", "fix/login"]).unwrap();
        assert_eq!(
            new.repo_choice().and_then(|c| c.branch),
            Some("fix/login".into())
        );
        assert_eq!(new_args(&["hello"]).unwrap().repo_choice(), None);
        for bad in [
            &["--repo", "acme"][..],
            &["--repo", "acme/web/x"],
            &["--repo", "../web"],
            &["--repo", "acme/web", "--base", "a..b"],
            &["--repo", "acme/web", "--branch", "-x"],
            &["--repo", "acme/web", "--pr", "0"],
            &["--repo", "acme/web", "--pr", "x"],
            &["--repo", "acme/web", "--branch", "b", "--pr", "1"],
            &["--base", "main"],
            &["--branch", "b"],
            &["--pr", "3"],
        ] {
            assert!(new_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_lists_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes"), "{help}");
        assert!(help.contains("4  no such session"), "{help}");
    }
}
