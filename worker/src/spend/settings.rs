//! The team's spend caps and price overrides (`spend_settings`, one row per team).
//!
//! Read fresh where a decision must see an admin's change at once (the
//! `SessionAgent`'s check at every step), or through [`current`], which an isolate
//! trusts for [`CACHE_MS`] (the prompt path, like `limits`): an admin's change
//! reaches every isolate within that time, and the isolate that wrote it at once.

use std::cell::RefCell;

use nightshift_protocol::ErrorCode;
use nightshift_protocol::usage::{ModelPrice, SpendCaps, UpdateSpendSettings};
use nightshift_session::spend::pricing::valid_price;
use serde::Deserialize;
use worker::Env;

use crate::api_error::{ApiError, ApiResult};
use crate::auth::TEAM_ID;
use crate::auth::d1::{self, Arg};
use crate::clock;

/// How long an isolate trusts the settings it read.
pub const CACHE_MS: i64 = 30_000;

/// At most this many price overrides.
pub const MAX_PRICES: usize = 200;

/// The caps and the admin's prices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spend {
    pub caps: SpendCaps,
    pub prices: Vec<ModelPrice>,
}

thread_local! {
    static CACHED: RefCell<Option<(i64, Spend)>> = const { RefCell::new(None) };
}

#[derive(Deserialize)]
struct Row {
    caps: String,
    prices: String,
}

/// The settings, read afresh from D1 (defaults when no admin set any). A row that
/// does not parse reads as no caps and no overrides, and is logged.
pub async fn read(env: &Env) -> ApiResult<Spend> {
    let row: Option<Row> = d1::first(
        env,
        "SELECT caps, prices FROM spend_settings WHERE team_id = ?",
        &[Arg::Text(TEAM_ID)],
    )
    .await?;
    let spend = row.map_or_else(Spend::default, |row| Spend {
        caps: serde_json::from_str(&row.caps).unwrap_or_else(|error| {
            worker::console_error!("spend_settings.caps does not parse: {error}");
            SpendCaps::default()
        }),
        prices: serde_json::from_str(&row.prices).unwrap_or_else(|error| {
            worker::console_error!("spend_settings.prices does not parse: {error}");
            Vec::new()
        }),
    });
    CACHED.with(|cached| *cached.borrow_mut() = Some((clock::now_ms(), spend.clone())));
    Ok(spend)
}

/// The settings as this isolate last read them (within [`CACHE_MS`]).
pub async fn current(env: &Env) -> ApiResult<Spend> {
    let now = clock::now_ms();
    let fresh = CACHED.with(|cached| {
        cached
            .borrow()
            .as_ref()
            .filter(|(read_at, _)| now.saturating_sub(*read_at) < CACHE_MS)
            .map(|(_, spend)| spend.clone())
    });
    match fresh {
        Some(spend) => Ok(spend),
        None => read(env).await,
    }
}

/// Checks an admin's change: prices valid, each model once, not too many.
pub fn validate(update: &UpdateSpendSettings) -> ApiResult<()> {
    let Some(prices) = &update.prices else {
        return Ok(());
    };
    if prices.len() > MAX_PRICES {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("at most {MAX_PRICES} prices"),
        ));
    }
    for (index, price) in prices.iter().enumerate() {
        if !valid_price(price) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "prices[{index}]: a model id and prices between 0 and 10000 USD per \
                     million tokens"
                ),
            ));
        }
        if prices[..index].iter().any(|p| p.model == price.model) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("prices[{index}]: {} is listed twice", price.model),
            ));
        }
    }
    Ok(())
}

/// Applies an admin's change (validated first; nothing is written otherwise) and
/// answers the settings now in force.
pub async fn store(env: &Env, update: &UpdateSpendSettings) -> ApiResult<Spend> {
    validate(update)?;
    let mut spend = read(env).await?;
    if let Some(caps) = update.caps {
        spend.caps = caps;
    }
    if let Some(prices) = &update.prices {
        spend.prices.clone_from(prices);
    }
    let caps = serde_json::to_string(&spend.caps).map_err(|e| ApiError::internal(e.to_string()))?;
    let prices =
        serde_json::to_string(&spend.prices).map_err(|e| ApiError::internal(e.to_string()))?;
    d1::run(
        env,
        "INSERT INTO spend_settings (team_id, caps, prices, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (team_id) DO UPDATE SET caps = excluded.caps, prices = excluded.prices, \
         updated_at = excluded.updated_at",
        &[
            Arg::Text(TEAM_ID),
            Arg::Text(&caps),
            Arg::Text(&prices),
            Arg::Int(clock::now_ms()),
        ],
    )
    .await?;
    CACHED.with(|cached| *cached.borrow_mut() = Some((clock::now_ms(), spend.clone())));
    Ok(spend)
}
