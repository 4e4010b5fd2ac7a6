//! What a user's own GitHub access shows of repositories: the list the picker
//! offers (`GET /api/github/repos`), a repository's branches, and the checks a new
//! session's repository passes (`POST /api/sessions` with `repo`): allowed by the
//! team, visible to the user with push access, the base branch existing, and the
//! branch or pull request to continue.
//!
//! A repository the team does not allow and one the user cannot reach get the same
//! answer (403 `repo_not_allowed`), so a private repository's existence does not
//! leak through this API.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::repo::{
    BranchList, ChecksSummary, GithubSettings, PullRequestInfo, PullRequestState, RepoChoice,
    RepoList, RepoSummary, SessionRepo, valid_branch, valid_full_name,
};
use nightshift_session::repo_rules;
use serde_json::Value;
use worker::{Env, Method};

use super::api::{Answer, encode};
use super::tokens::{self, as_user};
use crate::api_error::{ApiError, ApiResult};

/// Repositories asked of GitHub per page.
const PER_PAGE: u32 = 100;
/// Branch names listed at most.
const MAX_BRANCHES: usize = 300;

fn not_allowed(full_name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::RepoNotAllowed,
        format!(
            "`{full_name}` is not a repository this team allows that you can push to with your \
             GitHub access"
        ),
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn summary(repo: &Value) -> Option<RepoSummary> {
    Some(RepoSummary {
        full_name: repo["full_name"].as_str()?.to_owned(),
        private: repo["private"].as_bool().unwrap_or(true),
        default_branch: repo["default_branch"].as_str().unwrap_or("main").to_owned(),
        description: repo["description"].as_str().map(str::to_owned),
        can_push: repo["permissions"]["push"].as_bool().unwrap_or(false),
    })
}

/// `GET /api/github/repos?q=&page=`.
pub async fn list(
    env: &Env,
    user_id: &str,
    settings: &GithubSettings,
    query: &str,
    page: u32,
) -> ApiResult<RepoList> {
    let path = format!("/user/repos?per_page={PER_PAGE}&page={page}&sort=full_name");
    let (answer, _) = as_user(env, user_id, Method::Get, &path, None).await?;
    if !answer.ok() {
        return Err(answer.into_error("listing your repositories"));
    }
    let query = query.trim().to_ascii_lowercase();
    let repos = answer
        .body
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(summary)
        .filter(|repo| repo_rules::allowed(&settings.allowed_repos, &repo.full_name))
        .filter(|repo| query.is_empty() || repo.full_name.to_ascii_lowercase().contains(&query))
        .collect();
    Ok(RepoList {
        repos,
        next_page: answer.has_next.then_some(page + 1),
    })
}

/// The repository as the user sees it (403 `repo_not_allowed` when the team does
/// not allow it or the user cannot see it).
async fn visible_repo(
    env: &Env,
    user_id: &str,
    settings: &GithubSettings,
    full_name: &str,
) -> ApiResult<Value> {
    if !valid_full_name(full_name) {
        return Err(invalid("a repository is named `owner/name`"));
    }
    if !repo_rules::allowed(&settings.allowed_repos, full_name) {
        return Err(not_allowed(full_name));
    }
    let (answer, _) = as_user(
        env,
        user_id,
        Method::Get,
        &format!("/repos/{full_name}"),
        None,
    )
    .await?;
    match answer.status {
        200 => Ok(answer.body),
        403 | 404 => Err(not_allowed(full_name)),
        _ => Err(answer.into_error("reading the repository")),
    }
}

/// `GET /api/github/repos/{owner}/{repo}/branches`.
pub async fn branches(
    env: &Env,
    user_id: &str,
    settings: &GithubSettings,
    full_name: &str,
) -> ApiResult<BranchList> {
    let repo = visible_repo(env, user_id, settings, full_name).await?;
    let mut branches = Vec::new();
    let mut page = 1;
    loop {
        let path = format!("/repos/{full_name}/branches?per_page={PER_PAGE}&page={page}");
        let (answer, _) = as_user(env, user_id, Method::Get, &path, None).await?;
        if !answer.ok() {
            return Err(answer.into_error("listing branches"));
        }
        branches.extend(
            answer
                .body
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|branch| branch["name"].as_str().map(str::to_owned)),
        );
        if !answer.has_next || branches.len() >= MAX_BRANCHES {
            break;
        }
        page += 1;
    }
    branches.truncate(MAX_BRANCHES);
    Ok(BranchList {
        default_branch: repo["default_branch"].as_str().unwrap_or("main").to_owned(),
        branches,
    })
}

