//! Spend: `GET /api/usage`, `GET /api/sessions/{id}/usage` and the admins'
//! `GET`/`PUT /api/admin/spend`.

use nightshift_protocol::usage::{
    SpendSettings, UpdateSpendSettings, UsageReport, UsageScope, UsageSums,
};

use super::{ApiError, encode, request_json, session_path};

const NO_BODY: Option<&()> = None;

/// `GET /api/usage?scope=..&from=..&to=..&bucket=day`.
pub async fn report(scope: &UsageScope, from: i64, to: i64) -> Result<UsageReport, ApiError> {
    let path = format!(
        "/api/usage?scope={}&from={from}&to={to}&bucket=day",
        encode(&scope.as_query())
    );
    request_json("GET", &path, NO_BODY).await
}

/// `GET /api/sessions/{id}/usage`.
pub async fn session(session_id: &str) -> Result<UsageSums, ApiError> {
    request_json("GET", &session_path(session_id, "/usage"), NO_BODY).await
}

/// `GET /api/admin/spend`.
pub async fn settings() -> Result<SpendSettings, ApiError> {
    request_json("GET", "/api/admin/spend", NO_BODY).await
}

/// `PUT /api/admin/spend`.
pub async fn save_settings(update: &UpdateSpendSettings) -> Result<SpendSettings, ApiError> {
    request_json("PUT", "/api/admin/spend", Some(update)).await
}
