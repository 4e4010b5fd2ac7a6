//! Calls between the Worker's own parts: the router to a session's `SessionAgent`,
//! and anyone to the `EventBus`.
//!
//! These are HTTP requests to Durable Object stubs on made-up internal URLs; they
//! never leave the deployment, so their small bodies live here rather than in
//! `nightshift_protocol` (which describes what crosses a process boundary). Where an
//! answer goes back to a client, it is a protocol type.

use std::time::Duration;

use nightshift_protocol::api::{AgentKind, PermissionMode};
use nightshift_protocol::auth::{Access, TeamRole};
use nightshift_protocol::events::SessionListEvent;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Stub};

use crate::api_error::{ApiError, ApiResult};
use crate::timeout::with_timeout;

/// Names the session on every call to its `SessionAgent`, so the object knows its
/// id even before it was initialized.
pub const SESSION_ID_HEADER: &str = "x-nightshift-session-id";
/// The expiry (Unix seconds) of the token a runner link was opened with.
pub const TOKEN_EXPIRES_HEADER: &str = "x-nightshift-runner-token-expires";
/// The sandbox generation the token of a runner link was issued for.
pub const TOKEN_GENERATION_HEADER: &str = "x-nightshift-runner-generation";

/// Who a call acts for ([`Caller`], JSON): the `SessionAgent` admits it against the
/// session's access facts before handling it.
pub const CALLER_HEADER: &str = "x-nightshift-caller";

/// A signed-in user calling a session route whose access the `SessionAgent` checks
/// itself (see [`crate::routes::Endpoint::checked_by_agent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub user_id: String,
    pub team_role: TeamRole,
    /// The route's access.
    pub access: Access,
}

impl Caller {
    pub fn new(user: &crate::auth::User, access: Access) -> Self {
        Self {
            user_id: user.id.clone(),
            team_role: user.role,
            access,
        }
    }

    /// Headers naming the caller, to send with a call.
    pub fn headers(&self) -> worker::Result<Headers> {
        let headers = Headers::new();
        headers.set(CALLER_HEADER, &serde_json::to_string(self)?)?;
        Ok(headers)
    }

    /// The caller a request names, if any.
    pub fn of(req: &Request) -> ApiResult<Option<Caller>> {
        let Some(value) = req.headers().get(CALLER_HEADER)? else {
            return Ok(None);
        };
        serde_json::from_str(&value)
            .map(Some)
            .map_err(|error| ApiError::internal(format!("a malformed caller: {error}")))
    }
}

/// A `SessionAgent` answers ordinary calls within this.
pub const AGENT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The `EventBus` takes a published event within this.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

const AGENT_ORIGIN: &str = "https://session-agent.internal";
const BUS_ORIGIN: &str = "https://event-bus.internal";
/// The single `EventBus` instance's name.
const BUS_NAME: &str = "global";

