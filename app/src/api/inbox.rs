//! The inbox routes and the team webhook's admin routes. URLs and bodies only, like
//! the rest of [`crate::api`]; the bodies are `nightshift_protocol::inbox`'s types.

use nightshift_protocol::inbox::{
    InboxPage, MarkRead, MarkedRead, PutWebhook, WebhookSettings, WebhookTestResult,
};

use super::{ApiError, encode, request_json};

const NO_BODY: Option<&()> = None;

/// `GET /api/inbox?cursor=`: the newest entries first.
pub async fn page(cursor: Option<&str>) -> Result<InboxPage, ApiError> {
    let path = match cursor {
        Some(cursor) => format!("/api/inbox?cursor={}", encode(cursor)),
        None => "/api/inbox".to_owned(),
    };
    request_json("GET", &path, NO_BODY).await
}

/// `POST /api/inbox/read` with `ids`, or every entry when `ids` is empty.
pub async fn mark_read(ids: Vec<String>) -> Result<MarkedRead, ApiError> {
    let all = ids.is_empty();
    request_json("POST", "/api/inbox/read", Some(&MarkRead { ids, all })).await
}

/// `GET /api/admin/webhook`.
pub async fn webhook() -> Result<WebhookSettings, ApiError> {
    request_json("GET", "/api/admin/webhook", NO_BODY).await
}

/// `PUT /api/admin/webhook`.
pub async fn save_webhook(url: Option<String>) -> Result<WebhookSettings, ApiError> {
    request_json("PUT", "/api/admin/webhook", Some(&PutWebhook { url })).await
}

/// `POST /api/admin/webhook/test`.
pub async fn test_webhook() -> Result<WebhookTestResult, ApiError> {
    request_json("POST", "/api/admin/webhook/test", NO_BODY).await
}
