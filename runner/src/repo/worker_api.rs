//! The runner's calls to the Worker for its session's repository, with its runner
//! token: a git credential (`POST /api/sessions/{id}/git/credential`) and the pull
//! request (`POST /api/sessions/{id}/git/pull-request`); and the session's copy of
//! the agent's conversation (`/api/sessions/{id}/conversation`). The Worker decides;
//! the runner only passes on what it is given, and never logs a credential.

use std::time::Duration;

use nightshift_protocol::conversation::{ConversationPage, ConversationStored, ConversationWrite};
use nightshift_protocol::repo::{
    CredentialRequest, GitCredential, PullRequestInfo, PullRequestRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed, in words fit for the agent and the log (never a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

/// Calls the Worker's runner-token routes of one session.
#[derive(Clone)]
pub struct WorkerApi {
    http: reqwest::Client,
    /// `http(s)://<host>/api/sessions/<id>`.
    session_url: String,
    token: watch::Receiver<String>,
}

impl WorkerApi {
    pub fn new(session_url: String, token: watch::Receiver<String>) -> reqwest::Result<WorkerApi> {
        let http = crate::outbound::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(CALL_TIMEOUT)
            .build()?;
        Ok(WorkerApi {
            http,
            session_url,
            token,
        })
    }

    pub async fn credential(&self, request: &CredentialRequest) -> Result<GitCredential, ApiError> {
        self.post("git/credential", request).await
    }

    pub async fn pull_request(
        &self,
        request: &PullRequestRequest,
    ) -> Result<PullRequestInfo, ApiError> {
        self.post("git/pull-request", request).await
    }

    /// A page of the session's copy of the conversation, from entry `from` on.
    pub async fn conversation(&self, from: u64) -> Result<ConversationPage, ApiError> {
        let request = self
            .http
            .get(format!("{}/conversation?from={from}", self.session_url));
        self.send(request).await
    }

    /// Replaces the session's copy from `write.from` on.
    pub async fn write_conversation(
        &self,
        write: &ConversationWrite,
    ) -> Result<ConversationStored, ApiError> {
        self.post("conversation", write).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let request = self
            .http
            .post(format!("{}/{path}", self.session_url))
            .json(body);
        self.send(request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let token = self.token.borrow().clone();
        let failed = |message: String| ApiError {
            status: None,
            code: None,
            message,
        };
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|error| failed(format!("the session cannot be reached: {error}")))?;
        let status = response.status();
        if !status.is_success() {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let code = body["error"]["code"].as_str().map(str::to_string);
            let message: String = body["error"]["message"]
                .as_str()
                .unwrap_or("no reason given")
                .chars()
                .take(300)
                .collect();
            return Err(ApiError {
                status: Some(status.as_u16()),
                code,
                message: format!("the session refused ({status}): {message}"),
            });
        }
        response
            .json()
            .await
            .map_err(|error| failed(format!("the session's answer was not understood: {error}")))
    }
}