/// A `SessionAgent`'s internal routes: what the Worker asks of it and what the object
/// reads back from the request, one enum for both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCall<'a> {
    /// `POST /init` ([`InitSession`]).
    Init,
    /// `POST /messages` ([`EnqueuePrompt`]).
    Enqueue,
    /// `GET /messages`.
    ListMessages,
    /// `DELETE /messages/{id}`.
    CancelMessage(&'a str),
    /// `PATCH /messages/{id}` ([`EditPrompt`]).
    EditMessage(&'a str),
    /// `POST /abort`.
    Abort,
    /// `POST /wake`: wake an asleep session (answers the session's status).
    Wake,
    /// `POST /push`: tell the runner to push the session's branch.
    Push,
    /// `GET /repo`: the session's repository and the runner's latest report.
    RepoView,
    /// `GET /diff`: the repository's diff, computed in the sandbox.
    Diff,
    /// `POST /access`: read the owner and shares from D1 again (after a change).
    ReloadAccess,
    /// `PATCH /settings`.
    UpdateSettings,
    /// `POST /questions/{id}/answer` ([`AnswerQuestion`]).
    AnswerQuestion(&'a str),
    /// `GET /events?after=N`: the event stream.
    Events,
    /// `GET /presence`.
    Presence,
    /// `POST /presence`.
    PresenceHeartbeat,
    /// `DELETE /presence`.
    PresenceLeave,
    /// `POST /streams/close` ([`CloseStreams`]).
    CloseStreams,
    /// `GET /streams`.
    StreamStats,
    /// `GET /runner`: the runner's WebSocket.
    Runner,
    /// `DELETE /`: the session is deleted.
    Delete,
    /// `POST /archive`: the session is archived (answers `{"archived_at": ms}`).
    Archive,
    /// `POST /panel-grants`: a panel grant for the caller ([`PanelGrant`]).
    CreatePanelGrant,
    /// `GET /panel-grants/{id}`: whether a grant still admits its user
    /// ([`PanelAdmission`]).
    CheckPanelGrant(&'a str),
    /// `POST /git/context` ([`GitContextRequest`] -> [`GitContext`]).
    GitContext,
    /// `POST /git/reconnect` ([`GithubReconnect`]).
    GithubReconnect,
    /// `POST /git/pull-request`: the pull request as just read from GitHub
    /// (`PullRequestInfo`).
    SetPullRequest,
    /// `GET /conversation?from=N&generation=G`: the agent's conversation, a page.
    ReadConversation,
    /// `POST /conversation?generation=G` (`ConversationWrite`).
    WriteConversation,
    /// `POST /rewind` (`TurnRequest` -> `RewindResponse`).
    Rewind,
    /// `POST /fork-source` (`TurnRequest` -> [`ForkSource`]).
    ForkSource,
}

impl<'a> AgentCall<'a> {
    pub fn method(&self) -> Method {
        use AgentCall::*;
        match self {
            ListMessages | Events | Presence | StreamStats | Runner | CheckPanelGrant(_)
            | RepoView | Diff | ReadConversation => Method::Get,
            Init | Enqueue | Abort | Wake | Push | ReloadAccess | AnswerQuestion(_)
            | PresenceHeartbeat | CloseStreams | CreatePanelGrant | GitContext
            | GithubReconnect | SetPullRequest | WriteConversation | Archive | Rewind
            | ForkSource => Method::Post,
            EditMessage(_) | UpdateSettings => Method::Patch,
            CancelMessage(_) | PresenceLeave | Delete => Method::Delete,
        }
    }

    pub fn path(&self) -> String {
        use AgentCall::*;
        match self {
            Init => "/init".into(),
            Enqueue | ListMessages => "/messages".into(),
            CancelMessage(id) | EditMessage(id) => format!("/messages/{id}"),
            Abort => "/abort".into(),
            Wake => "/wake".into(),
            Push => "/push".into(),
            RepoView => "/repo".into(),
            Diff => "/diff".into(),
            ReloadAccess => "/access".into(),
            UpdateSettings => "/settings".into(),
            AnswerQuestion(id) => format!("/questions/{id}/answer"),
            Events => "/events".into(),
            Presence | PresenceHeartbeat | PresenceLeave => "/presence".into(),
            CloseStreams => "/streams/close".into(),
            StreamStats => "/streams".into(),
            Runner => "/runner".into(),
            Delete => "/".into(),
            Archive => "/archive".into(),
            CreatePanelGrant => "/panel-grants".into(),
            CheckPanelGrant(id) => format!("/panel-grants/{id}"),
            GitContext => "/git/context".into(),
            GithubReconnect => "/git/reconnect".into(),
            SetPullRequest => "/git/pull-request".into(),
            ReadConversation | WriteConversation => "/conversation".into(),
            Rewind => "/rewind".into(),
            ForkSource => "/fork-source".into(),
        }
    }

    /// Calls an archived session refuses with `session_archived`: those that would
    /// run the agent or reach the sandbox, which is gone. Reading the history,
    /// cancelling what is queued and the session's settings stay open.
    pub fn refused_when_archived(&self) -> bool {
        use AgentCall::*;
        matches!(
            self,
            Enqueue
                | EditMessage(_)
                | Abort
                | Wake
                | Push
                | Diff
                | AnswerQuestion(_)
                | CreatePanelGrant
                | GitContext
                | Rewind
                | ForkSource
        )
    }

    /// The call a request to the object is (`path` without its query).
    pub fn parse(method: &Method, path: &'a str) -> Option<AgentCall<'a>> {
        use AgentCall::*;
        let segments: Vec<&'a str> = path.trim_start_matches('/').split('/').collect();
        let call = match (method, segments.as_slice()) {
            (Method::Post, ["init"]) => Init,
            (Method::Post, ["messages"]) => Enqueue,
            (Method::Get, ["messages"]) => ListMessages,
            (Method::Delete, ["messages", id]) => CancelMessage(id),
            (Method::Patch, ["messages", id]) => EditMessage(id),
            (Method::Post, ["abort"]) => Abort,
            (Method::Post, ["wake"]) => Wake,
            (Method::Post, ["push"]) => Push,
            (Method::Get, ["repo"]) => RepoView,
            (Method::Get, ["diff"]) => Diff,
            (Method::Post, ["access"]) => ReloadAccess,
            (Method::Patch, ["settings"]) => UpdateSettings,
            (Method::Post, ["questions", id, "answer"]) => AnswerQuestion(id),
            (Method::Get, ["events"]) => Events,
            (Method::Get, ["presence"]) => Presence,
            (Method::Post, ["presence"]) => PresenceHeartbeat,
            (Method::Delete, ["presence"]) => PresenceLeave,
            (Method::Post, ["streams", "close"]) => CloseStreams,
            (Method::Get, ["streams"]) => StreamStats,
            (Method::Get, ["runner"]) => Runner,
            (Method::Delete, [""]) => Delete,
            (Method::Post, ["archive"]) => Archive,
            (Method::Post, ["panel-grants"]) => CreatePanelGrant,
            (Method::Get, ["panel-grants", id]) => CheckPanelGrant(id),
            (Method::Post, ["git", "context"]) => GitContext,
            (Method::Post, ["git", "reconnect"]) => GithubReconnect,
            (Method::Get, ["conversation"]) => ReadConversation,
            (Method::Post, ["conversation"]) => WriteConversation,
            (Method::Post, ["git", "pull-request"]) => SetPullRequest,
            (Method::Post, ["rewind"]) => Rewind,
            (Method::Post, ["fork-source"]) => ForkSource,
            _ => return None,
        };
        Some(call)
    }
}

/// `POST /panel-grants`' answer: a grant the panel capability names, for the caller,
/// with the role they hold now and where the session's sandbox is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelGrant {
    pub grant_id: String,
    /// Until when the grant admits (renewable).
    pub expires_at_secs: u32,
    /// The expiry the capability (the origin) carries; renewal never passes it.
    pub origin_expires_at_secs: u32,
    /// `viewer`, `collaborator` or `owner` (a gateway role).
    pub role: String,
    pub sandbox_id: Option<String>,
}

/// `POST /panel-grants`' body: renew this grant of the caller's instead of minting
/// a new one (the same origin keeps working).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelGrantRequest {
    #[serde(default)]
    pub renew: Option<String>,
}

/// `GET /panel-grants/{id}`' answer: who the grant admits now, in which role (never
/// more than it was minted with), and the sandbox to reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelAdmission {
    pub user_id: String,
    pub role: String,
    pub sandbox_id: Option<String>,
    /// The user's team role when the grant was minted: the Worker refuses the grant
    /// once their current one differs (or they left the team).
    pub team_role: TeamRole,
}

/// `POST /git/context`: the sandbox generation of the runner token asking (`None`
/// for the Worker acting for a user it admitted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitContextRequest {
    pub generation: Option<u64>,
}

