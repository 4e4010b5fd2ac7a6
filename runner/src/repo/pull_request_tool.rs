//! The agent's `open_pull_request` tool (the built-in agent natively, OpenCode
//! through the runner's MCP server): pushes the session's branch if it is not on the
//! server yet, then asks the Worker to open the session's pull request (or update
//! the one it has). The Worker opens it with the user's own GitHub token; the agent
//! never holds one.

use nightshift_protocol::repo::{PullRequestInfo, PullRequestRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use super::RepoHandle;
use crate::llm::ToolDefinition;
use crate::tools::ToolOutput;

pub const OPEN_PULL_REQUEST_TOOL: &str = "open_pull_request";

/// Longest title and body passed on (GitHub's own limits are larger).
const MAX_TITLE_CHARS: usize = 256;
const MAX_BODY_CHARS: usize = 60_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    draft: Option<bool>,
}

pub fn definition() -> ToolDefinition {
    ToolDefinition {
        name: OPEN_PULL_REQUEST_TOOL.to_string(),
        description: "Open a pull request for this session's branch against its base branch, \
            or update the session's pull request if it has one. Commit your work first; the \
            branch is pushed if needed. Give a short title and a body saying what changed and \
            why. Draft follows the team's setting unless `draft` says otherwise."
            .to_string(),
        parameters: json!({
            "type": "object",
            "properties": {
                "title": {"type": "string", "description": "The pull request's title."},
                "body": {"type": "string", "description": "What changed and why (Markdown)."},
                "draft": {"type": "boolean", "description": "Open as a draft (default: the team's setting)."}
            },
            "required": ["title"]
        }),
    }
}

pub async fn run(repo: &RepoHandle, arguments: &Value) -> ToolOutput {
    let args: Args = match serde_json::from_value(arguments.clone()) {
        Ok(args) => args,
        Err(error) => return ToolOutput::error(format!("invalid arguments: {error}")),
    };
    if args.title.trim().is_empty() {
        return ToolOutput::error("the title must not be empty");
    }
    if repo.repo().is_none() {
        return ToolOutput::error("this session has no repository");
    }
    // Always pushed: a state read now may predate the agent's last commit, and a
    // push with nothing new costs one round trip.
    if let Err(error) = repo.push().await {
        return ToolOutput::error(format!("the branch could not be pushed: {error}"));
    }
    let request = PullRequestRequest {
        title: Some(args.title.chars().take(MAX_TITLE_CHARS).collect()),
        body: args
            .body
            .map(|body| body.chars().take(MAX_BODY_CHARS).collect()),
        draft: args.draft,
    };
    match repo.api().pull_request(&request).await {
        Ok(pull_request) => ToolOutput::ok(describe(&pull_request)),
        Err(error) if error.code.as_deref() == Some("github_not_connected") => ToolOutput::error(
            "The user's GitHub connection has expired or was revoked; they were asked to \
             reconnect GitHub. Tell them, and try again after they did.",
        ),
        Err(error) => ToolOutput::error(format!(
            "the pull request could not be opened: {}",
            error.message
        )),
    }
}

fn describe(pull_request: &PullRequestInfo) -> String {
    let state = serde_json::to_value(pull_request.state)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default();
    format!(
        "Pull request #{} ({state}): {}\n{}",
        pull_request.number, pull_request.title, pull_request.url
    )
}
