//! The one error type of the Worker's HTTP edge and the JSON responses built from it.
//!
//! Every failure a client can see becomes an [`ApiError`]: a stable protocol
//! [`ErrorCode`] (which also fixes the HTTP status) and a message for people, answered
//! as the protocol's `{"error": {"code", "message"}}` envelope. Building a response
//! never fails: if even serialization breaks, a fixed envelope is sent instead.

use nightshift_protocol::{ErrorBody, ErrorCode};
use serde::Serialize;
use worker::{Headers, Response, ResponseBuilder};

/// A failure to answer with the protocol's error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn into_response(self) -> Response {
        let status = self.code.http_status();
        let body = ErrorBody::new(self.code, self.message);
        match serde_json::to_vec(&body) {
            Ok(bytes) => json_bytes(status, bytes),
            Err(_) => json_bytes(
                500,
                br#"{"error":{"code":"internal","message":"the error could not be encoded"}}"#
                    .to_vec(),
            ),
        }
    }
}

impl From<worker::Error> for ApiError {
    fn from(error: worker::Error) -> Self {
        worker::console_error!("internal error: {error}");
        ApiError::internal(error.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> Self {
        ApiError::internal(format!("encoding failed: {error}"))
    }
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(error) => ApiError::from(error).into_response(),
    }
}

fn json_bytes(status: u16, bytes: Vec<u8>) -> Response {
    let headers = Headers::new();
    // Setting a well-formed header on a fresh, mutable header list cannot fail.
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("cache-control", "no-store");
    ResponseBuilder::new()
        .with_status(status)
        .with_headers(headers)
        .fixed(bytes)
}

/// Reads an error envelope from a response of a Durable Object or the sandbox
/// backend, or describes the response when it is not one.
pub async fn from_response(mut response: Response) -> ApiError {
    let status = response.status_code();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ApiError::new(body.error.code, body.error.message),
        Err(_) => {
            let snippet: String = text.chars().take(200).collect();
            ApiError::internal(format!("unexpected answer {status}: {snippet}"))
        }
    }
}
