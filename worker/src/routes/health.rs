//! `GET /api/health`: the versions of the parts that answered. Always 200; a part
//! that does not answer is reported with `ok: false` and why.

use nightshift_protocol::VERSION;
use nightshift_protocol::api::{Health, PartHealth};
use worker::{Env, Response};

use crate::api_error::json;
use crate::sandbox_client;

pub async fn get(env: &Env) -> Response {
    let worker = PartHealth {
        ok: true,
        version: Some(VERSION.to_owned()),
        error: None,
    };
    let sandbox_backend = sandbox_client::health(env).await;
    let health = Health {
        ok: worker.ok && sandbox_backend.ok,
        worker,
        sandbox_backend,
    };
    json(200, &health)
}
