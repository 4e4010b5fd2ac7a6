//! `POST /api/sessions`, `GET /api/sessions`, `GET /api/sessions/{id}`,
//! `PATCH /api/sessions/{id}` (ending one, alone or several at once, is
//! [`super::session_end`]'s).
//!
//! Creating a session writes its D1 row first (so it is listed and addressable at
//! once), announces it on the session-list stream, then initializes its
//! `SessionAgent`, which requests the sandbox. A session on a GitHub repository has
//! it checked first (`crate::github::repos::resolve`), its list columns written
//! with the row, and the whole repository kept by the `SessionAgent`. The answer is the row as it stands
//! afterwards: `provisioning`, or `error` with the reason when the backend failed.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::api::{
    AgentKind, CreateSessionRequest, PermissionMode, Session, SessionList, SessionStatus,
    UpdateSessionRequest, UsageTotals,
};
use nightshift_protocol::events::SessionListEvent;
use nightshift_protocol::repo::SessionRepoSummary;
use nightshift_protocol::session_list::ListFilter;
use nightshift_session::title::normalize_title;
use worker::{Env, Request, Response};

use crate::api_error::{self, ApiError, ApiResult, json};
use crate::auth::User;
use crate::internal::{self, AgentCall, InitSession, SettingsHeld};
use crate::{body, clock, config, ids, limits, llm_config, sessions_table};

/// Refuses a model the user cannot use (`unknown_model`).
async fn check_model(env: &Env, user: &User, model: Option<&str>) -> ApiResult<()> {
    let Some(model) = model else {
        return Ok(());
    };
    let models = llm_config::available_models_with_keys(env, &user.id).await;
    if models.iter().any(|info| info.id == model) {
        return Ok(());
    }
    let offered: Vec<&str> = models.iter().map(|info| info.id.as_str()).collect();
    Err(ApiError::new(
        ErrorCode::UnknownModel,
        if offered.is_empty() {
            format!("no model `{model}`: no LLM provider is configured")
        } else {
            format!(
                "no model `{model}`; the models you can use are: {}",
                offered.join(", ")
            )
        },
    ))
}

pub async fn create(req: &mut Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: CreateSessionRequest = body::read_json_or_default(req).await?;
    let title = normalize_title(request.title.as_deref().unwrap_or_default())
        .map_err(|error| ApiError::new(ErrorCode::InvalidRequest, error.to_string()))?;
    check_model(env, user, request.model.as_deref()).await?;
    let agent = request.agent.unwrap_or_default();
    let permission_mode = request.permission_mode.unwrap_or_default();
    let worker_url = config::worker_url(env, req)?;
    let id = ids::new_id()?;
    // The repository is checked with the user's own GitHub access before anything is
    // written, so a refusal leaves nothing behind.
    let resolved = match &request.repo {
        Some(choice) => {
            let team = crate::github::settings::get(env).await?;
            Some(crate::github::repos::resolve(env, &user.id, &team, &id, &title, choice).await?)
        }
        None => None,
    };
    let now = clock::now_ms();
    let model = request
        .model
        .clone()
        .or_else(|| llm_config::model_name(env));
    let session = new_row(id, &title, agent, model, permission_mode, &user.id, now);
    let summary = resolved.as_ref().map(|resolved| SessionRepoSummary {
        full_name: resolved.repo.full_name.clone(),
        branch: resolved.repo.branch.clone(),
        base_branch: resolved.repo.base_branch.clone(),
        pull_request: resolved
            .pull_request
            .as_ref()
            .map(crate::github::pulls::summary),
    });
    let init = InitSession {
        owner_id: user.id.clone(),
        title,
        worker_url,
        agent,
        model: request.model,
        permission_mode,
        pull_request: resolved
            .as_ref()
            .and_then(|resolved| resolved.pull_request.clone()),
        repo: resolved.map(|resolved| resolved.repo),
        fork: None,
    };
    open_session(env, user, session, summary, init).await
}

/// A new session's row as the list shows it, owned by `owner_id`, before its
/// sandbox exists.
pub(super) fn new_row(
    id: String,
    title: &str,
    agent: AgentKind,
    model: Option<String>,
    permission_mode: PermissionMode,
    owner_id: &str,
    now: i64,
) -> Session {
    Session {
        id,
        title: title.to_owned(),
        status: SessionStatus::Provisioning,
        agent,
        model,
        permission_mode,
        usage: UsageTotals::default(),
        owner_id: owner_id.to_owned(),
        sandbox_id: None,
        error: None,
        created_at: now,
        updated_at: now,
        my_role: Some(nightshift_protocol::auth::SessionRole::Owner),
        owner: None,
        llm_source: None,
        repo: None,
        archived_at: None,
    }
}

