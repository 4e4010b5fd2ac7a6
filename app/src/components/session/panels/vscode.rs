//! The VS Code panel: code-server on the sandbox's workspace, in an iframe of the
//! session's panel origin (never the app's: code-server runs extensions). Renewal
//! answers the same URL, so the frame is never reloaded while the origin lives.

use leptos::prelude::*;
use nightshift_protocol::gateway::PanelKind;

use super::frame::PanelFrame;
use super::workspace::WorkspaceState;
use crate::state::panels::{PanelId, panel_status};

#[component]
pub fn VscodePanel(workspace: WorkspaceState, new_tab: String) -> impl IntoView {
    let src = workspace.ready_url(PanelKind::Vscode);
    let status =
        Signal::derive(move || panel_status(workspace.panel(PanelKind::Vscode).as_ref(), None));
    // The app's page of this panel alone, not the editor's own URL: that page keeps
    // renewing the origin's grant, a bare editor tab would stop working at expiry.
    let new_tab = Signal::derive(move || src.get().map(|_| new_tab.clone()));
    view! {
        <PanelFrame panel=PanelId::Vscode status=status new_tab=new_tab>
            {move || {
                src.get()
                    .map(|src| {
                        view! {
                            <iframe
                                class="pane-frame__iframe"
                                data-testid="vscode-frame"
                                title="VS Code"
                                src=src
                                allow="clipboard-read; clipboard-write"
                            ></iframe>
                        }
                    })
            }}
        </PanelFrame>
    }
}
