//! Nightshift's sandbox backend: an HTTP service (`/v1/...`) that creates isolated
//! sandboxes, runs commands and moves files in them, and keeps one runner alive per
//! sandbox that is linked to a session.
//!
//! Layers, top to bottom: [`routes`] (thin axum handlers, bearer auth in [`auth`]) call
//! [`sandboxes::Sandboxes`], which owns the lifecycle rules for every provider (one
//! operation at a time per sandbox, destroyed is final, runner supervision in
//! [`runner_supervision`], exec'd processes killed on stop); below it a
//! [`providers::Provider`] does the provider-specific work (the [`providers::local`]
//! one with bubblewrap). Plain logic (exec planning, path confinement, back-off, the
//! transition table) is unit-tested on its own.
//!
//! This crate speaks the wire types of `nightshift-protocol` and depends on no other
//! Nightshift crate; nothing in it knows about the Worker beyond the runner's config.

#![recursion_limit = "256"]

pub mod auth;
pub mod checkpoints;
pub mod config;
pub mod error;
pub mod exec;
pub mod files;
pub mod git_egress;
pub mod health_probe;
pub mod listen;
pub mod process;
pub mod providers;
pub mod relay;
pub mod routes;
pub mod runner_supervision;
pub mod sandboxes;
pub mod state;
pub mod tls;

pub use config::Config;
pub use state::{AppState, StartError};

/// The whole HTTP API, ready to serve or to drive with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> axum::Router {
    routes::router(state)
}
