//! The session's spend in its header: cost and sandbox time from the ledger
//! (`GET /api/sessions/{id}/usage`), read when the page opens and again whenever
//! another turn finishes.

use leptos::prelude::*;
use nightshift_protocol::usage::format_usd;

use crate::api;
use crate::state::usage_chart::duration_text;

#[component]
pub fn SessionSpend(session_id: String, finished_turns: Memo<u64>) -> impl IntoView {
    let usage = LocalResource::new(move || {
        finished_turns.track();
        let session_id = session_id.clone();
        async move { api::usage::session(&session_id).await }
    });
    view! {
        <span class="agent-picker__totals" data-testid="session-spend" title="This session's cost and sandbox time">
            {move || match usage.get() {
                Some(Ok(sums)) => format!(
                    "{} · {} of sandbox",
                    format_usd(sums.cost_micro_usd),
                    duration_text(sums.sandbox_ms)
                ),
                _ => String::new(),
            }}
        </span>
    }
}
