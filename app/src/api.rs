//! The Worker's REST API, called with the browser's `fetch`.
//!
//! The app is served from the Worker's own origin, so every URL is relative
//! (`/api/...`). Every request carries a timeout, and every failure becomes an
//! [`ApiError`] with the code and message of the API's error envelope when there is
//! one. This module knows URLs and bodies only; what the answers mean for the view is
//! decided by the callers and the `state` reducers.

use nightshift_protocol::api::{
    AnswerQuestionRequest, CreateSessionRequest, EditMessageRequest, Message, MessageList,
    ModelInfo, PostMessageRequest, PostMessageResponse, QueueMode, Session, SessionList,
    UpdateSessionRequest,
};
use nightshift_protocol::events::SessionEvent;
use nightshift_protocol::session_list::{BulkRequest, BulkResponse, ListFilter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};

pub use crate::api_error::ApiError;

pub mod account;
pub mod github;
pub mod inbox;
pub mod usage;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, Request, RequestInit, Response};

/// How long any API call may take before the app gives up on it. The API answers
/// from Durable Object storage and D1; anything slower is a hung connection.
const REQUEST_TIMEOUT_MS: u32 = 15_000;

/// `GET /api/sessions`: the page after `cursor` of the list `filter` keeps.
pub async fn list_sessions(
    cursor: Option<&str>,
    filter: &ListFilter,
) -> Result<SessionList, ApiError> {
    let mut query: Vec<String> = filter
        .query_pairs()
        .into_iter()
        .map(|(name, value)| format!("{name}={}", encode(&value)))
        .collect();
    if let Some(cursor) = cursor {
        query.push(format!("cursor={}", encode(cursor)));
    }
    let path = if query.is_empty() {
        "/api/sessions".to_owned()
    } else {
        format!("/api/sessions?{}", query.join("&"))
    };
    request_json("GET", &path, None::<&()>).await
}

/// `POST /api/sessions/bulk`: archives or deletes sessions, an outcome each.
pub async fn bulk_sessions(request: &BulkRequest) -> Result<BulkResponse, ApiError> {
    request_json("POST", "/api/sessions/bulk", Some(request)).await
}

/// `POST /api/sessions/{id}/archive`: answers the session as it is afterwards.
pub async fn archive_session(session_id: &str) -> Result<Session, ApiError> {
    request_json(
        "POST",
        &session_path(session_id, "/archive"),
        Some(&serde_json::json!({})),
    )
    .await
}

/// `DELETE /api/sessions/{id}`.
pub async fn delete_session(session_id: &str) -> Result<(), ApiError> {
    request_text("DELETE", &session_path(session_id, ""), None::<&()>)
        .await
        .map(drop)
}

/// `POST /api/sessions` with the chosen agent, model and so on.
pub async fn create_session_with(request: &CreateSessionRequest) -> Result<Session, ApiError> {
    request_json("POST", "/api/sessions", Some(request)).await
}

/// `PATCH /api/sessions/{id}`: agent, model, permission mode or title.
pub async fn update_session(
    session_id: &str,
    request: &UpdateSessionRequest,
) -> Result<Session, ApiError> {
    request_json("PATCH", &session_path(session_id, ""), Some(request)).await
}

/// `GET /api/models`: the models this user can choose.
pub async fn list_models() -> Result<Vec<ModelInfo>, ApiError> {
    request_json("GET", "/api/models", None::<&()>).await
}

/// `PATCH /api/sessions/{id}/messages/{message_id}`: rewrites a queued prompt.
pub async fn edit_message(
    session_id: &str,
    message_id: &str,
    content: String,
) -> Result<Message, ApiError> {
    let suffix = format!("/messages/{}", encode(message_id));
    let body = EditMessageRequest { content };
    request_json("PATCH", &session_path(session_id, &suffix), Some(&body)).await
}

/// `POST /api/sessions/{id}/questions/{question_id}/answer`.
pub async fn answer_question(
    session_id: &str,
    question_id: &str,
    answer: String,
) -> Result<SessionEvent, ApiError> {
    let suffix = format!("/questions/{}/answer", encode(question_id));
    let body = AnswerQuestionRequest { answer };
    request_json("POST", &session_path(session_id, &suffix), Some(&body)).await
}

/// `GET /api/sessions/{id}`.
pub async fn get_session(session_id: &str) -> Result<Session, ApiError> {
    request_json("GET", &session_path(session_id, ""), None::<&()>).await
}

/// `GET /api/sessions/{id}/workspace[?renew=<grant>]`: the caller's panels and
/// their origin; with `renew`, the same origin for longer.
pub async fn get_workspace(
    session_id: &str,
    renew: Option<&str>,
) -> Result<nightshift_protocol::gateway::Workspace, ApiError> {
    let query = renew
        .map(|grant| format!("?renew={}", encode(grant)))
        .unwrap_or_default();
    let path = session_path(session_id, &format!("/workspace{query}"));
    request_json("GET", &path, None::<&()>).await
}

/// `GET /api/sessions/{id}/messages`.
pub async fn list_messages(session_id: &str) -> Result<MessageList, ApiError> {
    request_json("GET", &session_path(session_id, "/messages"), None::<&()>).await
}

