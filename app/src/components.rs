//! The app's components, grouped by the part of the screen they draw, and the small
//! pieces several of them share.
//!
//! Components read state from signals and call `api` and the `state` reducers; they
//! decide nothing about what an event or an answer means.

pub mod drawer;
pub mod empty_state;
pub mod new_session;
pub mod presence;
pub mod repo_picker;
pub mod session;
pub mod session_access;
pub mod session_list_controls;
pub mod share_dialog;
pub mod sidebar;
pub mod usage_chart;
pub mod user_menu;

use leptos::prelude::*;
use nightshift_protocol::api::SessionStatus;

/// A session's status as a coloured pill. Its text is exactly the status's wire name
/// (`idle`, `running`, ...), which end-to-end tests read.
#[component]
pub fn StatusBadge(#[prop(into)] status: Signal<Option<SessionStatus>>) -> impl IntoView {
    let name = move || status.get().map(SessionStatus::as_str).unwrap_or("unknown");
    view! {
        <span
            class=move || format!("badge badge--{}", name())
            data-testid="status-badge"
            data-status=name
        >
            {name}
        </span>
    }
}
