//! The end-to-end harness: everything a Nightshift integration test, browser test or
//! benchmark needs to run the real stack on this machine.
//!
//! - [`scripted_llm`]: a real HTTP server that speaks the OpenAI streaming
//!   chat-completions format and plays back scripts of text and tool calls; it
//!   stands in for a paid LLM API. [`slack_webhook`] receives the team webhook's
//!   posts and holds each to Slack's own definition. The other doubles are the outside services'
//!   ([`fake_oauth`], [`fake_github`]; see `e2e/README.md`).
//! - [`local_state`]: what the Worker's local D1, R2 and Durable Object state holds,
//!   row by row.
//! - [`stack`]: starts `wrangler dev` (real workerd with local D1, R2 and Durable
//!   Objects) on a free port, and the sandbox backend (which starts real runners under
//!   bubblewrap), each with its own state directory; restarts and kills them on demand.
//! - [`client`]: a small client for the Worker's `/api`, including an SSE reader;
//!   [`artifacts`]: a runner's artifact uploads.
//! - [`git_server`], [`fake_github`], [`github_openapi`]: a real git server (`git
//!   http-backend`) behind a fake GitHub REST API whose every exchange is validated
//!   against GitHub's official OpenAPI description; the double for GitHub.
//!   [`github_turn`]: the stack reaching that git server from its sandboxes and the
//!   scripted turn that edits and commits, shared by the API and browser journeys.
//! - [`panels`]: HTTP and WebSocket clients of a session's panel host.
//! - [`docker`]: the real Docker Engine, the sandbox image built from this tree, and a
//!   sandbox backend serving the docker provider with it.
//! - [`browser`]: headless Chromium through chromedriver, and signing it in;
//!   [`oauth_browser`]: a cookie-keeping HTTP client that walks OAuth redirects.
//!
//! Nothing here knows the Worker's or the runner's internals: the harness talks to
//! them only over HTTP, SSE and processes, as users and operators do.

// GitHub's repository objects are one large `json!` each.
#![recursion_limit = "256"]

pub mod artifacts;
pub mod browser;
pub mod client;
pub mod docker;
pub mod fake_github;
pub mod fake_oauth;
pub mod git_server;
pub mod github_openapi;
pub mod github_turn;
pub mod local_state;
pub mod oauth_browser;
pub mod panels;
pub mod scripted_llm;
pub mod slack_webhook;
pub mod stack;

/// How long any single wait in a test may take before it fails with a message.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(60);