/// `POST /git/context`'s answer: the session's repository and the user whose
/// GitHub access a credential uses now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitContext {
    pub repo: nightshift_protocol::repo::SessionRepo,
    pub user_id: String,
    /// The session's pull request as last read, and when (ms).
    #[serde(default)]
    pub pull_request: Option<nightshift_protocol::repo::PullRequestInfo>,
    #[serde(default)]
    pub pull_request_checked_at: i64,
}

/// `POST /git/reconnect`: `user_id`'s GitHub authorization is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubReconnect {
    pub user_id: String,
}

/// `POST /init`: a new session's first call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitSession {
    pub owner_id: String,
    pub title: String,
    /// The URL the session's runner dials.
    pub worker_url: String,
    /// The agent settings the session starts with.
    #[serde(default)]
    pub agent: AgentKind,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub permission_mode: PermissionMode,
    /// The GitHub repository the session works on, checked by the Worker.
    #[serde(default)]
    pub repo: Option<nightshift_protocol::repo::SessionRepo>,
    /// The pull request the session continues.
    #[serde(default)]
    pub pull_request: Option<nightshift_protocol::repo::PullRequestInfo>,
    /// For a fork: where its files and conversation come from.
    #[serde(default)]
    pub fork: Option<ForkInit>,
}

