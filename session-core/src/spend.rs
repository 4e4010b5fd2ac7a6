//! Spend rules as plain values: what a turn costs under a price table
//! ([`pricing`]), which cap a session's, user's or team's spending has reached
//! ([`caps`]), and the calendar periods caps and reports count in ([`periods`]).
//!
//! The Worker gathers the facts (the turn's tokens, the sums in D1, the admin's caps
//! and price overrides) and applies what these functions decide: it records, refuses
//! a prompt or stops a turn. Nothing here reads a clock or storage.

pub mod caps;
pub mod periods;
pub mod pricing;
