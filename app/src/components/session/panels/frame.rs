//! The chrome every panel but the chat shares: its title, its state (starting,
//! ready, reconnecting, unavailable, with the reason) and "open in a new tab".

use leptos::prelude::*;

use crate::state::panels::{PanelId, PanelStatus};

#[component]
pub fn PanelFrame(
    panel: PanelId,
    /// The state and its reason, from `state::panels::panel_status`.
    #[prop(into)]
    status: Signal<(PanelStatus, Option<String>)>,
    /// Where "open in a new tab" goes.
    #[prop(into)]
    new_tab: Signal<Option<String>>,
    children: Children,
) -> impl IntoView {
    let state = move || status.with(|(status, _)| status.as_str());
    let reason = move || status.with(|(_, reason)| reason.clone().unwrap_or_default());
    view! {
        <div class="pane-frame" data-testid=format!("{}-panel", panel.as_str())>
            <div class="pane-frame__bar">
                <span class="pane-frame__title">{panel.label()}</span>
                <span class="pane-state" data-testid="panel-state" data-state=state>
                    <span class="pane-state__dot"></span>
                    {state}
                </span>
                <span class="pane-frame__reason" data-testid="panel-reason" title=reason>
                    {reason}
                </span>
                {move || {
                    new_tab
                        .get()
                        .map(|href| {
                            view! {
                                <a
                                    class="pane-frame__open"
                                    href=href
                                    target="_blank"
                                    rel="noopener noreferrer"
                                    data-testid="panel-open-new-tab"
                                >
                                    "Open in a new tab ↗"
                                </a>
                            }
                        })
                }}
            </div>
            <div class="pane-frame__body">
                {children()}
                // Until there is content, the body says why (a blank frame says nothing).
                <Show when=move || {
                    status.with(|(status, _)| {
                        matches!(status, PanelStatus::Starting | PanelStatus::Unavailable)
                    })
                }>
                    <div class="pane-frame__placeholder" data-testid="panel-placeholder">
                        <strong>{state}</strong>
                        <span>{reason}</span>
                    </div>
                </Show>
            </div>
        </div>
    }
}
