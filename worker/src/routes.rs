//! The `/api` router: authenticate, match the route, call its handler, and answer
//! every failure with the protocol's error envelope.
//!
//! Every route is one row of [`TABLE`]: method, path template, what it does
//! ([`Endpoint`]) and who may call it ([`Access`]). Matching ([`resolve`]), the 405
//! answers' `Allow` lists, the session a route is about and the listing served at
//! `GET /api/admin/routes` (which drives the role-walk test) all come from that row;
//! [`dispatch`] is an exhaustive match on [`Endpoint`], so a new endpoint cannot be
//! left without a handler.
//!
//! Handlers are thin: parse, call (D1, a Durable Object, the sandbox backend), map to
//! a response. Access is enforced before any handler runs: anonymous callers get
//! 401, callers who cannot see a session get 404 (its existence does not leak),
//! callers who see it but may not do this get 403.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::Access;
use worker::{Env, Method, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::auth;
use crate::internal::Caller;

pub mod admin;
mod artifacts;
pub mod auth_routes;
mod conversation;
mod fork;
mod git;
mod github;
mod health;
mod inbox;
pub mod keys;
pub mod me;
pub(crate) mod messages;
mod models;
pub mod presence;
mod pull_requests;
pub(crate) mod questions;
mod rewind;
mod session_end;
mod session_repo;
mod sessions;
pub mod shares;
mod streams;
pub mod tokens;
mod usage;
mod workspace;

/// What a route does: one variant per row of [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    SessionListEvents,
    ListSessions,
    CreateSession,
    GetSession,
    UpdateSession,
    DeleteSession,
    ArchiveSession,
    BulkSessions,
    ListMessages,
    PostMessage,
    EditMessage,
    CancelMessage,
    AnswerQuestion,
    Abort,
    Wake,
    Push,
    RepoView,
    Diff,
    SessionEvents,
    RunnerLink,
    Presence,
    PresenceHeartbeat,
    PresenceLeave,
    StreamStats,
    Workspace,
    UploadArtifact,
    GetArtifact,
    ListShares,
    PutShare,
    DeleteShare,
    CreateShareLink,
    DeleteShareLink,
    AcceptShareLink,
    Models,
    GetMe,
    PatchMe,
    GetMySettings,
    PutMySettings,
    ListTokens,
    CreateToken,
    DeleteToken,
    TeamMembers,
    ListMembers,
    PatchMember,
    RemoveMember,
    ListInvites,
    CreateInvite,
    RevokeInvite,
    GetSettings,
    PutSettings,
    ListRoutes,
    ListKeys,
    CreateKey,
    DeleteKey,
    GithubConnection,
    GithubRepos,
    GithubBranches,
    GetGithubSettings,
    PutGithubSettings,
    GitCredential,
    GitPullRequest,
    ReadConversation,
    WriteConversation,
    OpenPullRequest,
    Usage,
    SessionUsage,
    GetSpendSettings,
    PutSpendSettings,
    ListInbox,
    MarkInboxRead,
    GetWebhook,
    PutWebhook,
    TestWebhook,
    Rewind,
    Fork,
}

/// One route: `method` on `path` (a template whose `{name}` segments are parameters)
/// does `endpoint`, for callers `access` admits.
#[derive(Debug, Clone)]
pub struct Row {
    pub method: Method,
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub access: Access,
}

const fn row(method: Method, path: &'static str, endpoint: Endpoint, access: Access) -> Row {
    Row {
        method,
        path,
        endpoint,
        access,
    }
}

impl Endpoint {
    /// Routes whose session access the session's `SessionAgent` checks itself, from
    /// the owner and shares it keeps (the hot path: no D1 read before the object is
    /// called). Every other session route is checked against D1 here.
    pub fn checked_by_agent(self) -> bool {
        matches!(
            self,
            Endpoint::PostMessage
                | Endpoint::ListMessages
                | Endpoint::CancelMessage
                | Endpoint::EditMessage
                | Endpoint::Abort
                | Endpoint::Wake
                | Endpoint::Push
                | Endpoint::RepoView
                | Endpoint::Diff
                | Endpoint::AnswerQuestion
                | Endpoint::SessionEvents
                | Endpoint::Workspace
        )
    }
}

