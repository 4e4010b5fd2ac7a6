//! The one authentication gate of `/api`: [`authenticate`] turns a request into the
//! [`Principal`] it acts for, or refuses it. Every `/api` route calls it before doing
//! anything else, so sign-in, API tokens and the like plug in here and nowhere else.
//!
//! Today there is one user, `local`. Runner links (`/api/sessions/{id}/runner`) are
//! authenticated by their session-scoped runner token instead.
//!
//! This module decides who is asking, not what they may do with a given resource;
//! handlers check ownership with the principal it returns.

use nightshift_protocol::ErrorCode;
use worker::{Env, Request};

use crate::api_error::{ApiError, ApiResult};
use crate::{clock, config};

/// The id of the single local user (see `migrations/0001_init.sql`).
pub const LOCAL_USER_ID: &str = "local";

/// Who a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(User),
    /// A session's runner, holding a valid token for that session.
    Runner(RunnerGrant),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerGrant {
    pub session_id: String,
    /// When the presented token expires (Unix seconds).
    pub token_expires_at: u64,
}

impl Principal {
    /// The user behind a request to a user route.
    pub fn user(&self) -> ApiResult<&User> {
        match self {
            Principal::User(user) => Ok(user),
            Principal::Runner(_) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "a runner token only opens a runner link",
            )),
        }
    }

    /// The runner grant behind a request to the runner link of `session_id`.
    pub fn runner_of(&self, session_id: &str) -> ApiResult<&RunnerGrant> {
        match self {
            Principal::Runner(grant) if grant.session_id == session_id => Ok(grant),
            _ => Err(invalid_runner_token(
                "a runner token for this session is required",
            )),
        }
    }
}

/// Decides who `req` acts for.
pub async fn authenticate(req: &Request, env: &Env) -> ApiResult<Principal> {
    let path = req.path();
    if let Some(session_id) = runner_link_session(&path) {
        return authenticate_runner(req, env, session_id);
    }
    Ok(Principal::User(User {
        id: LOCAL_USER_ID.to_owned(),
    }))
}

fn authenticate_runner(req: &Request, env: &Env, session_id: &str) -> ApiResult<Principal> {
    let header = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let token = bearer_token(&header)
        .ok_or_else(|| invalid_runner_token("expected `Authorization: Bearer <runner token>`"))?;
    let key = config::runner_token_key(env).map_err(ApiError::internal)?;
    let claims = key
        .verify(token, session_id, clock::now_secs())
        .map_err(|error| invalid_runner_token(error.to_string()))?;
    Ok(Principal::Runner(RunnerGrant {
        session_id: claims.session_id,
        token_expires_at: claims.expires_at,
    }))
}

fn invalid_runner_token(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRunnerToken, message)
}

/// The session id of a runner-link path `/api/sessions/{id}/runner`.
pub fn runner_link_session(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/sessions/")?;
    let (session_id, tail) = rest.split_once('/')?;
    (tail == "runner" && !session_id.is_empty()).then_some(session_id)
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_link_paths_are_recognized() {
        assert_eq!(runner_link_session("/api/sessions/abc/runner"), Some("abc"));
        assert_eq!(runner_link_session("/api/sessions/abc/events"), None);
        assert_eq!(runner_link_session("/api/sessions//runner"), None);
        assert_eq!(runner_link_session("/api/sessions/abc/runner/x"), None);
        assert_eq!(runner_link_session("/api/sessions"), None);
    }

    #[test]
    fn bearer_tokens_are_parsed() {
        assert_eq!(bearer_token("Bearer v1.a.1.x"), Some("v1.a.1.x"));
        assert_eq!(bearer_token("bearer  tok "), Some("tok"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token(""), None);
    }
}