/// What a fork starts with: its first sandbox is made from the parent's checkpoint,
/// and its conversation is the parent's up to the turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkInit {
    pub from_checkpoint: nightshift_protocol::checkpoints::CheckpointSource,
    pub conversation: Vec<nightshift_protocol::conversation::ConversationEntry>,
}

/// `POST /fork-source` (`TurnRequest`): what a fork from a turn takes, from the
/// parent's `SessionAgent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkSource {
    pub title: String,
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
    pub repo: Option<nightshift_protocol::repo::SessionRepo>,
    pub fork: ForkInit,
}

/// `PATCH /settings`'s answer: the settings the session holds after the change
/// (its D1 row catches up in the background).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsHeld {
    pub title: String,
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
}

/// A client's request body, passed to the `SessionAgent` unparsed: on the routes it
/// admits itself, the caller is admitted before the body is parsed and validated,
/// so someone without access learns nothing from how their body is judged.
/// `None`: the body was not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientBody(pub Option<String>);

impl ClientBody {
    /// Reads the body (within the request size limit) without parsing it.
    pub async fn read(req: &mut Request) -> ApiResult<Self> {
        let bytes = crate::body::read_limited(req).await?;
        Ok(Self(String::from_utf8(bytes).ok()))
    }

    /// Parses it as `T`, answering `invalid_json` as [`crate::body::read_json`] does.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> ApiResult<T> {
        match &self.0 {
            Some(text) => crate::body::parse_json(text.as_bytes()),
            None => Err(ApiError::new(
                nightshift_protocol::ErrorCode::InvalidJson,
                "invalid JSON body: not UTF-8",
            )),
        }
    }
}

/// `POST /messages`: a prompt to queue (a [`nightshift_protocol::api::PostMessageRequest`]
/// in `body`, parsed by the object after admitting the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueuePrompt {
    pub body: ClientBody,
    /// The URL a runner dials, in case provisioning has to be retried.
    pub worker_url: String,
    /// The id of the user who sent it; its turn uses their LLM key, else the team's.
    #[serde(default)]
    pub sent_by: Option<String>,
    /// How many prompts may wait in the session (the team's cap).
    #[serde(default)]
    pub max_queued: Option<u32>,
    /// The team's spend caps, as the Worker last read them (the object reads them
    /// itself when absent).
    #[serde(default)]
    pub spend_caps: Option<nightshift_protocol::usage::SpendCaps>,
}

/// `PATCH /messages/{id}`: a new content (an `EditMessageRequest` in `body`) and
/// who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditPrompt {
    pub body: ClientBody,
    pub edited_by: Option<String>,
}

/// `POST /questions/{question_id}/answer`: an answer (an `AnswerQuestionRequest` in
/// `body`) and who gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerQuestion {
    pub body: ClientBody,
    pub answered_by: Option<String>,
}

/// `POST /streams/close`: the users whose open streams of the session must end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseStreams {
    pub user_ids: Vec<String>,
}

fn session_agent(env: &Env, session_id: &str) -> worker::Result<Stub> {
    env.durable_object("SESSION_AGENT")?
        .id_from_name(session_id)?
        .get_stub()
}

