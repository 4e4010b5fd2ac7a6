//! Spend routes: `GET /api/usage` (the caller's, a user's or the team's usage per
//! day, per user), `GET /api/sessions/{id}/usage` (one session's totals) and the
//! admins' `GET`/`PUT /api/admin/spend` (caps and price overrides).
//!
//! Who may read what: anyone their own usage; admins anyone's and the team's
//! (403 otherwise); a session's usage whoever may view the session (checked by the
//! route's access before this runs).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::TeamRole;
use nightshift_protocol::usage::{
    SpendSettings, UpdateSpendSettings, UsageQuery, UsageReport, UsageScope,
};
use nightshift_session::spend::pricing::{BUILTIN_PRICES_READ_ON, builtin_prices};
use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::User;
use crate::body;
use crate::clock;
use crate::spend::report::{self, Scope};
use crate::spend::settings;

/// `GET /api/usage?scope=me|team|user:<id>&from=&to=&bucket=day`.
pub async fn get(req: &Request, env: &Env, user: &User) -> ApiResult<Response> {
    let url = req.url()?;
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let now = clock::now_ms();
    let query = UsageQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), now)
        .map_err(|message| ApiError::new(ErrorCode::InvalidRequest, message))?;
    let admin = user.role == TeamRole::Admin;
    let scope = match &query.scope {
        UsageScope::Me => Scope::User(user.id.clone()),
        UsageScope::User(id) if *id == user.id => Scope::User(id.clone()),
        UsageScope::User(id) if admin => Scope::User(id.clone()),
        UsageScope::Team if admin => Scope::Team,
        UsageScope::User(_) | UsageScope::Team => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only the team's admins can read another member's or the team's usage",
            ));
        }
    };
    let (totals, buckets) = report::by_day(env, &scope, query.from, query.to, now).await?;
    let users = if scope == Scope::Team {
        report::by_user(env, query.from, query.to, now).await?
    } else {
        Vec::new()
    };
    Ok(json(
        200,
        &UsageReport {
            scope: query.scope.as_query(),
            from: query.from,
            to: query.to,
            totals,
            buckets,
            users,
        },
    ))
}

/// `GET /api/sessions/{id}/usage`: the session's tokens, cost and sandbox time.
pub async fn session(env: &Env, session_id: &str) -> ApiResult<Response> {
    let sums = report::session(env, session_id, clock::now_ms()).await?;
    Ok(json(200, &sums))
}

fn answer(spend: settings::Spend) -> Response {
    json(
        200,
        &SpendSettings {
            caps: spend.caps,
            prices: spend.prices,
            builtin_prices: builtin_prices(),
            builtin_prices_read_on: BUILTIN_PRICES_READ_ON.to_owned(),
        },
    )
}

/// `GET /api/admin/spend`.
pub async fn get_settings(env: &Env) -> ApiResult<Response> {
    Ok(answer(settings::read(env).await?))
}

/// `PUT /api/admin/spend`: caps and/or the price overrides (all of them).
pub async fn put_settings(req: &mut Request, env: &Env) -> ApiResult<Response> {
    let update: UpdateSpendSettings = body::read_json(req).await?;
    Ok(answer(settings::store(env, &update).await?))
}
