//! The session page's panels: Chat, VS Code, Browser and Terminal. On a wide window
//! the shown ones stand side by side with draggable (and arrow-key) splits between
//! them; on a narrow one (the phone layout, CSS below 720 px) they are tabs. Which
//! are shown, their widths and the active tab are remembered per user in
//! `localStorage` (`state::panels::PanelLayout`).
//!
//! `?panel=<name>` in the page's URL shows that panel alone, full size: it is where
//! each panel's "open in a new tab" goes.
//!
//! The panels' content never runs on the app's origin: VS Code is an iframe of the
//! session's panel origin, and the terminal and the desktop are drawn here by
//! xterm.js and noVNC from WebSockets to that origin (see `workspace`).

mod desktop;
mod frame;
mod glue;
mod layout;
mod terminal;
mod vscode;
mod workspace;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::session::SessionContext;
use crate::state::panels::PanelId;
use crate::state::session_phase::panels_may_open;
use crate::store::SessionsStore;

use desktop::DesktopPanel;
use layout::{LayoutStore, PanelBar, Splitter};
use terminal::TerminalPanel;
use vscode::VscodePanel;
use workspace::WorkspaceState;

#[component]
pub fn SessionPanels(session_id: String, children: Children) -> impl IntoView {
    let query = use_query_map();
    let alone = Memo::new(move |_| {
        query.with(|query| {
            query
                .get("panel")
                .and_then(|name| PanelId::ALL.into_iter().find(|p| p.as_str() == name))
        })
    });
    let layout = LayoutStore::start();
    // Opening the panels wakes an asleep session: a page opened on one waits for
    // the session to be woken (by a prompt or the Wake button) before asking.
    let context = expect_context::<SessionContext>();
    let store = expect_context::<SessionsStore>();
    let may_ask = Signal::derive(move || {
        context
            .timeline
            .with(|timeline| timeline.status())
            .or_else(|| {
                context.session_id.with_value(|id| {
                    store
                        .list
                        .with(|list| list.get(id).map(|session| session.status))
                })
            })
            .is_some_and(panels_may_open)
    });
    let workspace = WorkspaceState::start(session_id.clone(), may_ask);
    let dragging = RwSignal::new(false);
    let new_tab = |panel: PanelId| format!("/sessions/{session_id}?panel={}", panel.as_str());

    let pane_class = move |panel: PanelId| {
        let alone = alone.get();
        layout.layout.with(|layout| {
            let shown = alone.map_or(layout.is_shown(panel), |only| only == panel);
            let active = alone.map_or(layout.active() == panel, |only| only == panel);
            format!(
                "pane pane--{}{}{}",
                panel.as_str(),
                if shown { " pane--shown" } else { "" },
                if active { " pane--active" } else { "" }
            )
        })
    };
    let grow = move |panel: PanelId| {
        layout
            .layout
            .with(|layout| layout.weight(panel).to_string())
    };
    let splitter = move |panel: PanelId| {
        view! { <Splitter layout=layout left=panel dragging=dragging alone=alone/> }
    };

    view! {
        <Show when=move || alone.get().is_none()>
            <PanelBar layout=layout/>
        </Show>
        <div
            class="panes"
            class:panes--alone=move || alone.get().is_some()
            class:panes--dragging=move || dragging.get()
            data-testid="panels"
        >
            <div class=move || pane_class(PanelId::Chat) style:flex-grow=move || grow(PanelId::Chat) data-panel="chat" data-testid="chat-panel">
                {children()}
            </div>
            {splitter(PanelId::Chat)}
            <div class=move || pane_class(PanelId::Vscode) style:flex-grow=move || grow(PanelId::Vscode) data-panel="vscode">
                <VscodePanel workspace=workspace new_tab=new_tab(PanelId::Vscode)/>
            </div>
            {splitter(PanelId::Vscode)}
            <div class=move || pane_class(PanelId::Browser) style:flex-grow=move || grow(PanelId::Browser) data-panel="browser">
                <DesktopPanel workspace=workspace new_tab=new_tab(PanelId::Browser)/>
            </div>
            {splitter(PanelId::Browser)}
            <div class=move || pane_class(PanelId::Terminal) style:flex-grow=move || grow(PanelId::Terminal) data-panel="terminal">
                <TerminalPanel workspace=workspace new_tab=new_tab(PanelId::Terminal)/>
            </div>
        </div>
    }
}
