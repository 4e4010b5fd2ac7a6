//! The session's pull request: opened or updated with the acting user's own token
//! (so GitHub shows them as its author), after checking they can push to the
//! repository; read back with its check runs; remembered by the `SessionAgent`
//! (`pull_request_updated`) and in the session list's D1 columns; and re-read from
//! GitHub at most every [`REFRESH_AFTER_MS`] when someone looks at it.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::repo::{
    ChecksSummary, PullRequestInfo, PullRequestRequest, PullRequestSummary,
};
use serde_json::{Value, json};
use worker::{Env, Method};

use super::api::{Answer, encode};
use super::repos::{pull_state, require_push};
use super::{settings, tokens};
use crate::api_error::{self, ApiError, ApiResult};
use crate::internal::{self, AgentCall, GitContext};
use crate::{clock, sessions_table};

/// A pull request read longer ago than this is read again when it is looked at.
pub const REFRESH_AFTER_MS: i64 = 30_000;
/// The longest title and body sent to GitHub.
const MAX_TITLE: usize = 256;
const MAX_BODY: usize = 65_536;

/// What GitHub says of a pull request, as the app shows it.
pub fn info(pull: &Value, checks: ChecksSummary) -> Option<PullRequestInfo> {
    Some(PullRequestInfo {
        number: pull["number"].as_u64()?,
        url: pull["html_url"].as_str().unwrap_or_default().to_owned(),
        title: pull["title"].as_str().unwrap_or_default().to_owned(),
        state: pull_state(pull),
        checks,
        author: pull["user"]["login"].as_str().map(str::to_owned),
    })
}

/// The list's part of a pull request.
pub fn summary(pull: &PullRequestInfo) -> PullRequestSummary {
    PullRequestSummary {
        number: pull.number,
        state: pull.state,
        url: pull.url.clone(),
    }
}

/// Counts check runs: not completed is pending; success, neutral and skipped pass.
pub fn count_checks(runs: &[Value]) -> ChecksSummary {
    let mut summary = ChecksSummary::default();
    for run in runs {
        summary.total += 1;
        if run["status"].as_str() != Some("completed") {
            summary.pending += 1;
        } else if matches!(
            run["conclusion"].as_str(),
            Some("success" | "neutral" | "skipped")
        ) {
            summary.success += 1;
        } else {
            summary.failure += 1;
        }
    }
    summary
}

async fn checks(env: &Env, user_id: &str, full_name: &str, sha: &str) -> ChecksSummary {
    let path = format!(
        "/repos/{full_name}/commits/{}/check-runs?per_page=100",
        encode(sha)
    );
    match tokens::as_user(env, user_id, Method::Get, &path, None).await {
        Ok((answer, _)) if answer.ok() => count_checks(
            answer.body["check_runs"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        ),
        _ => ChecksSummary::default(),
    }
}

fn ok(answer: Answer, what: &str) -> ApiResult<Value> {
    if answer.ok() {
        Ok(answer.body)
    } else {
        Err(answer.into_error(what))
    }
}

/// Tells the `SessionAgent` and the list what GitHub said.
async fn remember(env: &Env, session_id: &str, pull: &PullRequestInfo) -> ApiResult<()> {
    let response =
        internal::call_agent(env, session_id, AgentCall::SetPullRequest, Some(pull)).await?;
    if !(200..300).contains(&response.status_code()) {
        return Err(api_error::from_response(response).await);
    }
    sessions_table::set_pull_request(env, session_id, Some(&summary(pull))).await
}

async fn read_back(
    env: &Env,
    user_id: &str,
    full_name: &str,
    pull: &Value,
) -> ApiResult<PullRequestInfo> {
    let sha = pull["head"]["sha"].as_str().unwrap_or_default();
    let checks = checks(env, user_id, full_name, sha).await;
    info(pull, checks).ok_or_else(|| {
        ApiError::new(
            ErrorCode::GithubUnavailable,
            "a pull request without number",
        )
    })
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message.to_owned())
}

