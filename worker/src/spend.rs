//! Spend in D1: the admins' caps and price overrides ([`settings`]), the ledger of
//! every turn's tokens and cost and every sandbox's lifetime ([`ledger`]), and the
//! sums the usage reports and cap checks read from it ([`report`]).
//!
//! The rules (prices, which cap is reached, calendar periods) are
//! `nightshift_session::spend`'s; this module only reads and writes rows. The
//! `SessionAgent` writes the ledger (`session_agent/spend.rs`); the routes read it
//! (`routes/usage.rs`).

pub mod ledger;
pub mod report;
pub mod settings;