/// Writes a new session's D1 row (within the caller's cap of live sessions),
/// announces it and initializes its `SessionAgent`, which requests its sandbox;
/// answers 201 with the session. Shared by a new session and a fork.
pub(super) async fn open_session(
    env: &Env,
    user: &User,
    session: Session,
    summary: Option<SessionRepoSummary>,
    init: InitSession,
) -> ApiResult<Response> {
    let max_live = limits::current(env).await?.live_sessions;
    if !sessions_table::insert_within(env, &session, max_live).await? {
        return Err(limits::exceeded(
            limits::Cap::LiveSessions,
            max_live,
            &format!(
                "you already have {max_live} live sessions, each with its sandbox; delete one \
                 first"
            ),
        ));
    }
    if let Some(summary) = &summary {
        sessions_table::set_repo(env, &session.id, summary).await?;
    }
    let session = Session {
        repo: summary,
        ..session
    };
    internal::publish(
        env,
        &SessionListEvent::SessionCreated {
            session: session.clone(),
        },
    )
    .await;

    let response = internal::call_agent(env, &session.id, AgentCall::Init, Some(&init)).await;
    if let Err(error) = agent_ok(response).await {
        // The row stays, so the session is visible with the reason; a later prompt
        // retries.
        worker::console_error!(
            "initializing session {} failed: {}",
            session.id,
            error.message
        );
        let update = sessions_table::SessionUpdate {
            status: SessionStatus::Error,
            title: session.title.clone(),
            sandbox_id: None,
            error: Some(error.message),
            archived_at: None,
            updated_at: clock::now_ms(),
        };
        sessions_table::update(env, &session.id, &update).await?;
        let changed = SessionListEvent::SessionStatusChanged {
            session_id: session.id.clone(),
            status: SessionStatus::Error,
        };
        internal::publish(env, &changed).await;
    }
    let created = sessions_table::require(env, &session.id, &user.id).await?;
    Ok(json(201, &created))
}

pub(super) async fn agent_ok(response: ApiResult<Response>) -> ApiResult<()> {
    let response = response?;
    if (200..300).contains(&response.status_code()) {
        Ok(())
    } else {
        Err(api_error::from_response(response).await)
    }
}

/// A `SessionAgent`'s 2xx answer read as `T`, or its error as the caller's.
pub(super) async fn agent_ok_response<T: serde::de::DeserializeOwned>(
    response: ApiResult<Response>,
) -> ApiResult<T> {
    let mut response = response?;
    if !(200..300).contains(&response.status_code()) {
        return Err(api_error::from_response(response).await);
    }
    Ok(response.json().await?)
}

/// `GET /api/sessions?limit=&cursor=&scope=&q=&archived=`: one page of the caller's
/// list as the filters say (see [`sessions_table::list_page`]). A cursor only
/// continues the list of the filter that answered it.
pub async fn list(req: &Request, env: &Env, user: &User) -> ApiResult<Response> {
    let url = req.url()?;
    let query = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let limit = match query("limit") {
        None => sessions_table::PAGE_DEFAULT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=sessions_table::PAGE_MAX).contains(limit))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("limit must be between 1 and {}", sessions_table::PAGE_MAX),
                )
            })?,
    };
    let filter = ListFilter::parse(
        query("scope").as_deref(),
        query("q").as_deref(),
        query("archived").as_deref(),
    )
    .map_err(|error| ApiError::new(ErrorCode::InvalidRequest, error.to_string()))?;
    let cursor = match query("cursor") {
        None => None,
        Some(text) => Some(
            sessions_table::Cursor::parse(&text)
                .filter(|cursor| cursor.filter == filter.fingerprint())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidRequest,
                        "cursor is not one this list answered with these filters",
                    )
                })?,
        ),
    };
    let admin = user.role == nightshift_protocol::auth::TeamRole::Admin;
    let (sessions, next) =
        sessions_table::list_page(env, &user.id, admin, &filter, cursor.as_ref(), limit).await?;
    Ok(json(
        200,
        &SessionList {
            sessions,
            next_cursor: next.map(|cursor| cursor.encode()),
        },
    ))
}

pub async fn get(env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let session = sessions_table::require(env, id, &user.id).await?;
    Ok(json(200, &session))
}

/// `PATCH /api/sessions/{id}`: agent, model and permission mode from the next turn on,
/// and the title. Answers the session as it is afterwards.
pub async fn update(req: &mut Request, env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let request: UpdateSessionRequest = body::read_json(req).await?;
    if let Some(title) = &request.title {
        normalize_title(title)
            .map_err(|error| ApiError::new(ErrorCode::InvalidRequest, error.to_string()))?;
    }
    check_model(env, user, request.model.as_deref()).await?;
    sessions_table::require(env, id, &user.id).await?;
    let response = internal::call_agent(env, id, AgentCall::UpdateSettings, Some(&request)).await;
    let held: SettingsHeld = agent_ok_response(response).await?;
    // The agent writes the row in the background: read it as the caller sees it and
    // answer with the settings the agent holds now, which the row may not show yet.
    let mut updated = sessions_table::require(env, id, &user.id).await?;
    updated.title = held.title;
    updated.agent = held.agent;
    updated.model = held.model;
    updated.permission_mode = held.permission_mode;
    Ok(json(200, &updated))
}
