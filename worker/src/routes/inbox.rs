//! The inbox routes (`GET /api/inbox`, `POST /api/inbox/read`) and the team
//! webhook's admin routes (`GET`/`PUT /api/admin/webhook`,
//! `POST /api/admin/webhook/test`). Thin: parse, call `crate::inbox`, answer.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::inbox::{
    MAX_INBOX_PAGE, MAX_MARK_READ_IDS, MarkRead, MarkedRead, PutWebhook,
};
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::User;
use crate::{body, config, inbox};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// `GET /api/inbox?limit=&cursor=`: the caller's own entries, newest first.
pub async fn list(req: &Request, env: &Env, user: &User) -> ApiResult<Response> {
    let url = req.url()?;
    let query = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let limit = match query("limit") {
        None => MAX_INBOX_PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_INBOX_PAGE).contains(limit))
            .ok_or_else(|| invalid(format!("limit is 1 to {MAX_INBOX_PAGE}")))?,
    };
    let page = inbox::page(env, &user.id, limit, query("cursor").as_deref()).await?;
    Ok(json(200, &page))
}

/// `POST /api/inbox/read`: `{"ids": [...]}` or `{"all": true}`.
pub async fn mark_read(req: &mut Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: MarkRead = body::read_json(req).await?;
    // Exactly one of the two ways: ids, or everything.
    let names_ids = !request.ids.is_empty();
    if request.all == names_ids {
        return Err(invalid("send either `ids` (not empty) or `all: true`"));
    }
    if request.ids.len() > MAX_MARK_READ_IDS {
        return Err(invalid(format!(
            "at most {MAX_MARK_READ_IDS} ids at once; use `all: true`"
        )));
    }
    let marked = inbox::mark_read(env, &user.id, &request.ids, request.all).await?;
    let unread = inbox::unread(env, &user.id).await?;
    if marked > 0 {
        // The user's other tabs update their count.
        inbox::tell(env, &user.id, None).await;
    }
    Ok(json(200, &MarkedRead { marked, unread }))
}

/// `GET /api/admin/webhook`.
pub async fn get_webhook(env: &Env) -> ApiResult<Response> {
    Ok(json(200, &inbox::webhook::settings(env).await?))
}

/// `PUT /api/admin/webhook`.
pub async fn put_webhook(req: &mut Request, env: &Env) -> ApiResult<Response> {
    let request: PutWebhook = body::read_json(req).await?;
    Ok(json(
        200,
        &inbox::webhook::put(env, request.url.as_deref()).await?,
    ))
}

/// `POST /api/admin/webhook/test`: posts a test message now and says what the
/// receiver did.
pub async fn test_webhook(req: &Request, env: &Env) -> ApiResult<Response> {
    let app_url = config::worker_url(env, req)?;
    Ok(json(200, &inbox::webhook::send_test(env, &app_url).await?))
}
