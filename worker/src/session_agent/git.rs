//! What the session's git credential route needs from its `SessionAgent`: the
//! session's repository and whose GitHub access a credential is issued for (the
//! prompter of the running turn, else the owner), for a runner token of the current
//! sandbox only; and the `github_reconnect_required` event when that user's GitHub
//! authorization is gone; and the session's pull request as last read from GitHub
//! (`pull_request_updated` when it changed).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::events::EventBody;
use nightshift_protocol::repo::PullRequestInfo;
use nightshift_session::repo_rules;
use worker::{Request, Response};

use super::SessionAgent;
use crate::api_error::{ApiError, ApiResult, json};
use crate::internal::{GitContext, GitContextRequest, GithubReconnect};
use crate::{body, clock};

impl SessionAgent {
    /// `POST /git/context`.
    pub(super) async fn git_context(&self, req: &mut Request) -> ApiResult<Response> {
        let asked: GitContextRequest = body::read_json(req).await?;
        let record = self.store.record()?;
        let stale = asked
            .generation
            .is_some_and(|generation| generation != record.sandbox_generation);
        if !record.initialized || record.deleted || stale {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this runner token is not the session's current sandbox's",
            ));
        }
        let Some(repo) = record.repo else {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this session has no repository",
            ));
        };
        let queue = self.store.queue()?;
        let prompter = queue
            .processing()
            .and_then(|prompt| prompt.message.sent_by.as_deref());
        let user_id = repo_rules::git_user(&record.owner_id, prompter).to_owned();
        Ok(json(
            200,
            &GitContext {
                repo,
                user_id,
                pull_request: record.pull_request,
                pull_request_checked_at: record.pull_request_checked_at,
            },
        ))
    }

    /// `POST /git/pull-request`: stores the pull request as just read from GitHub;
    /// a change is told as `pull_request_updated`.
    pub(super) async fn set_pull_request(&self, req: &mut Request) -> ApiResult<Response> {
        let pull: PullRequestInfo = body::read_json(req).await?;
        let mut record = self.store.record()?;
        let changed = record.pull_request.as_ref() != Some(&pull);
        record.pull_request = Some(pull.clone());
        record.pull_request_checked_at = clock::now_ms();
        self.store.save_record(&record)?;
        if changed {
            self.record_event(None, EventBody::PullRequestUpdated { pull_request: pull })?;
        }
        Ok(Response::empty()?.with_status(204))
    }

    /// `POST /git/reconnect`: tells the session's viewers that `user_id` must
    /// reconnect GitHub. Carries no token and no GitHub answer.
    pub(super) async fn github_reconnect(&self, req: &mut Request) -> ApiResult<Response> {
        let asked: GithubReconnect = body::read_json(req).await?;
        self.record_event(
            None,
            EventBody::GithubReconnectRequired {
                user_id: asked.user_id,
                message: "GitHub no longer accepts this user's authorization (revoked or \
                          expired); they must reconnect GitHub before git can fetch or push \
                          as them"
                    .to_owned(),
                connect_url: crate::github::tokens::CONNECT_PATH.to_owned(),
            },
        )?;
        Ok(Response::empty()?.with_status(204))
    }
}
