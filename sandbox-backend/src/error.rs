//! The one error type of the HTTP edge: a stable [`ErrorCode`] and a message for
//! people, answered as the protocol's `{"error": {"code", "message"}}` envelope.
//!
//! Lower layers keep their own `thiserror` enums and convert into [`ApiError`] here,
//! so the mapping from a failure to a status code lives in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nightshift_protocol::{ErrorBody, ErrorCode};

use crate::providers::error::ProviderError;

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidJson, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn sandbox_not_found(id: &str) -> ApiError {
        ApiError::new(
            ErrorCode::SandboxNotFound,
            format!("no sandbox with id {id:?}"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = self.code.as_str(), message = %self.message, "request failed");
        }
        (status, Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}

impl From<ProviderError> for ApiError {
    fn from(error: ProviderError) -> ApiError {
        let code = match &error {
            ProviderError::InvalidPath(_)
            | ProviderError::NotAFile(_)
            | ProviderError::Unsupported(_)
            | ProviderError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ProviderError::FileNotFound(_) => ErrorCode::NotFound,
            ProviderError::Unavailable(_) => ErrorCode::SandboxUnavailable,
            ProviderError::Io { .. } => ErrorCode::Internal,
        };
        ApiError::new(code, error.to_string())
    }
}

/// A refused exec request (or environment) is the caller's mistake: 400.
impl From<crate::exec::ExecRequestError> for ApiError {
    fn from(error: crate::exec::ExecRequestError) -> ApiError {
        ApiError::invalid_request(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_the_protocol_envelope_with_the_codes_status() {
        let response = ApiError::sandbox_not_found("sbx_1").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error.code, ErrorCode::SandboxNotFound);
        assert!(body.error.message.contains("sbx_1"));
    }

    #[test]
    fn provider_errors_map_to_stable_codes() {
        let escape: ApiError = ProviderError::InvalidPath("leaves the workspace".into()).into();
        assert_eq!(escape.code, ErrorCode::InvalidRequest);
        let missing: ApiError = ProviderError::FileNotFound("a.txt".into()).into();
        assert_eq!(missing.code, ErrorCode::NotFound);
    }
}