/// Every route of the Worker's API, each once.
pub const TABLE: &[Row] = &[
    row(Method::Get, "/api/health", Endpoint::Health, Access::Public),
    row(
        Method::Get,
        "/api/events",
        Endpoint::SessionListEvents,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/sessions",
        Endpoint::ListSessions,
        Access::Member,
    ),
    row(
        Method::Post,
        "/api/sessions",
        Endpoint::CreateSession,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}",
        Endpoint::GetSession,
        Access::SessionViewer,
    ),
    row(
        Method::Patch,
        "/api/sessions/{id}",
        Endpoint::UpdateSession,
        Access::SessionCollaborator,
    ),
    row(
        Method::Delete,
        "/api/sessions/{id}",
        Endpoint::DeleteSession,
        Access::SessionManager,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/archive",
        Endpoint::ArchiveSession,
        Access::SessionManager,
    ),
    row(
        Method::Post,
        "/api/sessions/bulk",
        Endpoint::BulkSessions,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/messages",
        Endpoint::ListMessages,
        Access::SessionViewer,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/messages",
        Endpoint::PostMessage,
        Access::SessionCollaborator,
    ),
    row(
        Method::Patch,
        "/api/sessions/{id}/messages/{message_id}",
        Endpoint::EditMessage,
        Access::SessionCollaborator,
    ),
    row(
        Method::Delete,
        "/api/sessions/{id}/messages/{message_id}",
        Endpoint::CancelMessage,
        Access::SessionCollaborator,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/questions/{question_id}/answer",
        Endpoint::AnswerQuestion,
        Access::SessionCollaborator,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/abort",
        Endpoint::Abort,
        Access::SessionCollaborator,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/wake",
        Endpoint::Wake,
        Access::SessionCollaborator,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/push",
        Endpoint::Push,
        Access::SessionCollaborator,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/rewind",
        Endpoint::Rewind,
        Access::SessionManager,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/fork",
        Endpoint::Fork,
        Access::SessionCollaborator,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/repo",
        Endpoint::RepoView,
        Access::SessionViewer,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/diff",
        Endpoint::Diff,
        Access::SessionViewer,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/events",
        Endpoint::SessionEvents,
        Access::SessionViewer,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/runner",
        Endpoint::RunnerLink,
        Access::Runner,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/artifacts",
        Endpoint::UploadArtifact,
        Access::Runner,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/git/credential",
        Endpoint::GitCredential,
        Access::Runner,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/git/pull-request",
        Endpoint::GitPullRequest,
        Access::Runner,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/conversation",
        Endpoint::ReadConversation,
        Access::Runner,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/conversation",
        Endpoint::WriteConversation,
        Access::Runner,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/pull-request",
        Endpoint::OpenPullRequest,
        Access::SessionCollaborator,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/artifacts/{artifact}",
        Endpoint::GetArtifact,
        Access::SessionViewer,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/presence",
        Endpoint::Presence,
        Access::SessionViewer,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/presence",
        Endpoint::PresenceHeartbeat,
        Access::SessionViewer,
    ),
    row(
        Method::Delete,
        "/api/sessions/{id}/presence",
        Endpoint::PresenceLeave,
        Access::SessionViewer,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/workspace",
        Endpoint::Workspace,
        Access::SessionViewer,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/streams",
        Endpoint::StreamStats,
        Access::SessionManager,
    ),
    row(
        Method::Get,
        "/api/sessions/{id}/shares",
        Endpoint::ListShares,
        Access::SessionManager,
    ),
    row(
        Method::Put,
        "/api/sessions/{id}/shares/{user_id}",
        Endpoint::PutShare,
        Access::SessionManager,
    ),
    row(
        Method::Delete,
        "/api/sessions/{id}/shares/{user_id}",
        Endpoint::DeleteShare,
        Access::SessionManager,
    ),
    row(
        Method::Post,
        "/api/sessions/{id}/share-links",
        Endpoint::CreateShareLink,
        Access::SessionManager,
    ),
    row(
        Method::Delete,
        "/api/sessions/{id}/share-links/{link_id}",
        Endpoint::DeleteShareLink,
        Access::SessionManager,
    ),
    row(
        Method::Post,
        "/api/share-links/{token}/accept",
        Endpoint::AcceptShareLink,
        Access::Member,
    ),
    row(Method::Get, "/api/models", Endpoint::Models, Access::Member),
    row(Method::Get, "/api/me", Endpoint::GetMe, Access::Member),
    row(Method::Patch, "/api/me", Endpoint::PatchMe, Access::Member),
    row(
        Method::Get,
        "/api/me/settings",
        Endpoint::GetMySettings,
        Access::Member,
    ),
    row(
        Method::Put,
        "/api/me/settings",
        Endpoint::PutMySettings,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/tokens",
        Endpoint::ListTokens,
        Access::Member,
    ),
    row(
        Method::Post,
        "/api/tokens",
        Endpoint::CreateToken,
        Access::Member,
    ),
    row(
        Method::Delete,
        "/api/tokens/{id}",
        Endpoint::DeleteToken,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/team/members",
        Endpoint::TeamMembers,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/admin/members",
        Endpoint::ListMembers,
        Access::Admin,
    ),
    row(
        Method::Patch,
        "/api/admin/members/{user_id}",
        Endpoint::PatchMember,
        Access::Admin,
    ),
    row(
        Method::Delete,
        "/api/admin/members/{user_id}",
        Endpoint::RemoveMember,
        Access::Admin,
    ),
    row(
        Method::Get,
        "/api/admin/invites",
        Endpoint::ListInvites,
        Access::Admin,
    ),
    row(
        Method::Post,
        "/api/admin/invites",
        Endpoint::CreateInvite,
        Access::Admin,
    ),
    row(
        Method::Delete,
        "/api/admin/invites/{id}",
        Endpoint::RevokeInvite,
        Access::Admin,
    ),
    row(
        Method::Get,
        "/api/admin/settings",
        Endpoint::GetSettings,
        Access::Admin,
    ),
    row(
        Method::Put,
        "/api/admin/settings",
        Endpoint::PutSettings,
        Access::Admin,
    ),
    row(Method::Get, "/api/usage", Endpoint::Usage, Access::Member),
    row(
        Method::Get,
        "/api/sessions/{id}/usage",
        Endpoint::SessionUsage,
        Access::SessionViewer,
    ),
    row(
        Method::Get,
        "/api/admin/spend",
        Endpoint::GetSpendSettings,
        Access::Admin,
    ),
    row(
        Method::Put,
        "/api/admin/spend",
        Endpoint::PutSpendSettings,
        Access::Admin,
    ),
    row(
        Method::Get,
        "/api/admin/routes",
        Endpoint::ListRoutes,
        Access::Admin,
    ),
    row(Method::Get, "/api/keys", Endpoint::ListKeys, Access::Member),
    row(
        Method::Post,
        "/api/keys",
        Endpoint::CreateKey,
        Access::Member,
    ),
    row(
        Method::Delete,
        "/api/keys/{id}",
        Endpoint::DeleteKey,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/github",
        Endpoint::GithubConnection,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/github/repos",
        Endpoint::GithubRepos,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/github/repos/{owner}/{repo}/branches",
        Endpoint::GithubBranches,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/admin/github",
        Endpoint::GetGithubSettings,
        Access::Admin,
    ),
    row(
        Method::Put,
        "/api/admin/github",
        Endpoint::PutGithubSettings,
        Access::Admin,
    ),
    row(
        Method::Get,
        "/api/inbox",
        Endpoint::ListInbox,
        Access::Member,
    ),
    row(
        Method::Post,
        "/api/inbox/read",
        Endpoint::MarkInboxRead,
        Access::Member,
    ),
    row(
        Method::Get,
        "/api/admin/webhook",
        Endpoint::GetWebhook,
        Access::Admin,
    ),
    row(
        Method::Put,
        "/api/admin/webhook",
        Endpoint::PutWebhook,
        Access::Admin,
    ),
    row(
        Method::Post,
        "/api/admin/webhook/test",
        Endpoint::TestWebhook,
        Access::Admin,
    ),
];