/// A request to `path` of a session's `SessionAgent`, with `extra` headers.
pub fn agent_request(
    session_id: &str,
    call: AgentCall<'_>,
    query: Option<&str>,
    extra: Option<Headers>,
    body: Option<String>,
) -> worker::Result<Request> {
    let headers = extra.unwrap_or_default();
    headers.set(SESSION_ID_HEADER, session_id)?;
    if body.is_some() {
        headers.set("content-type", "application/json")?;
    }
    let mut init = RequestInit::new();
    init.with_method(call.method())
        .with_headers(headers)
        .with_body(body.map(|b| JsValue::from_str(&b)));
    let query = query.map(|query| format!("?{query}")).unwrap_or_default();
    Request::new_with_init(&format!("{AGENT_ORIGIN}{}{query}", call.path()), &init)
}

/// Sends `request` to the session's `SessionAgent` and returns its answer as is.
/// Streaming answers (SSE, WebSocket upgrades) come back as soon as their headers do.
pub async fn forward_to_agent(
    env: &Env,
    session_id: &str,
    request: Request,
) -> ApiResult<Response> {
    let stub = session_agent(env, session_id)?;
    with_timeout(AGENT_CALL_TIMEOUT, stub.fetch_with_request(request))
        .await
        .map_err(|timed_out| {
            ApiError::internal(format!("the session did not answer: {timed_out}"))
        })?
        .map_err(ApiError::from)
}

/// Calls a session's `SessionAgent` for `caller`, who the object admits itself.
pub async fn call_agent_as<T: Serialize>(
    env: &Env,
    session_id: &str,
    caller: &Caller,
    call: AgentCall<'_>,
    body: Option<&T>,
) -> ApiResult<Response> {
    let body = body.map(serde_json::to_string).transpose()?;
    let request = agent_request(session_id, call, None, Some(caller.headers()?), body)?;
    forward_to_agent(env, session_id, request).await
}

/// Tells a session's `SessionAgent` that its owner or shares changed in D1; it has
/// read them again when this returns.
pub async fn reload_access(env: &Env, session_id: &str) -> ApiResult<()> {
    let response = call_agent::<()>(env, session_id, AgentCall::ReloadAccess, None).await?;
    if response.status_code() >= 300 && response.status_code() != 404 {
        return Err(ApiError::internal(format!(
            "session {session_id} did not take its new access ({})",
            response.status_code()
        )));
    }
    Ok(())
}

/// Calls `path` of a session's `SessionAgent` with an optional JSON body.
pub async fn call_agent<T: Serialize>(
    env: &Env,
    session_id: &str,
    call: AgentCall<'_>,
    body: Option<&T>,
) -> ApiResult<Response> {
    let body = body.map(serde_json::to_string).transpose()?;
    let request = agent_request(session_id, call, None, None, body)?;
    forward_to_agent(env, session_id, request).await
}

fn event_bus(env: &Env) -> worker::Result<Stub> {
    env.durable_object("EVENT_BUS")?.get_by_name(BUS_NAME)
}

/// Ends the open streams of `user_ids` on a session (they lost access to it). Best
/// effort: a failure is logged, and the session's periodic access check ends them
/// anyway.
pub async fn close_streams(env: &Env, session_id: &str, user_ids: &[String]) {
    if user_ids.is_empty() {
        return;
    }
    let body = CloseStreams {
        user_ids: user_ids.to_vec(),
    };
    if let Err(error) = call_agent(env, session_id, AgentCall::CloseStreams, Some(&body)).await {
        worker::console_warn!(
            "closing streams of session {session_id} failed: {}",
            error.message
        );
    }
}

/// Ends the session-list streams of `user_ids` (they lost access to a session the
/// Worker had let their stream show). Best effort, like [`close_streams`]; a stream
/// ends at its maximum age anyway.
pub async fn close_list_streams(env: &Env, user_ids: &[String]) {
    if user_ids.is_empty() {
        return;
    }
    let result = async {
        let stub = event_bus(env)?;
        let body = serde_json::to_string(&CloseStreams {
            user_ids: user_ids.to_vec(),
        })?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let request = Request::new_with_init(&format!("{BUS_ORIGIN}/streams/close"), &init)?;
        match with_timeout(PUBLISH_TIMEOUT, stub.fetch_with_request(request)).await {
            Ok(response) => response.map(|_| ()),
            Err(timed_out) => Err(worker::Error::RustError(timed_out.to_string())),
        }
    }
    .await;
    if let Err(error) = result {
        worker::console_warn!("closing session-list streams failed: {error}");
    }
}

