//! Nightshift's web app: a single-page app that lists sessions, streams each one's
//! work live and lets the user queue prompts and abort turns.
//!
//! The crate has two halves. The plain half ([`state`], [`markdown`], [`format`], [`api_error`]) turns
//! wire types from `nightshift-protocol` into view state and text, and builds and
//! tests natively. The browser half (`app`, `api`, `sse`, `store`, `inbox`, `notifications`, `components`) is compiled
//! only for `wasm32` and is the only code in the workspace that knows Leptos or the
//! DOM; it calls the plain half and holds no decisions of its own. Neither half may
//! depend on the Worker's or the runner's crates: the HTTP API and the SSE events are
//! the whole contract.

pub mod account;
pub mod api_error;
pub mod format;
pub mod markdown;
pub mod state;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod auth;
mod browser_session;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod inbox;
#[cfg(target_arch = "wasm32")]
mod notifications;
#[cfg(target_arch = "wasm32")]
mod pages;
#[cfg(target_arch = "wasm32")]
mod sse;
#[cfg(target_arch = "wasm32")]
mod store;

/// Mounts the app when the wasm module loads.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(app::App);
}
