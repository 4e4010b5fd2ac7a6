//! The GitHub routes of repo-aware sessions: the caller's connection, the
//! repositories and branches they may pick, a session's repository, diff, push and
//! pull request, and the team's GitHub settings. URLs and bodies only, like the rest
//! of [`crate::api`]; the bodies are `nightshift_protocol::repo`'s types.

use nightshift_protocol::repo::{
    BranchList, DiffView, GithubConnection, GithubSettings, PullRequestInfo, PullRequestRequest,
    RepoList, RepoView,
};

use super::{ApiError, encode, request_json, request_text, session_path};

const NO_BODY: Option<&()> = None;

/// `GET /api/github`: whether the caller has connected GitHub for repositories.
pub async fn connection() -> Result<GithubConnection, ApiError> {
    request_json("GET", "/api/github", NO_BODY).await
}

/// `GET /api/github/repos?q=&page=`.
pub async fn repos(q: &str, page: u32) -> Result<RepoList, ApiError> {
    let path = format!("/api/github/repos?q={}&page={page}", encode(q));
    request_json("GET", &path, NO_BODY).await
}

/// `GET /api/github/repos/{owner}/{repo}/branches`.
pub async fn branches(full_name: &str) -> Result<BranchList, ApiError> {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, ""));
    let path = format!(
        "/api/github/repos/{}/{}/branches",
        encode(owner),
        encode(name)
    );
    request_json("GET", &path, NO_BODY).await
}

/// `GET /api/sessions/{id}/repo`.
pub async fn session_repo(session_id: &str) -> Result<RepoView, ApiError> {
    request_json("GET", &session_path(session_id, "/repo"), NO_BODY).await
}

/// `GET /api/sessions/{id}/diff`.
pub async fn session_diff(session_id: &str) -> Result<DiffView, ApiError> {
    request_json("GET", &session_path(session_id, "/diff"), NO_BODY).await
}

/// `POST /api/sessions/{id}/push`: pushes the session's branch now.
pub async fn push(session_id: &str) -> Result<(), ApiError> {
    let body = serde_json::json!({});
    request_text("POST", &session_path(session_id, "/push"), Some(&body))
        .await
        .map(drop)
}

/// `POST /api/sessions/{id}/pull-request`: opens the session's pull request as the
/// caller, or updates the one it has.
pub async fn pull_request(
    session_id: &str,
    request: &PullRequestRequest,
) -> Result<PullRequestInfo, ApiError> {
    let path = session_path(session_id, "/pull-request");
    request_json("POST", &path, Some(request)).await
}

/// `GET /api/admin/github`.
pub async fn settings() -> Result<GithubSettings, ApiError> {
    request_json("GET", "/api/admin/github", NO_BODY).await
}

/// `PUT /api/admin/github`.
pub async fn save_settings(settings: &GithubSettings) -> Result<(), ApiError> {
    request_text("PUT", "/api/admin/github", Some(settings))
        .await
        .map(drop)
}
