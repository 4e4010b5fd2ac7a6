//! The `/api` router: authenticate, match the route, call its handler, and answer
//! every failure with the protocol's error envelope.
//!
//! Handlers are thin: parse, call (D1, a Durable Object, the sandbox backend), map to
//! a response. The route table is a plain function ([`resolve`]) so it is tested
//! without a runtime.

use nightshift_protocol::ErrorCode;
use worker::{Env, Method, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::auth;

mod health;
mod messages;
mod models;
mod questions;
mod sessions;
mod streams;

/// A matched `/api` route with its path parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Health,
    ListSessions,
    CreateSession,
    GetSession(&'a str),
    PostMessage(&'a str),
    ListMessages(&'a str),
    CancelMessage {
        session_id: &'a str,
        message_id: &'a str,
    },
    Abort(&'a str),
    UpdateSession(&'a str),
    Models,
    EditMessage {
        session_id: &'a str,
        message_id: &'a str,
    },
    AnswerQuestion {
        session_id: &'a str,
        question_id: &'a str,
    },
    SessionEvents(&'a str),
    RunnerLink(&'a str),
    SessionListEvents,
}

/// Why no route matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// The path exists but not with this method; `allow` lists the methods it has.
    MethodNotAllowed {
        allow: &'static str,
    },
}

/// Matches `method` and `path` against the route table.
pub fn resolve<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, Miss> {
    let Some(rest) = path.strip_prefix("/api/") else {
        return Err(Miss::NotFound);
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(Miss::NotFound);
    }
    let get = *method == Method::Get;
    let post = *method == Method::Post;
    let delete = *method == Method::Delete;
    let patch = *method == Method::Patch;
    let wrong = |allow| Err(Miss::MethodNotAllowed { allow });
    match segments.as_slice() {
        ["health"] if get => Ok(Route::Health),
        ["health"] => wrong("GET"),
        ["events"] if get => Ok(Route::SessionListEvents),
        ["events"] => wrong("GET"),
        ["sessions"] if get => Ok(Route::ListSessions),
        ["sessions"] if post => Ok(Route::CreateSession),
        ["sessions"] => wrong("GET, POST"),
        ["models"] if get => Ok(Route::Models),
        ["models"] => wrong("GET"),
        ["sessions", id] if get => Ok(Route::GetSession(id)),
        ["sessions", id] if patch => Ok(Route::UpdateSession(id)),
        ["sessions", _] => wrong("GET, PATCH"),
        ["sessions", id, "messages"] if get => Ok(Route::ListMessages(id)),
        ["sessions", id, "messages"] if post => Ok(Route::PostMessage(id)),
        ["sessions", _, "messages"] => wrong("GET, POST"),
        ["sessions", id, "messages", message_id] if delete => Ok(Route::CancelMessage {
            session_id: id,
            message_id,
        }),
        ["sessions", id, "messages", message_id] if patch => Ok(Route::EditMessage {
            session_id: id,
            message_id,
        }),
        ["sessions", _, "messages", _] => wrong("PATCH, DELETE"),
        ["sessions", id, "questions", question_id, "answer"] if post => {
            Ok(Route::AnswerQuestion {
                session_id: id,
                question_id,
            })
        }
        ["sessions", _, "questions", _, "answer"] => wrong("POST"),
        ["sessions", id, "abort"] if post => Ok(Route::Abort(id)),
        ["sessions", _, "abort"] => wrong("POST"),
        ["sessions", id, "events"] if get => Ok(Route::SessionEvents(id)),
        ["sessions", _, "events"] => wrong("GET"),
        ["sessions", id, "runner"] if get => Ok(Route::RunnerLink(id)),
        ["sessions", _, "runner"] => wrong("GET"),
        _ => Err(Miss::NotFound),
    }
}

/// Answers one `/api` request.
pub async fn handle(req: Request, env: Env) -> Response {
    match dispatch(req, &env).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn dispatch(mut req: Request, env: &Env) -> ApiResult<Response> {
    let principal = auth::authenticate(&req, env).await?;
    let path = req.path();
    let route = match resolve(&req.method(), &path) {
        Ok(route) => route,
        Err(Miss::NotFound) => return Err(ApiError::not_found(format!("no route {path}"))),
        Err(Miss::MethodNotAllowed { allow }) => {
            let mut response = ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed on {path}; use {allow}", req.method()),
            )
            .into_response();
            response.headers_mut().set("allow", allow)?;
            return Ok(response);
        }
    };
    match route {
        Route::Health => Ok(health::get(env).await),
        Route::ListSessions => sessions::list(env, principal.user()?).await,
        Route::CreateSession => sessions::create(&mut req, env, principal.user()?).await,
        Route::GetSession(id) => sessions::get(env, principal.user()?, id).await,
        Route::PostMessage(id) => messages::post(&mut req, env, principal.user()?, id).await,
        Route::ListMessages(id) => messages::list(env, principal.user()?, id).await,
        Route::CancelMessage {
            session_id,
            message_id,
        } => messages::cancel(env, principal.user()?, session_id, message_id).await,
        Route::Abort(id) => messages::abort(env, principal.user()?, id).await,
        Route::UpdateSession(id) => sessions::update(&mut req, env, principal.user()?, id).await,
        Route::Models => models::list(env, principal.user()?),
        Route::EditMessage {
            session_id,
            message_id,
        } => messages::edit(&mut req, env, principal.user()?, session_id, message_id).await,
        Route::AnswerQuestion {
            session_id,
            question_id,
        } => questions::answer(&mut req, env, principal.user()?, session_id, question_id).await,
        Route::SessionEvents(id) => streams::session_events(&req, env, principal.user()?, id).await,
        Route::RunnerLink(id) => streams::runner_link(&req, env, principal.runner_of(id)?).await,
        Route::SessionListEvents => {
            principal.user()?;
            streams::session_list_events(env).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_resolves() {
        assert_eq!(resolve(&Method::Get, "/api/health"), Ok(Route::Health));
        assert_eq!(
            resolve(&Method::Get, "/api/sessions"),
            Ok(Route::ListSessions)
        );
        assert_eq!(
            resolve(&Method::Post, "/api/sessions"),
            Ok(Route::CreateSession)
        );
        assert_eq!(
            resolve(&Method::Get, "/api/sessions/s1"),
            Ok(Route::GetSession("s1"))
        );
        assert_eq!(
            resolve(&Method::Post, "/api/sessions/s1/messages"),
            Ok(Route::PostMessage("s1"))
        );
        assert_eq!(
            resolve(&Method::Get, "/api/sessions/s1/messages"),
            Ok(Route::ListMessages("s1"))
        );
        assert_eq!(
            resolve(&Method::Delete, "/api/sessions/s1/messages/m1"),
            Ok(Route::CancelMessage {
                session_id: "s1",
                message_id: "m1"
            })
        );
        assert_eq!(
            resolve(&Method::Post, "/api/sessions/s1/abort"),
            Ok(Route::Abort("s1"))
        );
        assert_eq!(
            resolve(&Method::Get, "/api/sessions/s1/events"),
            Ok(Route::SessionEvents("s1"))
        );
        assert_eq!(
            resolve(&Method::Get, "/api/sessions/s1/runner"),
            Ok(Route::RunnerLink("s1"))
        );
        assert_eq!(
            resolve(&Method::Get, "/api/events"),
            Ok(Route::SessionListEvents)
        );
    }

    #[test]
    fn wrong_methods_name_the_allowed_ones() {
        assert_eq!(
            resolve(&Method::Put, "/api/sessions"),
            Err(Miss::MethodNotAllowed { allow: "GET, POST" })
        );
        assert_eq!(
            resolve(&Method::Get, "/api/sessions/s1/abort"),
            Err(Miss::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            resolve(&Method::Get, "/api/sessions/s1/messages/m1"),
            Err(Miss::MethodNotAllowed {
                allow: "PATCH, DELETE"
            })
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/api/nope",
            "/api/",
            "/api",
            "/api/sessions/s1/other",
            "/api/sessions//messages",
            "/x",
        ] {
            assert_eq!(resolve(&Method::Get, path), Err(Miss::NotFound), "{path}");
        }
    }
}
