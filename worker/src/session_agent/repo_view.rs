//! The session's repository as its viewers see it: `GET /repo` (the `SessionRepo`
//! and the runner's latest `RepoState`, stored by the runner link's intake), `GET
//! /diff` (the diff computed by git inside the sandbox through the backend's exec,
//! parsed as hostile by `nightshift_session::diff_view`), and `POST /push` (a `push`
//! frame to the runner).

use std::time::Duration;

use nightshift_protocol::ErrorCode;
use nightshift_protocol::repo::RepoView;
use nightshift_protocol::runner_link::SessionFrame;
use nightshift_protocol::sandbox::ExecRequest;
use nightshift_session::diff_view::{diff_command, parse_diff};
use worker::Response;

use super::SessionAgent;
use crate::api_error::{ApiError, ApiResult, json};
use crate::sandbox_client;

/// How long the diff may take in the sandbox, and the whole exchange with the backend.
const DIFF_TIMEOUT: Duration = Duration::from_secs(20);
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

impl SessionAgent {
    /// `GET /repo`: 404 for a session without a repository.
    pub(super) fn repo_view(&self) -> ApiResult<Response> {
        let record = self.store.record()?;
        let repo = record
            .repo
            .ok_or_else(|| ApiError::not_found("this session has no repository"))?;
        Ok(json(
            200,
            &RepoView {
                repo,
                state: self.store.repo_state()?,
                pull_request: record.pull_request,
            },
        ))
    }

    /// `GET /diff`: 404 without a repository, 503 `sandbox_unavailable` while the
    /// sandbox is not there, 409 `conflict` while the repository is not cloned.
    pub(super) async fn diff(&self) -> ApiResult<Response> {
        let record = self.store.record()?;
        let repo = record
            .repo
            .ok_or_else(|| ApiError::not_found("this session has no repository"))?;
        let sandbox_id = record.sandbox.sandbox_id().ok_or_else(|| {
            ApiError::new(
                ErrorCode::SandboxUnavailable,
                "the session's sandbox is not running",
            )
        })?;
        let (command, args) = diff_command(&repo.base_branch);
        let request = ExecRequest {
            command,
            args,
            env: Default::default(),
            cwd: None,
            timeout_ms: Some(u64::try_from(DIFF_TIMEOUT.as_millis()).unwrap_or(u64::MAX)),
            stdin: None,
        };
        let result = sandbox_client::exec(&self.env, sandbox_id, &request, EXCHANGE_TIMEOUT)
            .await
            .map_err(|error| ApiError::new(ErrorCode::SandboxUnavailable, error))?;
        if result.exit.code != 0 {
            // The error output is the sandbox's: not passed on.
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the repository's diff cannot be computed yet (not cloned, or its history \
                 has no merge base with the base branch)",
            ));
        }
        Ok(json(200, &parse_diff(&result.stdout, &repo.base_branch)))
    }

    /// `POST /push`: asks the runner to push the session's branch; its `repo` frame
    /// (and the `repo_updated` event) tells how it went. 404 without a repository,
    /// 409 without a runner.
    pub(super) fn push_branch(&self) -> ApiResult<Response> {
        let record = self.store.record()?;
        if record.repo.is_none() {
            return Err(ApiError::not_found("this session has no repository"));
        }
        let told = self
            .current_runner(&record)
            .is_some_and(|(socket, _)| socket.send(&SessionFrame::Push).is_ok());
        if !told {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the session's sandbox is not running; try again once it is",
            ));
        }
        Ok(Response::empty()?.with_status(202))
    }
}
