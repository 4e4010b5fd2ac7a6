//! Sign-in, teams, sharing and keys as plain data: the wire types of those API routes
//! (see `docs/API.md`), what a role allows, and the checks the forms make before
//! sending anything.
//!
//! Like [`crate::state`], nothing here knows Leptos or the DOM, so it is unit-tested
//! natively. The wire types are read leniently (missing fields take defaults) so a
//! newer server that adds fields never breaks an older app.

pub mod access;
pub mod forms;
pub mod signin;
pub mod wire;

pub use access::{SessionAccess, SessionRole, TeamRole};
pub use wire::{
    ApiToken, Invite, LlmKey, Me, Member, Providers, SessionShares, ShareLink, SharedUser,
    TeamMember, TeamSettings, Viewer,
};
