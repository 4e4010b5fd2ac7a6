//! The one error envelope of every Nightshift HTTP edge:
//! `{"error": {"code": "...", "message": "..."}}`.
//!
//! `code` is stable (clients branch on it); `message` is for people and may change.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. Serialized in `snake_case`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON, or not the JSON the route expects.
    InvalidJson,
    /// A field is present but its value is not acceptable (see the message).
    InvalidRequest,
    /// A prompt with no non-whitespace content.
    EmptyMessage,
    /// A prompt over [`crate::limits::MAX_MESSAGE_BYTES`].
    MessageTooLarge,
    /// A request body over [`crate::limits::MAX_REQUEST_BYTES`].
    PayloadTooLarge,
    /// No credentials, or credentials that are not valid.
    Unauthorized,
    /// A runner token that is wrong, for another session, or expired.
    InvalidRunnerToken,
    /// Valid credentials that do not allow this.
    Forbidden,
    /// No such route or resource (or one the caller may not know exists).
    NotFound,
    /// The method is not allowed on this route.
    MethodNotAllowed,
    /// The request conflicts with the resource's current state
    /// (for example cancelling a prompt that is already running).
    Conflict,
    /// Editing a prompt that is no longer queued (it started, ended or was cancelled).
    NotQueued,
    /// Answering a question that was already answered or expired.
    QuestionClosed,
    /// A model that is not among the user's models (`GET /api/models`).
    UnknownModel,
    /// The sandbox backend could not be reached or refused to create a sandbox.
    SandboxUnavailable,
    /// A sandbox that does not exist.
    SandboxNotFound,
    /// Something failed on our side; the message says what.
    Internal,
    /// No valid sign-in (session cookie or API token) came with the request.
    Unauthenticated,
    /// A cookie-authenticated request that changes state without the right
    /// `X-CSRF-Token`.
    CsrfFailed,
    /// An API token whose scopes do not cover this request.
    InsufficientScope,
    /// The development sign-in is not enabled on this deployment.
    DevAuthDisabled,
    /// A runner connection while a live connection holds the session's runner link.
    RunnerLinkTaken,
    /// An LLM base URL that points at loopback, private, link-local or the platform's
    /// own hosts (and is not allowlisted by the operator).
    BaseUrlNotAllowed,
    /// Too many requests from this client; try again later (the message says when).
    RateLimited,
    /// A per-session or per-user cap is reached (the message names it and its limit).
    QuotaExceeded,
    /// A service inside the sandbox (VS Code, the desktop) is not running; the
    /// message says why (for example the program is not installed).
    ServiceUnavailable,
    /// The provider behind this sandbox does not implement the operation (yet).
    Unsupported,
    /// The caller has no GitHub credential with repository access (never connected,
    /// revoked, or expired beyond refresh); the message says where to connect.
    GithubNotConnected,
    /// A repository the team does not allow, or one the caller cannot reach on
    /// GitHub (the same answer for both, so a private repository's existence does
    /// not leak).
    RepoNotAllowed,
    /// GitHub answered with an error or could not be reached; the message says what.
    GithubUnavailable,
    /// A prompt, an answer or a panel for an archived session: its sandbox is gone
    /// and, with no checkpoint kept, it cannot be resumed (the message says so).
    SessionArchived,
    /// A spend cap (cost or tokens per session, per user per day or month, per team
    /// per month) is reached; the message names the cap, its value and who can raise
    /// it (the team's admins).
    SpendCapReached,
    /// A webhook URL that is not `https` to a public host (plain `http` only to
    /// `localhost`/`127.0.0.1` on a development deployment), or is too long.
    WebhookUrlNotAllowed,
    /// A rewind while a turn runs: abort it or wait for it to end first.
    TurnRunning,
    /// A rewind or fork to a turn without a kept checkpoint (still being taken, it
    /// failed, the turn was itself rewound, or its sandbox is gone).
    NoCheckpoint,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson | ErrorCode::InvalidRequest | ErrorCode::EmptyMessage => 400,
            ErrorCode::UnknownModel | ErrorCode::BaseUrlNotAllowed => 400,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => 429,
            ErrorCode::MessageTooLarge | ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unauthorized | ErrorCode::InvalidRunnerToken => 401,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden | ErrorCode::CsrfFailed | ErrorCode::InsufficientScope => 403,
            ErrorCode::NotFound | ErrorCode::SandboxNotFound | ErrorCode::DevAuthDisabled => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict | ErrorCode::NotQueued | ErrorCode::QuestionClosed => 409,
            ErrorCode::RunnerLinkTaken => 409,
            ErrorCode::SandboxUnavailable | ErrorCode::ServiceUnavailable => 503,
            ErrorCode::Internal => 500,
            ErrorCode::Unsupported => 501,
            ErrorCode::GithubNotConnected => 409,
            ErrorCode::RepoNotAllowed => 403,
            ErrorCode::GithubUnavailable => 502,
            ErrorCode::SessionArchived => 409,
            ErrorCode::SpendCapReached => 429,
            ErrorCode::WebhookUrlNotAllowed => 400,
            ErrorCode::TurnRunning | ErrorCode::NoCheckpoint => 409,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::EmptyMessage => "empty_message",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidRunnerToken => "invalid_runner_token",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotQueued => "not_queued",
            ErrorCode::QuestionClosed => "question_closed",
            ErrorCode::UnknownModel => "unknown_model",
            ErrorCode::SandboxUnavailable => "sandbox_unavailable",
            ErrorCode::SandboxNotFound => "sandbox_not_found",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::DevAuthDisabled => "dev_auth_disabled",
            ErrorCode::RunnerLinkTaken => "runner_link_taken",
            ErrorCode::BaseUrlNotAllowed => "base_url_not_allowed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::GithubNotConnected => "github_not_connected",
            ErrorCode::RepoNotAllowed => "repo_not_allowed",
            ErrorCode::GithubUnavailable => "github_unavailable",
            ErrorCode::SessionArchived => "session_archived",
            ErrorCode::SpendCapReached => "spend_cap_reached",
            ErrorCode::WebhookUrlNotAllowed => "webhook_url_not_allowed",
            ErrorCode::TurnRunning => "turn_running",
            ErrorCode::NoCheckpoint => "no_checkpoint",
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_documented_shape() {
        let body = ErrorBody::new(ErrorCode::MessageTooLarge, "too big");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "message_too_large", "message": "too big"}})
        );
    }

    #[test]
    fn as_str_matches_serde() {
        for code in [
            ErrorCode::InvalidJson,
            ErrorCode::InvalidRequest,
            ErrorCode::EmptyMessage,
            ErrorCode::MessageTooLarge,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::InvalidRunnerToken,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Conflict,
            ErrorCode::NotQueued,
            ErrorCode::QuestionClosed,
            ErrorCode::UnknownModel,
            ErrorCode::SandboxUnavailable,
            ErrorCode::SandboxNotFound,
            ErrorCode::Internal,
            ErrorCode::Unauthenticated,
            ErrorCode::CsrfFailed,
            ErrorCode::InsufficientScope,
            ErrorCode::DevAuthDisabled,
            ErrorCode::RunnerLinkTaken,
            ErrorCode::BaseUrlNotAllowed,
            ErrorCode::RateLimited,
            ErrorCode::QuotaExceeded,
            ErrorCode::ServiceUnavailable,
            ErrorCode::Unsupported,
            ErrorCode::GithubNotConnected,
            ErrorCode::RepoNotAllowed,
            ErrorCode::GithubUnavailable,
            ErrorCode::SessionArchived,
            ErrorCode::SpendCapReached,
            ErrorCode::WebhookUrlNotAllowed,
            ErrorCode::TurnRunning,
            ErrorCode::NoCheckpoint,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert!((400..600).contains(&code.http_status()));
        }
    }
}
