//! The Browser panel: the sandbox's desktop (its Chromium on a virtual display),
//! drawn by noVNC's RFB client in the app over `/desktop/vnc` on the panel origin,
//! scaled to the panel. View-only when the workspace answer says so (viewers): the
//! client then sends no input, and the gateway serves them the view-only VNC server
//! besides. A dropped connection is opened again after a back-off on the
//! workspace's current URL.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::gateway::PanelKind;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;

use super::frame::PanelFrame;
use super::glue::{self, Rfb};
use super::workspace::WorkspaceState;
use crate::state::panels::{Connection, PanelId, panel_status, reconnect_delay};

#[component]
pub fn DesktopPanel(workspace: WorkspaceState, new_tab: String) -> impl IntoView {
    let url = workspace.ready_url(PanelKind::Desktop);
    let view_only = Memo::new(move |_| {
        workspace
            .panel(PanelKind::Desktop)
            .is_some_and(|panel| panel.view_only)
    });
    let connection = RwSignal::new(Connection::Connecting);
    let status = Signal::derive(move || {
        panel_status(
            workspace.panel(PanelKind::Desktop).as_ref(),
            Some(connection.get()),
        )
    });
    let new_tab = Signal::derive(move || url.get().map(|_| new_tab.clone()));
    let node = NodeRef::<Div>::new();
    let link = DesktopLink(Rc::new(Inner {
        url,
        view_only,
        connection,
        element: RefCell::new(None),
        rfb: RefCell::new(None),
        on_state: RefCell::new(None),
        attempt: Cell::new(0),
        connecting: Cell::new(false),
        closed: Cell::new(false),
    }));
    {
        let link = link.clone();
        Effect::new(move |_| {
            // Connects once the desktop is ready (and the element is there).
            if let (Some(element), Some(_)) = (node.get(), url.get()) {
                link.start(element.into());
            }
        });
    }
    let link = SendWrapper::new(link);
    on_cleanup(move || link.close());
    view! {
        <PanelFrame panel=PanelId::Browser status=status new_tab=new_tab>
            <div
                class="desktop-screen"
                class:desktop-screen--view-only=move || view_only.get()
                data-testid="desktop-screen"
                data-view-only=move || view_only.get().to_string()
                node_ref=node
            ></div>
        </PanelFrame>
    }
}

#[derive(Clone)]
struct DesktopLink(Rc<Inner>);

struct Inner {
    url: Memo<Option<String>>,
    view_only: Memo<bool>,
    connection: RwSignal<Connection>,
    element: RefCell<Option<web_sys::HtmlElement>>,
    rfb: RefCell<Option<Rfb>>,
    on_state: RefCell<Option<glue::StateCallback>>,
    attempt: Cell<u32>,
    /// Set from the first start, so the effect re-running starts nothing twice.
    connecting: Cell<bool>,
    closed: Cell<bool>,
}

impl DesktopLink {
    fn start(&self, element: web_sys::HtmlElement) {
        if self.0.connecting.replace(true) {
            return;
        }
        *self.0.element.borrow_mut() = Some(element);
        self.connect();
    }

    fn connect(&self) {
        if self.0.closed.get() {
            return;
        }
        let (Some(element), Some(url)) =
            (self.0.element.borrow().clone(), self.0.url.get_untracked())
        else {
            return;
        };
        let view_only = self.0.view_only.get_untracked();
        let weak = Rc::downgrade(&self.0);
        let on_state =
            Closure::<dyn FnMut(String, String)>::new(move |state: String, reason: String| {
                let Some(inner) = weak.upgrade() else { return };
                let link = DesktopLink(inner);
                if state == "ready" {
                    link.0.attempt.set(0);
                    link.0.connection.try_set(Connection::Open);
                } else {
                    if !reason.is_empty() {
                        leptos::logging::warn!("the desktop closed: {reason}");
                    }
                    link.retry();
                }
            });
        let this = self.clone();
        spawn_local(async move {
            match glue::open_desktop(&element, &url, view_only, &on_state).await {
                Ok(rfb) => {
                    if this.0.closed.get() {
                        rfb.disconnect();
                        return;
                    }
                    *this.0.on_state.borrow_mut() = Some(on_state);
                    *this.0.rfb.borrow_mut() = Some(rfb);
                }
                Err(error) => {
                    leptos::logging::warn!("the desktop did not load: {error}");
                    this.retry();
                }
            }
        });
    }

    fn retry(&self) {
        if self.0.closed.get() {
            return;
        }
        self.0.rfb.borrow_mut().take();
        self.0.connection.try_set(Connection::Reconnecting);
        let attempt = self.0.attempt.get();
        self.0.attempt.set(attempt.saturating_add(1));
        let weak = Rc::downgrade(&self.0);
        let reconnect = move || {
            if let Some(inner) = weak.upgrade() {
                DesktopLink(inner).connect();
            }
        };
        set_timeout(reconnect, reconnect_delay(attempt));
    }

    fn close(&self) {
        self.0.closed.set(true);
        if let Some(rfb) = self.0.rfb.borrow_mut().take() {
            rfb.disconnect();
        }
    }
}