/// A matched route: its row and its path parameters, in the template's order (at most
/// two; unused ones are empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    pub endpoint: Endpoint,
    pub access: Access,
    pub params: [&'a str; 2],
    /// Whether the first parameter names a session (`/api/sessions/{id}...`).
    names_session: bool,
}

impl<'a> Route<'a> {
    /// The session a session route is about.
    pub fn session_id(&self) -> Option<&'a str> {
        self.names_session.then_some(self.params[0])
    }
}

/// Why no route matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// The path exists but not with this method; `allow` lists the methods it has.
    MethodNotAllowed {
        allow: String,
    },
}

/// The method's name as HTTP writes it.
pub fn method_name(method: &Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
        Method::Options => "OPTIONS",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        _ => "OTHER",
    }
}

/// The order `Allow` lists methods in.
const METHOD_ORDER: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

impl Row {
    /// The parameters of `segments` (the path after `/api/`, split) if it has this
    /// row's shape.
    fn capture<'a>(&self, segments: &[&'a str]) -> Option<[&'a str; 2]> {
        let template = self.path.strip_prefix("/api/")?.split('/');
        let mut params = [""; 2];
        let mut taken = 0;
        let mut count = 0;
        for (pattern, segment) in template.zip(segments) {
            count += 1;
            if pattern.starts_with('{') {
                *params.get_mut(taken)? = segment;
                taken += 1;
            } else if pattern != *segment {
                return None;
            }
        }
        let length = self.path.strip_prefix("/api/")?.split('/').count();
        (count == length && segments.len() == length).then_some(params)
    }
}