/// Checks at GitHub that `user_id` can push to `full_name` (403 `repo_not_allowed`
/// otherwise, 409 `github_not_connected` without a live authorization); answers the
/// user's live token.
pub async fn require_push(
    env: &Env,
    user_id: &str,
    full_name: &str,
) -> ApiResult<super::super::api_keys::github_accounts::LiveToken> {
    let (answer, token) = as_user(
        env,
        user_id,
        Method::Get,
        &format!("/repos/{full_name}"),
        None,
    )
    .await?;
    if answer.ok() && answer.body["permissions"]["push"].as_bool() == Some(true) {
        return Ok(token);
    }
    if answer.ok() || matches!(answer.status, 403 | 404) {
        return Err(ApiError::new(
            ErrorCode::RepoNotAllowed,
            format!("the user acting cannot push to {full_name}"),
        ));
    }
    Err(answer.into_error("checking access to the repository"))
}

/// A pull request's state as the app shows it.
pub fn pull_state(pull: &Value) -> PullRequestState {
    if pull["merged_at"].is_string() || pull["merged"].as_bool() == Some(true) {
        PullRequestState::Merged
    } else if pull["state"].as_str() == Some("closed") {
        PullRequestState::Closed
    } else if pull["draft"].as_bool() == Some(true) {
        PullRequestState::Draft
    } else {
        PullRequestState::Open
    }
}

async fn branch_exists(env: &Env, user_id: &str, full_name: &str, branch: &str) -> ApiResult<bool> {
    let path = format!("/repos/{full_name}/branches/{}", encode(branch));
    let (answer, _) = as_user(env, user_id, Method::Get, &path, None).await?;
    match answer.status {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(answer.into_error("reading a branch")),
    }
}

/// A new session's repository, checked, with the pull request it continues.
pub struct Resolved {
    pub repo: SessionRepo,
    pub pull_request: Option<PullRequestInfo>,
}

/// Checks `choice` for `user_id` and names the session's branch.
pub async fn resolve(
    env: &Env,
    user_id: &str,
    settings: &GithubSettings,
    session_id: &str,
    title: &str,
    choice: &RepoChoice,
) -> ApiResult<Resolved> {
    if choice.branch.is_some() && choice.pull_request.is_some() {
        return Err(invalid("continue a branch or a pull request, not both"));
    }
    for branch in choice.base_branch.iter().chain(&choice.branch) {
        if !valid_branch(branch) {
            return Err(invalid("a branch name git would refuse"));
        }
    }
    let repo = visible_repo(env, user_id, settings, &choice.full_name).await?;
    let full_name = repo["full_name"]
        .as_str()
        .unwrap_or(&choice.full_name)
        .to_owned();
    if repo["permissions"]["push"].as_bool() != Some(true) {
        return Err(not_allowed(&full_name));
    }
    let clone_url = repo["clone_url"]
        .as_str()
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .ok_or_else(|| ApiError::new(ErrorCode::GithubUnavailable, "GitHub gave no clone URL"))?
        .to_owned();
    let mut base_branch = choice
        .base_branch
        .clone()
        .or_else(|| repo["default_branch"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "main".to_owned());
    let mut pull_request = None;
    let (branch, existing_branch) = if let Some(number) = choice.pull_request {
        let (answer, _) = as_user(
            env,
            user_id,
            Method::Get,
            &format!("/repos/{full_name}/pulls/{number}"),
            None,
        )
        .await?;
        if answer.status == 404 {
            return Err(invalid(format!(
                "{full_name} has no pull request #{number}"
            )));
        }
        let pull = ok_body(answer, "reading the pull request")?;
        let same_repo = pull["head"]["repo"]["full_name"]
            .as_str()
            .is_some_and(|head| head.eq_ignore_ascii_case(&full_name));
        let head = pull["head"]["ref"].as_str().unwrap_or_default();
        if !same_repo || !valid_branch(head) {
            return Err(invalid(
                "only pull requests whose branch is in the same repository can be continued",
            ));
        }
        base_branch = pull["base"]["ref"]
            .as_str()
            .unwrap_or(&base_branch)
            .to_owned();
        pull_request = super::pulls::info(&pull, ChecksSummary::default());
        (head.to_owned(), true)
    } else if let Some(branch) = &choice.branch {
        if !branch_exists(env, user_id, &full_name, branch).await? {
            return Err(invalid(format!("{full_name} has no branch `{branch}`")));
        }
        (branch.clone(), true)
    } else {
        (repo_rules::branch_name(session_id, title), false)
    };
    if !branch_exists(env, user_id, &full_name, &base_branch).await? {
        return Err(invalid(format!(
            "{full_name} has no branch `{base_branch}`"
        )));
    }
    let account = tokens::live(env, user_id, None).await?.account;
    Ok(Resolved {
        repo: SessionRepo {
            full_name,
            clone_url,
            base_branch,
            branch,
            existing_branch,
            author: repo_rules::github_author(
                account.github_id,
                &account.login,
                account.name.as_deref(),
            ),
        },
        pull_request,
    })
}

fn ok_body(answer: Answer, what: &str) -> ApiResult<Value> {
    if answer.ok() {
        Ok(answer.body)
    } else {
        Err(answer.into_error(what))
    }
}
