//! Small D1 helpers for the sign-in, team and sharing tables: every query is bound
//! (never formatted with values) and has a time limit.

use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::api_error::{ApiError, ApiResult};
use crate::sessions_table::D1_TIMEOUT;
use crate::timeout::with_timeout;

/// A bind value.
pub enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
}

impl Arg<'_> {
    fn js(&self) -> JsValue {
        match self {
            Arg::Text(text) => JsValue::from_str(text),
            Arg::OptText(text) => text.map_or(JsValue::NULL, JsValue::from_str),
            // Timestamps and counters stay far below 2^53: exact as JS numbers.
            Arg::Int(value) => JsValue::from_f64(*value as f64),
            Arg::OptInt(value) => value.map_or(JsValue::NULL, |v| JsValue::from_f64(v as f64)),
        }
    }
}

pub fn db(env: &Env) -> ApiResult<D1Database> {
    Ok(env.d1("DB")?)
}

pub fn statement(env: &Env, sql: &str, args: &[Arg<'_>]) -> ApiResult<D1PreparedStatement> {
    let values: Vec<JsValue> = args.iter().map(Arg::js).collect();
    Ok(db(env)?.prepare(sql).bind(&values)?)
}

fn timed_out(error: crate::timeout::TimedOut) -> ApiError {
    ApiError::internal(format!("D1: {error}"))
}

/// The first row, if any.
pub async fn first<T: DeserializeOwned>(
    env: &Env,
    sql: &str,
    args: &[Arg<'_>],
) -> ApiResult<Option<T>> {
    let statement = statement(env, sql, args)?;
    Ok(with_timeout(D1_TIMEOUT, statement.first::<T>(None))
        .await
        .map_err(timed_out)??)
}

/// Every row.
pub async fn all<T: DeserializeOwned>(env: &Env, sql: &str, args: &[Arg<'_>]) -> ApiResult<Vec<T>> {
    let statement = statement(env, sql, args)?;
    let result = with_timeout(D1_TIMEOUT, statement.all())
        .await
        .map_err(timed_out)??;
    Ok(result.results()?)
}

/// Runs a change; answers how many rows it changed.
pub async fn run(env: &Env, sql: &str, args: &[Arg<'_>]) -> ApiResult<usize> {
    let statement = statement(env, sql, args)?;
    let result = with_timeout(D1_TIMEOUT, statement.run())
        .await
        .map_err(timed_out)??;
    Ok(result.meta()?.and_then(|meta| meta.changes).unwrap_or(0))
}

/// Runs several changes in one transaction.
pub async fn batch(env: &Env, statements: Vec<D1PreparedStatement>) -> ApiResult<()> {
    with_timeout(D1_TIMEOUT, db(env)?.batch(statements))
        .await
        .map_err(timed_out)??;
    Ok(())
}