/// Matches `method` and `path` against [`TABLE`].
pub fn resolve<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, Miss> {
    let Some(rest) = path.strip_prefix("/api/") else {
        return Err(Miss::NotFound);
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(Miss::NotFound);
    }
    let mut allowed = Vec::new();
    for row in TABLE {
        let Some(params) = row.capture(&segments) else {
            continue;
        };
        if row.method == *method {
            return Ok(Route {
                endpoint: row.endpoint,
                access: row.access,
                params,
                names_session: row.path.starts_with("/api/sessions/{"),
            });
        }
        allowed.push(method_name(&row.method));
    }
    if allowed.is_empty() {
        return Err(Miss::NotFound);
    }
    allowed.sort_by_key(|name| METHOD_ORDER.iter().position(|known| known == name));
    Err(Miss::MethodNotAllowed {
        allow: allowed.join(", "),
    })
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
            response.headers_mut().set("allow", &allow)?;
            return Ok(response);
        }
    };
    if route.access == Access::Public {
        return match route.endpoint {
            Endpoint::Health => Ok(health::get(env).await),
            _ => Err(ApiError::internal("a public route without a handler")),
        };
    }
    let principal = auth::authenticate(&req, env).await?;
    let [id, second] = route.params;
    if route.endpoint == Endpoint::RunnerLink {
        return streams::runner_link(&req, env, principal.runner_of(id)?).await;
    }
    if route.endpoint == Endpoint::UploadArtifact {
        let grant = principal.runner_of(id)?.clone();
        return artifacts::upload(&mut req, env, &grant).await;
    }
    if route.endpoint == Endpoint::GitCredential {
        let grant = principal.runner_of(id)?.clone();
        return git::credential(&mut req, env, &grant).await;
    }
    if route.endpoint == Endpoint::GitPullRequest {
        let grant = principal.runner_of(id)?.clone();
        return git::pull_request(&mut req, env, &grant).await;
    }
    if matches!(
        route.endpoint,
        Endpoint::ReadConversation | Endpoint::WriteConversation
    ) {
        let grant = principal.runner_of(id)?.clone();
        return conversation::forward(req, env, &grant).await;
    }
    let user = principal.user()?;
    let caller = Caller::new(user, route.access);
    if !route.endpoint.checked_by_agent() {
        crate::session_access::authorize(env, user, route.access, route.session_id()).await?;
    }
    match route.endpoint {
        Endpoint::Health
        | Endpoint::RunnerLink
        | Endpoint::UploadArtifact
        | Endpoint::GitCredential
        | Endpoint::GitPullRequest
        | Endpoint::ReadConversation
        | Endpoint::WriteConversation => Err(ApiError::internal("handled above")),
        Endpoint::GetArtifact => artifacts::get(env, id, second).await,
        Endpoint::ListSessions => sessions::list(&req, env, user).await,
        Endpoint::CreateSession => sessions::create(&mut req, env, user).await,
        Endpoint::GetSession => sessions::get(env, user, id).await,
        Endpoint::PostMessage => messages::post(&mut req, env, &caller, id).await,
        Endpoint::ListMessages => messages::list(env, &caller, id).await,
        Endpoint::CancelMessage => messages::cancel(env, &caller, id, second).await,
        Endpoint::Abort => messages::abort(env, &caller, id).await,
        Endpoint::Wake => messages::wake(env, &caller, id).await,
        Endpoint::Push => session_repo::push(env, &caller, id).await,
        Endpoint::RepoView => session_repo::view(env, &caller, id).await,
        Endpoint::Diff => session_repo::diff(env, &caller, id).await,
        Endpoint::UpdateSession => sessions::update(&mut req, env, user, id).await,
        Endpoint::DeleteSession => session_end::delete(&mut req, env, user, id).await,
        Endpoint::ArchiveSession => session_end::archive(&mut req, env, user, id).await,
        Endpoint::Rewind => rewind::rewind(&mut req, env, id).await,
        Endpoint::Fork => fork::fork(&mut req, env, user, id).await,
        Endpoint::BulkSessions => session_end::bulk(&mut req, env, user).await,
        Endpoint::Models => models::list(env, user).await,
        Endpoint::EditMessage => messages::edit(&mut req, env, &caller, id, second).await,
        Endpoint::AnswerQuestion => questions::answer(&mut req, env, &caller, id, second).await,
        Endpoint::SessionEvents => streams::session_events(&req, env, user, &caller, id).await,
        Endpoint::SessionListEvents => streams::session_list_events(env, user).await,
        Endpoint::GetMe => me::get(env, user).await,
        Endpoint::PatchMe => me::patch(&mut req, env, user).await,
        Endpoint::GetMySettings => crate::sleep_settings::get(env, user).await,
        Endpoint::PutMySettings => crate::sleep_settings::put(&mut req, env, user).await,
        Endpoint::ListTokens => tokens::list(env, user).await,
        Endpoint::ListInbox => inbox::list(&req, env, user).await,
        Endpoint::MarkInboxRead => inbox::mark_read(&mut req, env, user).await,
        Endpoint::GetWebhook => inbox::get_webhook(env).await,
        Endpoint::PutWebhook => inbox::put_webhook(&mut req, env).await,
        Endpoint::TestWebhook => inbox::test_webhook(&req, env).await,
        Endpoint::CreateToken => tokens::create(&mut req, env, user).await,
        Endpoint::DeleteToken => tokens::delete(env, user, id).await,
        Endpoint::TeamMembers => admin::team_members(env).await,
        Endpoint::ListMembers => admin::list_members(env).await,
        Endpoint::PatchMember => admin::patch_member(&mut req, env, user, id).await,
        Endpoint::RemoveMember => admin::remove_member(env, user, id).await,
        Endpoint::ListInvites => {
            shares::require_grant_reader(user)?;
            admin::list_invites(&req, env).await
        }
        Endpoint::CreateInvite => admin::create_invite(&mut req, env, user).await,
        Endpoint::RevokeInvite => admin::revoke_invite(env, id).await,
        Endpoint::GetSettings => admin::get_settings(env).await,
        Endpoint::PutSettings => admin::put_settings(&mut req, env).await,
        Endpoint::ListRoutes => Ok(admin::list_routes()),
        Endpoint::Usage => usage::get(&req, env, user).await,
        Endpoint::SessionUsage => usage::session(env, id).await,
        Endpoint::GetSpendSettings => usage::get_settings(env).await,
        Endpoint::PutSpendSettings => usage::put_settings(&mut req, env).await,
        Endpoint::ListShares => shares::list(&req, env, user, id).await,
        Endpoint::PutShare => shares::put(&mut req, env, user, id, second).await,
        Endpoint::DeleteShare => shares::delete(env, id, second).await,
        Endpoint::CreateShareLink => shares::create_link(&mut req, env, user, id).await,
        Endpoint::DeleteShareLink => shares::delete_link(env, id, second).await,
        Endpoint::AcceptShareLink => shares::accept(env, user, id).await,
        Endpoint::Presence => presence::get(env, id).await,
        Endpoint::PresenceHeartbeat => presence::heartbeat(&mut req, env, user, id).await,
        Endpoint::PresenceLeave => presence::leave(env, user, id).await,
        Endpoint::StreamStats => {
            crate::internal::call_agent::<()>(
                env,
                id,
                crate::internal::AgentCall::StreamStats,
                None,
            )
            .await
        }
        Endpoint::Workspace => workspace::get(&req, env, &caller, id).await,
        Endpoint::ListKeys => keys::list(env, user).await,
        Endpoint::CreateKey => keys::create(&mut req, env, user).await,
        Endpoint::DeleteKey => keys::delete(env, user, id).await,
        Endpoint::OpenPullRequest => pull_requests::open(&mut req, env, user, id).await,
        Endpoint::GithubConnection => github::connection(env, user).await,
        Endpoint::GithubRepos => github::list_repos(&req, env, user).await,
        Endpoint::GithubBranches => github::list_branches(env, user, id, second).await,
        Endpoint::GetGithubSettings => github::get_settings(env).await,
        Endpoint::PutGithubSettings => github::put_settings(&mut req, env).await,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

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

    #[test]
    fn every_row_resolves_to_itself_and_no_two_rows_overlap() {
        let mut shapes = BTreeSet::new();
        for row in TABLE {
            let path = sample(row.path);
            let route = resolve(&row.method, &path).unwrap_or_else(|miss| {
                panic!(
                    "{} {} does not resolve: {miss:?}",
                    method_name(&row.method),
                    row.path
                )
            });
            assert_eq!(route.endpoint, row.endpoint, "{}", row.path);
            assert_eq!(route.access, row.access, "{}", row.path);
            assert!(
                shapes.insert((method_name(&row.method), path.clone())),
                "two rows answer {} {path}",
                method_name(&row.method)
            );
        }
        let endpoints: BTreeSet<String> = TABLE
            .iter()
            .map(|row| format!("{:?}", row.endpoint))
            .collect();
        assert_eq!(endpoints.len(), TABLE.len(), "an endpoint has two rows");
    }

    #[test]
    fn parameters_come_out_in_order() {
        let route = resolve(&Method::Get, "/api/sessions/s1").unwrap();
        assert_eq!(
            (route.endpoint, route.params, route.session_id()),
            (Endpoint::GetSession, ["s1", ""], Some("s1"))
        );
        let route = resolve(&Method::Delete, "/api/sessions/s1/messages/m1").unwrap();
        assert_eq!(
            (route.endpoint, route.params),
            (Endpoint::CancelMessage, ["s1", "m1"])
        );
        let route = resolve(&Method::Patch, "/api/sessions/s1/messages/m1").unwrap();
        assert_eq!(route.endpoint, Endpoint::EditMessage);
        let route = resolve(&Method::Post, "/api/sessions/s1/questions/q1/answer").unwrap();
        assert_eq!(
            (route.endpoint, route.params),
            (Endpoint::AnswerQuestion, ["s1", "q1"])
        );
        let route = resolve(&Method::Get, "/api/sessions/s1/runner").unwrap();
        assert_eq!(
            (route.endpoint, route.session_id()),
            (Endpoint::RunnerLink, Some("s1"))
        );
        // Routes that are not about a session name none, whatever their parameters.
        let route = resolve(&Method::Post, "/api/share-links/t1/accept").unwrap();
        assert_eq!(
            (route.endpoint, route.params[0], route.session_id()),
            (Endpoint::AcceptShareLink, "t1", None)
        );
        let route = resolve(&Method::Delete, "/api/tokens/k1").unwrap();
        assert_eq!(route.session_id(), None);
        assert_eq!(
            resolve(&Method::Get, "/api/sessions/").map(|route| route.endpoint),
            Ok(Endpoint::ListSessions),
            "a trailing slash is the same path"
        );
    }

    #[test]
    fn presence_has_a_heartbeat_and_a_leave() {
        let heartbeat = resolve(&Method::Post, "/api/sessions/s1/presence").unwrap();
        let leave = resolve(&Method::Delete, "/api/sessions/s1/presence").unwrap();
        let get = resolve(&Method::Get, "/api/sessions/s1/presence").unwrap();
        assert_eq!(heartbeat.endpoint, Endpoint::PresenceHeartbeat);
        assert_eq!(leave.endpoint, Endpoint::PresenceLeave);
        assert_eq!(heartbeat.access, get.access);
        assert_eq!(leave.session_id(), Some("s1"));
    }

    #[test]
    fn wrong_methods_name_the_allowed_ones() {
        let allow = |method: Method, path: &str| match resolve(&method, path) {
            Err(Miss::MethodNotAllowed { allow }) => allow,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(allow(Method::Put, "/api/sessions"), "GET, POST");
        assert_eq!(allow(Method::Get, "/api/sessions/s1/abort"), "POST");
        assert_eq!(
            allow(Method::Get, "/api/sessions/s1/messages/m1"),
            "PATCH, DELETE"
        );
        assert_eq!(
            allow(Method::Post, "/api/sessions/s1"),
            "GET, PATCH, DELETE"
        );
        assert_eq!(
            allow(Method::Put, "/api/sessions/s1/presence"),
            "GET, POST, DELETE"
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
            "/api/sessions/s1/messages/m1/extra",
            "/x",
        ] {
            assert_eq!(resolve(&Method::Get, path), Err(Miss::NotFound), "{path}");
        }
    }
}
