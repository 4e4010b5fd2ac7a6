//! The team's GitHub settings (`teams.github_allowed_repos`, `teams.
//! github_draft_pull_requests`, migration 0007): which repositories members may work
//! on and whether pull requests open as drafts. Read by every repository route,
//! written by `PUT /api/admin/github`.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::repo::GithubSettings;
use nightshift_session::repo_rules;
use serde::Deserialize;
use worker::Env;

use crate::api_error::{ApiError, ApiResult};
use crate::auth::TEAM_ID;
use crate::auth::d1::{self, Arg};

/// The most entries an allow-list holds.
pub const MAX_ALLOWED: usize = 200;

#[derive(Deserialize)]
struct Row {
    github_allowed_repos: Option<String>,
    github_draft_pull_requests: Option<i64>,
}

pub async fn get(env: &Env) -> ApiResult<GithubSettings> {
    let row: Option<Row> = d1::first(
        env,
        "SELECT github_allowed_repos, github_draft_pull_requests FROM teams WHERE id = ?",
        &[Arg::Text(TEAM_ID)],
    )
    .await?;
    let Some(row) = row else {
        return Ok(GithubSettings::default());
    };
    Ok(GithubSettings {
        allowed_repos: row
            .github_allowed_repos
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
        draft_pull_requests: row
            .github_draft_pull_requests
            .is_none_or(|draft| draft != 0),
    })
}

/// Checks and normalizes `settings` (entries trimmed, deduplicated); 400
/// `invalid_request` naming the first bad entry.
pub fn check(mut settings: GithubSettings) -> ApiResult<GithubSettings> {
    settings.allowed_repos = settings
        .allowed_repos
        .iter()
        .map(|entry| entry.trim().to_owned())
        .collect();
    if let Some(bad) = settings
        .allowed_repos
        .iter()
        .find(|entry| !repo_rules::valid_allow_entry(entry))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "`{}` is not `owner/name` or `owner/*`",
                bad.chars().take(120).collect::<String>()
            ),
        ));
    }
    if settings.allowed_repos.len() > MAX_ALLOWED {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("at most {MAX_ALLOWED} allowed repositories"),
        ));
    }
    settings.allowed_repos.sort();
    settings.allowed_repos.dedup();
    Ok(settings)
}

pub async fn put(env: &Env, settings: &GithubSettings) -> ApiResult<()> {
    d1::run(
        env,
        "UPDATE teams SET github_allowed_repos = ?, github_draft_pull_requests = ? WHERE id = ?",
        &[
            Arg::Text(&serde_json::to_string(&settings.allowed_repos)?),
            Arg::Int(i64::from(settings.draft_pull_requests)),
            Arg::Text(TEAM_ID),
        ],
    )
    .await?;
    Ok(())
}