/// `POST /api/sessions/{id}/messages`: queues a prompt.
pub async fn post_message(
    session_id: &str,
    content: String,
    mode: QueueMode,
) -> Result<PostMessageResponse, ApiError> {
    let body = PostMessageRequest { content, mode };
    request_json("POST", &session_path(session_id, "/messages"), Some(&body)).await
}

/// `DELETE /api/sessions/{id}/messages/{message_id}`: cancels a queued prompt.
pub async fn cancel_message(session_id: &str, message_id: &str) -> Result<(), ApiError> {
    let suffix = format!("/messages/{}", encode(message_id));
    request_text("DELETE", &session_path(session_id, &suffix), None::<&()>)
        .await
        .map(drop)
}

/// `POST /api/sessions/{id}/abort`: stops the running turn.
pub async fn abort(session_id: &str) -> Result<(), ApiError> {
    request_text(
        "POST",
        &session_path(session_id, "/abort"),
        Some(&serde_json::json!({})),
    )
    .await
    .map(drop)
}

/// `POST /api/sessions/{id}/wake`: wakes an asleep session.
pub async fn wake(session_id: &str) -> Result<(), ApiError> {
    request_text(
        "POST",
        &session_path(session_id, "/wake"),
        Some(&serde_json::json!({})),
    )
    .await
    .map(drop)
}

/// Rewinds the session to a finished turn: its files and conversation go back to
/// that turn's (the stream then brings the `rewound` event).
pub async fn rewind(session_id: &str, turn_id: &str) -> Result<(), ApiError> {
    request_text(
        "POST",
        &session_path(session_id, "/rewind"),
        Some(&nightshift_protocol::checkpoints::TurnRequest {
            turn: turn_id.to_owned(),
        }),
    )
    .await
    .map(drop)
}

/// Forks a new session from a finished turn: its own sandbox with that turn's
/// files, and the conversation up to it.
pub async fn fork(session_id: &str, turn_id: &str) -> Result<Session, ApiError> {
    request_json(
        "POST",
        &session_path(session_id, "/fork"),
        Some(&nightshift_protocol::checkpoints::TurnRequest {
            turn: turn_id.to_owned(),
        }),
    )
    .await
}

/// The URL of a session's event stream, resuming after `after` when it is not 0.
pub fn session_events_url(session_id: &str, after: u64) -> String {
    let base = session_path(session_id, "/events");
    if after == 0 {
        base
    } else {
        format!("{base}?after={after}")
    }
}

/// The URL of the sessions-list event stream.
pub const SESSION_LIST_EVENTS_URL: &str = "/api/events";

fn session_path(session_id: &str, suffix: &str) -> String {
    format!("/api/sessions/{}{suffix}", encode(session_id))
}

fn encode(segment: &str) -> String {
    String::from(js_sys::encode_uri_component(segment))
}

async fn request_json<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<&impl Serialize>,
) -> Result<T, ApiError> {
    let (status, text) = request_text(method, path, body).await?;
    serde_json::from_str(&text).map_err(|error| ApiError {
        code: None,
        message: format!("unexpected answer from {path}: {error}"),
        status,
    })
}

/// Sends one request; answers the status and body text of a 2xx response, and an
/// [`ApiError`] for anything else.
async fn request_text(
    method: &str,
    path: &str,
    body: Option<&impl Serialize>,
) -> Result<(u16, String), ApiError> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_signal(Some(&AbortSignal::timeout_with_u32(REQUEST_TIMEOUT_MS)));
    let headers = Headers::new().map_err(js_error)?;
    headers
        .set("Accept", "application/json")
        .map_err(js_error)?;
    // Cookie-authenticated changes must prove they come from this app. The session
    // cookie itself goes along by default: every URL is same-origin.
    if !matches!(method, "GET" | "HEAD")
        && let Some(token) = crate::browser_session::csrf_token()
    {
        headers.set("X-CSRF-Token", &token).map_err(js_error)?;
    }
    if let Some(body) = body {
        let json = serde_json::to_string(body)
            .map_err(|error| ApiError::network(format!("could not encode the request: {error}")))?;
        headers
            .set("Content-Type", "application/json")
            .map_err(js_error)?;
        init.set_body(&JsValue::from_str(&json));
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(path, &init).map_err(js_error)?;

    let window = web_sys::window().ok_or_else(|| ApiError::network("no window"))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    let status = response.status();
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .map_err(js_error)?
            .as_string()
            .unwrap_or_default(),
        Err(error) => return Err(js_error(error)),
    };
    if response.ok() {
        Ok((status, text))
    } else {
        if status == 401 {
            crate::browser_session::signed_out();
        }
        Err(ApiError::from_answer(
            status,
            &response.status_text(),
            &text,
        ))
    }
}

fn js_error(error: JsValue) -> ApiError {
    // A timeout surfaces as a `TimeoutError` DOMException from the abort signal.
    let name = js_sys::Reflect::get(&error, &JsValue::from_str("name"))
        .ok()
        .and_then(|name| name.as_string())
        .unwrap_or_default();
    if name == "TimeoutError" || name == "AbortError" {
        return ApiError::network("the server did not answer in time");
    }
    let message = js_sys::Reflect::get(&error, &JsValue::from_str("message"))
        .ok()
        .and_then(|message| message.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "request failed".to_owned());
    ApiError::network(format!("could not reach the server: {message}"))
}