/// The header a stream request carries the team's cap on open streams in.
pub const MAX_STREAMS_HEADER: &str = "x-nightshift-max-streams";

/// The cap on open streams a stream request names, else the environment's.
pub fn max_streams_of(req: &Request, env: &Env) -> usize {
    req.headers()
        .get(MAX_STREAMS_HEADER)
        .ok()
        .flatten()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| crate::config::max_open_streams(env))
}

/// Opens the session-list stream of the `EventBus` for `user_id`, held to `max_streams`.
pub async fn subscribe_to_bus(env: &Env, user_id: &str, max_streams: u32) -> ApiResult<Response> {
    let stub = event_bus(env)?;
    let headers = Headers::new();
    headers.set(crate::session_agent::presence::VIEWER_ID_HEADER, user_id)?;
    headers.set(MAX_STREAMS_HEADER, &max_streams.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request = Request::new_with_init(&format!("{BUS_ORIGIN}/events"), &init)?;
    with_timeout(AGENT_CALL_TIMEOUT, stub.fetch_with_request(request))
        .await
        .map_err(|timed_out| {
            ApiError::internal(format!("the event bus did not answer: {timed_out}"))
        })?
        .map_err(ApiError::from)
}

/// Publishes a session-list change. Best effort: a browser that misses one catches
/// up on its next list fetch, so a failure is logged, not raised.
pub async fn publish(env: &Env, event: &SessionListEvent) {
    post_to_bus(env, "/publish", event).await;
}

/// Publishes `event` to the session-list streams of `user_id` only (their inbox).
/// Failures are logged: the user's next page load reads the inbox anyway.
pub async fn publish_to_user(env: &Env, user_id: &str, event: &SessionListEvent) {
    let path = format!("/publish?user={}", crate::header_text::encode(user_id));
    post_to_bus(env, &path, event).await;
}

async fn post_to_bus(env: &Env, path: &str, event: &SessionListEvent) {
    let result = async {
        let stub = event_bus(env)?;
        let body = serde_json::to_string(event)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let request = Request::new_with_init(&format!("{BUS_ORIGIN}{path}"), &init)?;
        match with_timeout(PUBLISH_TIMEOUT, stub.fetch_with_request(request)).await {
            Ok(response) => response.map(|_| ()),
            Err(timed_out) => Err(worker::Error::RustError(timed_out.to_string())),
        }
    }
    .await;
    if let Err(error) = result {
        worker::console_warn!("publishing a session-list event failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_call_reads_back_as_itself() {
        use AgentCall::*;
        let calls = [
            Init,
            Enqueue,
            ListMessages,
            CancelMessage("m1"),
            EditMessage("m1"),
            Abort,
            Wake,
            Push,
            RepoView,
            Diff,
            ReloadAccess,
            UpdateSettings,
            AnswerQuestion("q1"),
            Events,
            Presence,
            PresenceHeartbeat,
            PresenceLeave,
            CloseStreams,
            StreamStats,
            Runner,
            Delete,
            Archive,
            CreatePanelGrant,
            CheckPanelGrant("00c0ffee"),
            GitContext,
            GithubReconnect,
            SetPullRequest,
            ReadConversation,
            WriteConversation,
            Rewind,
            ForkSource,
        ];
        for call in calls {
            let path = call.path();
            assert_eq!(
                AgentCall::parse(&call.method(), &path),
                Some(call),
                "{path}"
            );
        }
        assert_eq!(AgentCall::parse(&Method::Put, "/messages"), None);
        assert_eq!(AgentCall::parse(&Method::Get, "/nope"), None);
        assert_eq!(AgentCall::parse(&Method::Post, "/questions/q1"), None);
    }
}
