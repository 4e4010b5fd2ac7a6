//! The bearer-token check in front of every `/v1` route except health.
//!
//! There is one caller identity (whoever holds `SANDBOX_BACKEND_TOKEN`, in practice
//! the Worker), so authorization is all-or-nothing. A refused request does nothing.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use nightshift_protocol::ErrorCode;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    match presented {
        Some(token) if token_matches(token, state.token()) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the bearer token is not valid",
        )),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "missing `Authorization: Bearer <SANDBOX_BACKEND_TOKEN>` header",
        )),
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is
/// case-insensitive, as HTTP says).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Compares in time independent of where the first difference is, so response
/// timing does not reveal the token byte by byte.
fn token_matches(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_values() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn compares_whole_tokens() {
        assert!(token_matches("secret", "secret"));
        assert!(!token_matches("secreT", "secret"));
        assert!(!token_matches("secret-longer", "secret"));
        assert!(!token_matches("", "secret"));
    }
}
