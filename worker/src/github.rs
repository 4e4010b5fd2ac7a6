//! Everything the Worker does with GitHub: its REST API ([`api`]), users' tokens
//! (kept encrypted by the `APIKeys` object, handed out live and refreshed:
//! [`tokens`]), the team's GitHub settings ([`settings`]) and what a user's token can
//! see of repositories ([`repos`]), the GitHub App's installation tokens ([`app`])
//! the git credentials a session's runner gets ([`credentials`]) and the session's
//! pull request ([`pulls`]).
//!
//! Invariant: a token never appears in an event, a log line, an error message or a
//! URL; it leaves the Worker only in an `Authorization` header to GitHub, or as the
//! answer to a runner's credential request for its session's repository.

pub mod api;
pub mod app;
pub mod credentials;
pub mod pulls;
pub mod repos;
pub mod settings;
pub mod tokens;
