//! The `/api` router: authenticate, match the route, call its handler, and answer
//! every failure with the protocol's error envelope.
//!
//! Handlers are thin: parse, call (D1, a Durable Object, the sandbox backend), map to
//! a response. The route table is a plain function ([`resolve`]) so it is tested
//! without a runtime.
//!
//! Access: every route says who may call it ([`Route::access`], an exhaustive match,
//! so a new route cannot be added without deciding). [`dispatch`] enforces it before
//! any handler runs: anonymous callers get 401, callers who cannot see a session get
//! 404 (its existence does not leak), callers who see it but may not do this get 403.
//! [`ROUTES`] lists the table (served at `GET /api/admin/routes` for the role-walk
//! test); a unit test checks it against [`resolve`]'s match arms.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::Access;
use worker::{Env, Method, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::auth;

pub mod admin;
pub mod auth_routes;
mod health;
pub mod keys;
pub mod me;
mod messages;
mod models;
pub mod presence;
mod questions;
mod sessions;
pub mod shares;
mod streams;
pub mod tokens;

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
    DeleteSession(&'a str),
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
    GetMe,
    PatchMe,
    ListTokens,
    CreateToken,
    DeleteToken(&'a str),
    ListMembers,
    PatchMember(&'a str),
    RemoveMember(&'a str),
    ListInvites,
    CreateInvite,
    RevokeInvite(&'a str),
    GetSettings,
    PutSettings,
    ListRoutes,
    TeamMembers,
    ListShares(&'a str),
    PutShare {
        session_id: &'a str,
        user_id: &'a str,
    },
    DeleteShare {
        session_id: &'a str,
        user_id: &'a str,
    },
    CreateShareLink(&'a str),
    DeleteShareLink {
        session_id: &'a str,
        link_id: &'a str,
    },
    AcceptShareLink(&'a str),
    Presence(&'a str),
    PresenceHeartbeat(&'a str),
    PresenceLeave(&'a str),
    StreamStats(&'a str),
    ListKeys,
    CreateKey,
    DeleteKey(&'a str),
}

/// Every route as `(method, path template)`: what `GET /api/admin/routes` lists.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("GET", "/api/events"),
    ("GET", "/api/sessions"),
    ("POST", "/api/sessions"),
    ("GET", "/api/sessions/{id}"),
    ("GET", "/api/sessions/{id}/messages"),
    ("POST", "/api/sessions/{id}/messages"),
    ("DELETE", "/api/sessions/{id}/messages/{message_id}"),
    ("POST", "/api/sessions/{id}/abort"),
    ("PATCH", "/api/sessions/{id}"),
    ("DELETE", "/api/sessions/{id}"),
    ("GET", "/api/models"),
    ("PATCH", "/api/sessions/{id}/messages/{message_id}"),
    ("POST", "/api/sessions/{id}/questions/{question_id}/answer"),
    ("GET", "/api/sessions/{id}/events"),
    ("GET", "/api/sessions/{id}/runner"),
    ("GET", "/api/sessions/{id}/presence"),
    ("POST", "/api/sessions/{id}/presence"),
    ("DELETE", "/api/sessions/{id}/presence"),
    ("GET", "/api/sessions/{id}/streams"),
    ("GET", "/api/sessions/{id}/shares"),
    ("PUT", "/api/sessions/{id}/shares/{user_id}"),
    ("DELETE", "/api/sessions/{id}/shares/{user_id}"),
    ("POST", "/api/sessions/{id}/share-links"),
    ("DELETE", "/api/sessions/{id}/share-links/{link_id}"),
    ("POST", "/api/share-links/{token}/accept"),
    ("GET", "/api/me"),
    ("PATCH", "/api/me"),
    ("GET", "/api/tokens"),
    ("POST", "/api/tokens"),
    ("DELETE", "/api/tokens/{id}"),
    ("GET", "/api/team/members"),
    ("GET", "/api/admin/members"),
    ("PATCH", "/api/admin/members/{user_id}"),
    ("DELETE", "/api/admin/members/{user_id}"),
    ("GET", "/api/admin/invites"),
    ("POST", "/api/admin/invites"),
    ("DELETE", "/api/admin/invites/{id}"),
    ("GET", "/api/admin/settings"),
    ("PUT", "/api/admin/settings"),
    ("GET", "/api/admin/routes"),
    ("GET", "/api/keys"),
    ("POST", "/api/keys"),
    ("DELETE", "/api/keys/{id}"),
];

impl Route<'_> {
    /// Who may call this route.
    pub fn access(&self) -> Access {
        use Access::*;
        match self {
            Route::Health => Public,
            Route::RunnerLink(_) => Runner,
            Route::ListSessions
            | Route::CreateSession
            | Route::SessionListEvents
            | Route::GetMe
            | Route::PatchMe
            | Route::ListTokens
            | Route::CreateToken
            | Route::DeleteToken(_)
            | Route::TeamMembers
            | Route::AcceptShareLink(_)
            | Route::ListKeys
            | Route::CreateKey
            | Route::DeleteKey(_)
            | Route::Models => Member,
            Route::ListMembers
            | Route::PatchMember(_)
            | Route::RemoveMember(_)
            | Route::ListInvites
            | Route::CreateInvite
            | Route::RevokeInvite(_)
            | Route::GetSettings
            | Route::PutSettings
            | Route::ListRoutes => Admin,
            Route::GetSession(_)
            | Route::ListMessages(_)
            | Route::SessionEvents(_)
            | Route::Presence(_)
            | Route::PresenceHeartbeat(_)
            | Route::PresenceLeave(_) => SessionViewer,
            Route::PostMessage(_)
            | Route::CancelMessage { .. }
            | Route::Abort(_)
            | Route::UpdateSession(_)
            | Route::EditMessage { .. }
            | Route::AnswerQuestion { .. } => SessionCollaborator,
            Route::ListShares(_)
            | Route::PutShare { .. }
            | Route::DeleteShare { .. }
            | Route::CreateShareLink(_)
            | Route::DeleteShareLink { .. }
            | Route::DeleteSession(_)
            | Route::StreamStats(_) => SessionManager,
        }
    }

    /// The session a session route is about.
    pub fn session_id(&self) -> Option<&str> {
        match *self {
            Route::GetSession(id)
            | Route::PostMessage(id)
            | Route::ListMessages(id)
            | Route::Abort(id)
            | Route::UpdateSession(id)
            | Route::DeleteSession(id)
            | Route::SessionEvents(id)
            | Route::RunnerLink(id)
            | Route::ListShares(id)
            | Route::CreateShareLink(id)
            | Route::Presence(id)
            | Route::PresenceHeartbeat(id)
            | Route::PresenceLeave(id)
            | Route::StreamStats(id) => Some(id),
            Route::CancelMessage { session_id, .. }
            | Route::EditMessage { session_id, .. }
            | Route::AnswerQuestion { session_id, .. }
            | Route::PutShare { session_id, .. }
            | Route::DeleteShare { session_id, .. }
            | Route::DeleteShareLink { session_id, .. } => Some(session_id),
            _ => None,
        }
    }
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
    let put = *method == Method::Put;
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
        ["sessions", id] if delete => Ok(Route::DeleteSession(id)),
        ["sessions", _] => wrong("GET, PATCH, DELETE"),
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
        ["sessions", id, "questions", question_id, "answer"] if post => Ok(Route::AnswerQuestion {
            session_id: id,
            question_id,
        }),
        ["sessions", _, "questions", _, "answer"] => wrong("POST"),
        ["sessions", id, "abort"] if post => Ok(Route::Abort(id)),
        ["sessions", _, "abort"] => wrong("POST"),
        ["sessions", id, "events"] if get => Ok(Route::SessionEvents(id)),
        ["sessions", _, "events"] => wrong("GET"),
        ["sessions", id, "runner"] if get => Ok(Route::RunnerLink(id)),
        ["sessions", _, "runner"] => wrong("GET"),
        ["sessions", id, "presence"] if get => Ok(Route::Presence(id)),
        ["sessions", id, "presence"] if post => Ok(Route::PresenceHeartbeat(id)),
        ["sessions", id, "presence"] if delete => Ok(Route::PresenceLeave(id)),
        ["sessions", _, "presence"] => wrong("GET, POST, DELETE"),
        ["sessions", id, "streams"] if get => Ok(Route::StreamStats(id)),
        ["sessions", _, "streams"] => wrong("GET"),
        ["sessions", id, "shares"] if get => Ok(Route::ListShares(id)),
        ["sessions", _, "shares"] => wrong("GET"),
        ["sessions", id, "shares", user_id] if put => Ok(Route::PutShare {
            session_id: id,
            user_id,
        }),
        ["sessions", id, "shares", user_id] if delete => Ok(Route::DeleteShare {
            session_id: id,
            user_id,
        }),
        ["sessions", _, "shares", _] => wrong("PUT, DELETE"),
        ["sessions", id, "share-links"] if post => Ok(Route::CreateShareLink(id)),
        ["sessions", _, "share-links"] => wrong("POST"),
        ["sessions", id, "share-links", link_id] if delete => Ok(Route::DeleteShareLink {
            session_id: id,
            link_id,
        }),
        ["sessions", _, "share-links", _] => wrong("DELETE"),
        ["share-links", token, "accept"] if post => Ok(Route::AcceptShareLink(token)),
        ["share-links", _, "accept"] => wrong("POST"),
        ["me"] if get => Ok(Route::GetMe),
        ["me"] if patch => Ok(Route::PatchMe),
        ["me"] => wrong("GET, PATCH"),
        ["tokens"] if get => Ok(Route::ListTokens),
        ["tokens"] if post => Ok(Route::CreateToken),
        ["tokens"] => wrong("GET, POST"),
        ["tokens", id] if delete => Ok(Route::DeleteToken(id)),
        ["tokens", _] => wrong("DELETE"),
        ["team", "members"] if get => Ok(Route::TeamMembers),
        ["team", "members"] => wrong("GET"),
        ["admin", "members"] if get => Ok(Route::ListMembers),
        ["admin", "members"] => wrong("GET"),
        ["admin", "members", user_id] if patch => Ok(Route::PatchMember(user_id)),
        ["admin", "members", user_id] if delete => Ok(Route::RemoveMember(user_id)),
        ["admin", "members", _] => wrong("PATCH, DELETE"),
        ["admin", "invites"] if get => Ok(Route::ListInvites),
        ["admin", "invites"] if post => Ok(Route::CreateInvite),
        ["admin", "invites"] => wrong("GET, POST"),
        ["admin", "invites", id] if delete => Ok(Route::RevokeInvite(id)),
        ["admin", "invites", _] => wrong("DELETE"),
        ["admin", "settings"] if get => Ok(Route::GetSettings),
        ["admin", "settings"] if put => Ok(Route::PutSettings),
        ["admin", "settings"] => wrong("GET, PUT"),
        ["admin", "routes"] if get => Ok(Route::ListRoutes),
        ["admin", "routes"] => wrong("GET"),
        ["keys"] if get => Ok(Route::ListKeys),
        ["keys"] if post => Ok(Route::CreateKey),
        ["keys"] => wrong("GET, POST"),
        ["keys", id] if delete => Ok(Route::DeleteKey(id)),
        ["keys", _] => wrong("DELETE"),
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
    if route.access() == Access::Public {
        return match route {
            Route::Health => Ok(health::get(env).await),
            _ => Err(ApiError::internal("a public route without a handler")),
        };
    }
    let principal = auth::authenticate(&req, env).await?;
    if let Route::RunnerLink(id) = route {
        return streams::runner_link(&req, env, principal.runner_of(id)?).await;
    }
    let user = principal.user()?;
    crate::session_access::authorize(env, user, &route).await?;
    match route {
        Route::Health | Route::RunnerLink(_) => Err(ApiError::internal("handled above")),
        Route::ListSessions => sessions::list(&req, env, user).await,
        Route::CreateSession => sessions::create(&mut req, env, user).await,
        Route::GetSession(id) => sessions::get(env, user, id).await,
        Route::PostMessage(id) => messages::post(&mut req, env, user, id).await,
        Route::ListMessages(id) => messages::list(env, user, id).await,
        Route::CancelMessage {
            session_id,
            message_id,
        } => messages::cancel(env, user, session_id, message_id).await,
        Route::Abort(id) => messages::abort(env, user, id).await,
        Route::UpdateSession(id) => sessions::update(&mut req, env, user, id).await,
        Route::DeleteSession(id) => sessions::delete(&mut req, env, user, id).await,
        Route::Models => models::list(env, user).await,
        Route::EditMessage {
            session_id,
            message_id,
        } => messages::edit(&mut req, env, user, session_id, message_id).await,
        Route::AnswerQuestion {
            session_id,
            question_id,
        } => questions::answer(&mut req, env, user, session_id, question_id).await,
        Route::SessionEvents(id) => streams::session_events(&req, env, user, id).await,
        Route::SessionListEvents => streams::session_list_events(env, user).await,
        Route::GetMe => me::get(env, user).await,
        Route::PatchMe => me::patch(&mut req, env, user).await,
        Route::ListTokens => tokens::list(env, user).await,
        Route::CreateToken => tokens::create(&mut req, env, user).await,
        Route::DeleteToken(id) => tokens::delete(env, user, id).await,
        Route::TeamMembers => admin::team_members(env).await,
        Route::ListMembers => admin::list_members(env).await,
        Route::PatchMember(id) => admin::patch_member(&mut req, env, user, id).await,
        Route::RemoveMember(id) => admin::remove_member(env, user, id).await,
        Route::ListInvites => {
            shares::require_grant_reader(user)?;
            admin::list_invites(&req, env).await
        }
        Route::CreateInvite => admin::create_invite(&mut req, env, user).await,
        Route::RevokeInvite(id) => admin::revoke_invite(env, id).await,
        Route::GetSettings => admin::get_settings(env).await,
        Route::PutSettings => admin::put_settings(&mut req, env).await,
        Route::ListRoutes => Ok(admin::list_routes()),
        Route::ListShares(id) => shares::list(&req, env, user, id).await,
        Route::PutShare {
            session_id,
            user_id,
        } => shares::put(&mut req, env, user, session_id, user_id).await,
        Route::DeleteShare {
            session_id,
            user_id,
        } => shares::delete(env, session_id, user_id).await,
        Route::CreateShareLink(id) => shares::create_link(&mut req, env, user, id).await,
        Route::DeleteShareLink {
            session_id,
            link_id,
        } => shares::delete_link(env, session_id, link_id).await,
        Route::AcceptShareLink(token) => shares::accept(env, user, token).await,
        Route::Presence(id) => presence::get(env, id).await,
        Route::PresenceHeartbeat(id) => presence::heartbeat(&mut req, env, user, id).await,
        Route::PresenceLeave(id) => presence::leave(env, user, id).await,
        Route::StreamStats(id) => {
            crate::internal::call_agent::<()>(env, id, Method::Get, "/streams", None).await
        }
        Route::ListKeys => keys::list(env, user).await,
        Route::CreateKey => keys::create(&mut req, env, user).await,
        Route::DeleteKey(id) => keys::delete(env, user, id).await,
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
        assert_eq!(resolve(&Method::Get, "/api/models"), Ok(Route::Models));
        assert_eq!(
            resolve(&Method::Patch, "/api/sessions/s1"),
            Ok(Route::UpdateSession("s1"))
        );
        assert_eq!(
            resolve(&Method::Patch, "/api/sessions/s1/messages/m1"),
            Ok(Route::EditMessage {
                session_id: "s1",
                message_id: "m1"
            })
        );
        assert_eq!(
            resolve(&Method::Post, "/api/sessions/s1/questions/q1/answer"),
            Ok(Route::AnswerQuestion {
                session_id: "s1",
                question_id: "q1"
            })
        );
    }

    #[test]
    fn presence_has_a_heartbeat_and_a_leave() {
        assert_eq!(
            resolve(&Method::Post, "/api/sessions/s1/presence"),
            Ok(Route::PresenceHeartbeat("s1"))
        );
        assert_eq!(
            resolve(&Method::Delete, "/api/sessions/s1/presence"),
            Ok(Route::PresenceLeave("s1"))
        );
        assert_eq!(
            Route::PresenceHeartbeat("s1").access(),
            Route::Presence("s1").access()
        );
        assert_eq!(Route::PresenceLeave("s1").session_id(), Some("s1"));
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

    /// A path for a template: every `{param}` becomes `p`.
    fn sample(template: &str) -> String {
        template
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "p"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn method(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            other => panic!("unexpected method {other}"),
        }
    }

    #[test]
    fn the_route_table_lists_every_route_of_the_router() {
        for (name, template) in ROUTES {
            let path = sample(template);
            assert!(
                resolve(&method(name), &path).is_ok(),
                "{name} {template} is in ROUTES but does not resolve"
            );
        }
        // Every match arm of `resolve` that answers a route must be in ROUTES: read
        // the arms from this file, so a new route cannot be left out of the table
        // (and so out of the role walk, which is driven by it).
        let source = include_str!("routes.rs");
        let body = &source[source.find("match segments.as_slice()").unwrap()..];
        let body = &body[..body.find("_ => Err(Miss::NotFound)").unwrap()];
        let mut arms = 0;
        for line in body.lines() {
            let line = line.trim();
            let Some((pattern, rest)) = line.split_once("] if ") else {
                continue;
            };
            let Some(verb) = rest.split_whitespace().next() else {
                continue;
            };
            let segments: Vec<String> = pattern
                .trim_start_matches('[')
                .split(", ")
                .map(|segment| {
                    if segment.starts_with('"') {
                        segment.trim_matches('"').to_owned()
                    } else {
                        format!("{{{segment}}}")
                    }
                })
                .collect();
            let shape = |path: &str| {
                path.split('/')
                    .map(|s| if s.starts_with('{') { "{}" } else { s })
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let wanted = shape(&format!("/api/{}", segments.join("/")));
            let verb = verb.to_uppercase();
            assert!(
                ROUTES
                    .iter()
                    .any(|(name, template)| *name == verb && shape(template) == wanted),
                "{verb} {wanted} is routed but missing from ROUTES"
            );
            arms += 1;
        }
        assert_eq!(arms, ROUTES.len(), "every ROUTES entry has one match arm");
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