/// Creates the session's pull request as `user_id`, or updates the one it has.
pub async fn open_or_update(
    env: &Env,
    session_id: &str,
    context: &GitContext,
    user_id: &str,
    asked: &PullRequestRequest,
) -> ApiResult<PullRequestInfo> {
    let title = asked.title.as_deref().map(str::trim);
    if title.is_some_and(|title| title.is_empty() || title.len() > MAX_TITLE) {
        return Err(invalid("a title is 1 to 256 characters"));
    }
    if asked
        .body
        .as_ref()
        .is_some_and(|body| body.len() > MAX_BODY)
    {
        return Err(invalid("a body is at most 64 KiB"));
    }
    let repo = &context.repo;
    let full_name = &repo.full_name;
    require_push(env, user_id, full_name).await?;
    let pull = match &context.pull_request {
        Some(existing) => {
            let mut change = serde_json::Map::new();
            if let Some(title) = title {
                change.insert("title".into(), json!(title));
            }
            if let Some(body) = &asked.body {
                change.insert("body".into(), json!(body));
            }
            let path = format!("/repos/{full_name}/pulls/{}", existing.number);
            let (answer, _) = if change.is_empty() {
                tokens::as_user(env, user_id, Method::Get, &path, None).await?
            } else {
                let change = Value::Object(change);
                tokens::as_user(env, user_id, Method::Patch, &path, Some(&change)).await?
            };
            ok(answer, "updating the pull request")?
        }
        None => {
            let title = title.ok_or_else(|| invalid("a new pull request needs a title"))?;
            let draft = match asked.draft {
                Some(draft) => draft,
                None => settings::get(env).await?.draft_pull_requests,
            };
            let create = json!({
                "title": title,
                "head": repo.branch,
                "base": repo.base_branch,
                "body": asked.body.clone().unwrap_or_default(),
                "draft": draft,
            });
            let path = format!("/repos/{full_name}/pulls");
            let (answer, _) =
                tokens::as_user(env, user_id, Method::Post, &path, Some(&create)).await?;
            match answer.status {
                201 => answer.body,
                422 => adopt(env, user_id, full_name, &repo.branch, answer).await?,
                _ => return Err(answer.into_error("opening the pull request")),
            }
        }
    };
    let pull = read_back(env, user_id, full_name, &pull).await?;
    remember(env, session_id, &pull).await?;
    Ok(pull)
}

/// GitHub refused to open a pull request (422): the branch's open one is adopted
/// when there is one; otherwise GitHub's reason (an unpushed branch, usually) is
/// the answer.
async fn adopt(
    env: &Env,
    user_id: &str,
    full_name: &str,
    branch: &str,
    refused: Answer,
) -> ApiResult<Value> {
    let owner = full_name.split('/').next().unwrap_or_default();
    let path = format!(
        "/repos/{full_name}/pulls?state=open&head={}",
        encode(&format!("{owner}:{branch}"))
    );
    let (answer, _) = tokens::as_user(env, user_id, Method::Get, &path, None).await?;
    if let Some(open) = answer.body.as_array().and_then(|list| list.first()) {
        return Ok(open.clone());
    }
    let detail = refused.body["errors"][0]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| refused.message());
    Err(ApiError::new(
        ErrorCode::Conflict,
        format!(
            "GitHub cannot open the pull request yet (push the branch first?): {}",
            detail.chars().take(200).collect::<String>()
        ),
    ))
}

/// The session's pull request, re-read from GitHub (with its checks) when the copy
/// is older than [`REFRESH_AFTER_MS`]; the copy when GitHub cannot be asked.
pub async fn current(env: &Env, session_id: &str, context: &GitContext) -> Option<PullRequestInfo> {
    let known = context.pull_request.clone()?;
    if clock::now_ms() - context.pull_request_checked_at < REFRESH_AFTER_MS {
        return Some(known);
    }
    let full_name = &context.repo.full_name;
    let path = format!("/repos/{full_name}/pulls/{}", known.number);
    let fresh = async {
        let (answer, _) = tokens::as_user(env, &context.user_id, Method::Get, &path, None).await?;
        let pull = ok(answer, "reading the pull request")?;
        let pull = read_back(env, &context.user_id, full_name, &pull).await?;
        remember(env, session_id, &pull).await?;
        Ok::<_, ApiError>(pull)
    };
    match fresh.await {
        Ok(pull) => Some(pull),
        Err(error) => {
            worker::console_warn!("refreshing a pull request failed: {}", error.message);
            Some(known)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_counted_by_status_and_conclusion() {
        let runs = vec![
            json!({"status": "queued", "conclusion": null}),
            json!({"status": "in_progress", "conclusion": null}),
            json!({"status": "completed", "conclusion": "success"}),
            json!({"status": "completed", "conclusion": "skipped"}),
            json!({"status": "completed", "conclusion": "failure"}),
            json!({"status": "completed", "conclusion": "timed_out"}),
        ];
        assert_eq!(
            count_checks(&runs),
            ChecksSummary {
                total: 6,
                pending: 2,
                success: 2,
                failure: 2
            }
        );
    }

    #[test]
    fn pull_requests_read_as_the_app_shows_them() {
        let pull = json!({"number": 7, "html_url": "u", "title": "t", "state": "open",
                          "draft": true, "merged_at": null, "user": {"login": "alice"}});
        let read = info(&pull, ChecksSummary::default()).unwrap();
        assert_eq!(
            read.state,
            nightshift_protocol::repo::PullRequestState::Draft
        );
        assert_eq!(read.author.as_deref(), Some("alice"));
        let merged = json!({"number": 7, "state": "closed", "merged_at": "2026-01-01T00:00:00Z"});
        assert_eq!(
            info(&merged, ChecksSummary::default()).unwrap().state,
            nightshift_protocol::repo::PullRequestState::Merged
        );
        assert!(info(&json!({}), ChecksSummary::default()).is_none());
    }
}
