//! The Terminal panel: xterm.js in the app, one shared shell per tab in the sandbox
//! (`/terminal/{tab}` on the panel origin, protocol in `nightshift_protocol::gateway`).
//!
//! Each tab keeps its socket while the page is open: output is written to its
//! terminal, keystrokes and size changes go back as text frames. A lost socket is
//! opened again after a back-off, on the workspace's current URL (renewal keeps it,
//! a new grant changes it); the gateway then replays the tab's scroll-back, so the
//! screen is cleared first. Viewers have no terminal (the workspace answer gives
//! them no URL), and a terminal opened read-only sends nothing.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::gateway::{PanelKind, TerminalInput, TerminalNotice};
use send_wrapper::SendWrapper;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, MessageEvent, WebSocket};

use super::frame::PanelFrame;
use super::glue::{self, TerminalView};
use super::workspace::WorkspaceState;
use crate::state::panels::{Connection, PanelId, TerminalTabs, panel_status, reconnect_delay};

#[component]
pub fn TerminalPanel(workspace: WorkspaceState, new_tab: String) -> impl IntoView {
    let base = workspace.ready_url(PanelKind::Terminal);
    let read_only = Memo::new(move |_| {
        workspace
            .panel(PanelKind::Terminal)
            .is_some_and(|panel| panel.view_only)
    });
    let tabs = RwSignal::new(TerminalTabs::default());
    let connections = RwSignal::new(HashMap::<String, Connection>::new());
    let status = Signal::derive(move || {
        let active = tabs.with(|tabs| tabs.active().to_owned());
        let connection = connections.with(|all| all.get(&active).copied());
        panel_status(
            workspace.panel(PanelKind::Terminal).as_ref(),
            Some(connection.unwrap_or(Connection::Connecting)),
        )
    });
    let new_tab = Signal::derive(move || base.get().map(|_| new_tab.clone()));
    let names = move || tabs.with(|tabs| tabs.tabs().to_vec());
    view! {
        <PanelFrame panel=PanelId::Terminal status=status new_tab=new_tab>
            <Show when=move || base.get().is_some()>
                <div class="terminal-tabs" role="tablist">
                    <For each=names key=|name| name.clone() let:name>
                        {
                            let selected = {
                                let name = name.clone();
                                move || tabs.with(|tabs| tabs.active() == name)
                            };
                            let select = {
                                let name = name.clone();
                                move |_| tabs.update(|tabs| tabs.select(&name))
                            };
                            view! {
                                <button
                                    class="terminal-tabs__tab"
                                    class:terminal-tabs__tab--active=selected.clone()
                                    role="tab"
                                    aria-selected=move || selected().to_string()
                                    data-testid="terminal-tab"
                                    data-tab=name.clone()
                                    on:click=select
                                >
                                    {name.clone()}
                                </button>
                            }
                        }
                    </For>
                    <button
                        class="terminal-tabs__add"
                        title="A new terminal tab"
                        aria-label="A new terminal tab"
                        data-testid="terminal-add"
                        disabled=move || !tabs.with(TerminalTabs::can_add)
                        on:click=move |_| {
                            tabs.update(|tabs| {
                                tabs.add();
                            })
                        }
                    >
                        "+"
                    </button>
                </div>
                <div class="terminal-screens">
                    <For each=names key=|name| name.clone() let:name>
                        {
                            let active = {
                                let name = name.clone();
                                Signal::derive(move || tabs.with(|tabs| tabs.active() == name))
                            };
                            view! {
                                <TerminalTab
                                    name=name
                                    base=base
                                    read_only=read_only.get_untracked()
                                    active=active
                                    connections=connections
                                />
                            }
                        }
                    </For>
                </div>
            </Show>
        </PanelFrame>
    }
}

#[component]
fn TerminalTab(
    name: String,
    base: Memo<Option<String>>,
    read_only: bool,
    active: Signal<bool>,
    connections: RwSignal<HashMap<String, Connection>>,
) -> impl IntoView {
    let node = NodeRef::<Div>::new();
    let link = TerminalLink::new(name.clone(), base, read_only, connections);
    {
        let link = link.clone();
        Effect::new(move |_| {
            if let Some(element) = node.get() {
                link.start(element.into());
            }
        });
    }
    {
        let link = link.clone();
        Effect::new(move |_| {
            if active.get() {
                link.fit_and_focus();
            }
        });
    }
    let link = SendWrapper::new(link);
    on_cleanup(move || link.close());
    view! {
        <div
            class="terminal-screen"
            class:terminal-screen--active=move || active.get()
            node_ref=node
            data-testid="terminal-screen"
            data-tab=name
        ></div>
    }
}

/// How many inputs typed while the socket is not open are kept for it.
const MAX_PENDING_INPUTS: usize = 256;

/// One tab's terminal and socket.
#[derive(Clone)]
struct TerminalLink(Rc<Inner>);

struct Inner {
    name: String,
    base: Memo<Option<String>>,
    read_only: bool,
    connections: RwSignal<HashMap<String, Connection>>,
    view: RefCell<Option<TerminalView>>,
    socket: RefCell<Option<Socket>>,
    attempt: Cell<u32>,
    /// The size last sent on the current socket.
    sent_size: Cell<Option<(u16, u16)>>,
    /// Input typed while no socket was open (a tab just added, a reconnect), sent
    /// once one opens rather than lost; bounded.
    pending: RefCell<Vec<String>>,
    started: Cell<bool>,
    closed: Cell<bool>,
    on_input: RefCell<Option<glue::InputCallback>>,
    observer: RefCell<Option<SizeObserver>>,
}

/// A size observer and the callback it calls.
type SizeObserver = (web_sys::ResizeObserver, Closure<dyn FnMut()>);

/// A socket and the callbacks it holds (dropping them would leave it deaf).
struct Socket {
    socket: WebSocket,
    _callbacks: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Socket {
    fn shut(&self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

impl TerminalLink {
    fn new(
        name: String,
        base: Memo<Option<String>>,
        read_only: bool,
        connections: RwSignal<HashMap<String, Connection>>,
    ) -> TerminalLink {
        TerminalLink(Rc::new(Inner {
            name,
            base,
            read_only,
            connections,
            view: RefCell::new(None),
            socket: RefCell::new(None),
            attempt: Cell::new(0),
            sent_size: Cell::new(None),
            pending: RefCell::new(Vec::new()),
            started: Cell::new(false),
            closed: Cell::new(false),
            on_input: RefCell::new(None),
            observer: RefCell::new(None),
        }))
    }

    fn set_connection(&self, connection: Connection) {
        let name = self.0.name.clone();
        self.0.connections.try_update(|all| {
            all.insert(name, connection);
        });
    }

    /// Draws the terminal in `element` and connects, once.
    fn start(&self, element: web_sys::HtmlElement) {
        if self.0.started.replace(true) {
            return;
        }
        self.set_connection(Connection::Connecting);
        let weak = Rc::downgrade(&self.0);
        let on_input = Closure::<dyn FnMut(String)>::new(move |data: String| {
            if let Some(inner) = weak.upgrade() {
                TerminalLink(inner).send(&TerminalInput::Input { data });
            }
        });
        let this = self.clone();
        spawn_local(async move {
            let view = match glue::open_terminal(&element, &on_input, this.0.read_only).await {
                Ok(view) => view,
                Err(error) => {
                    leptos::logging::warn!("the terminal did not load: {error}");
                    return;
                }
            };
            *this.0.on_input.borrow_mut() = Some(on_input);
            if this.0.closed.get() {
                view.dispose();
                return;
            }
            *this.0.view.borrow_mut() = Some(view);
            this.observe_size(&element);
            this.connect();
        });
    }

    /// Fits the grid whenever the element's size changes (a dragged split, a
    /// window resize, the tab shown again) and tells the shell.
    fn observe_size(&self, element: &web_sys::HtmlElement) {
        let weak = Rc::downgrade(&self.0);
        let callback = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                TerminalLink(inner).fit();
            }
        });
        if let Ok(observer) = web_sys::ResizeObserver::new(callback.as_ref().unchecked_ref()) {
            observer.observe(element);
            *self.0.observer.borrow_mut() = Some((observer, callback));
        }
    }

    fn connect(&self) {
        if self.0.closed.get() {
            return;
        }
        let Some(base) = self.0.base.get_untracked() else {
            self.retry();
            return;
        };
        let socket = match WebSocket::new(&format!("{base}{}", self.0.name)) {
            Ok(socket) => socket,
            Err(_) => {
                self.retry();
                return;
            }
        };
        socket.set_binary_type(BinaryType::Arraybuffer);
        let weak = Rc::downgrade(&self.0);
        let on_open = Closure::<dyn FnMut(JsValue)>::new({
            let weak = weak.clone();
            move |_| {
                if let Some(inner) = weak.upgrade() {
                    let link = TerminalLink(inner);
                    link.0.attempt.set(0);
                    link.0.sent_size.set(None);
                    // The gateway replays the tab's scroll-back next.
                    if let Some(view) = link.0.view.borrow().as_ref() {
                        view.reset();
                    }
                    link.set_connection(Connection::Open);
                    link.fit();
                    link.flush_pending();
                }
            }
        });
        let on_message = Closure::<dyn FnMut(JsValue)>::new({
            let weak = weak.clone();
            move |event: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    TerminalLink(inner).receive(event.unchecked_into());
                }
            }
        });
        let on_close = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if let Some(inner) = weak.upgrade() {
                let link = TerminalLink(inner);
                link.0.socket.borrow_mut().take();
                link.retry();
            }
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let previous = self.0.socket.replace(Some(Socket {
            socket,
            _callbacks: vec![on_open, on_message, on_close],
        }));
        if let Some(previous) = previous {
            previous.shut();
        }
    }

    /// Connects again after the back-off.
    fn retry(&self) {
        if self.0.closed.get() {
            return;
        }
        self.set_connection(Connection::Reconnecting);
        let attempt = self.0.attempt.get();
        self.0.attempt.set(attempt.saturating_add(1));
        let weak = Rc::downgrade(&self.0);
        let reconnect = move || {
            if let Some(inner) = weak.upgrade() {
                TerminalLink(inner).connect();
            }
        };
        set_timeout(reconnect, reconnect_delay(attempt));
    }

    fn receive(&self, event: MessageEvent) {
        let data = event.data();
        let view = self.0.view.borrow();
        let Some(view) = view.as_ref() else { return };
        if let Some(buffer) = data.dyn_ref::<js_sys::ArrayBuffer>() {
            view.write(&js_sys::Uint8Array::new(buffer));
        } else if let Some(text) = data.as_string() {
            match serde_json::from_str::<TerminalNotice>(&text) {
                Ok(TerminalNotice::Exited { message }) => {
                    view.write_text(&format!("\r\n[{message}]\r\n"));
                }
                Ok(TerminalNotice::Refused { message }) => {
                    leptos::logging::warn!("the terminal refused a frame: {message}");
                }
                Err(_) => {}
            }
        }
    }

    fn send(&self, input: &TerminalInput) {
        if self.0.read_only {
            return;
        }
        let Ok(text) = serde_json::to_string(input) else {
            return;
        };
        if let Some(socket) = self.0.socket.borrow().as_ref()
            && socket.socket.ready_state() == WebSocket::OPEN
        {
            let _ = socket.socket.send_with_str(&text);
            return;
        }
        let mut pending = self.0.pending.borrow_mut();
        if pending.len() < MAX_PENDING_INPUTS {
            pending.push(text);
        }
    }

    /// Sends the input typed before the socket opened, in order.
    fn flush_pending(&self) {
        let pending = std::mem::take(&mut *self.0.pending.borrow_mut());
        if let Some(socket) = self.0.socket.borrow().as_ref() {
            for text in pending {
                let _ = socket.socket.send_with_str(&text);
            }
        }
    }

    /// Fits the grid and sends the size when it changed.
    fn fit(&self) {
        let size = match self.0.view.borrow().as_ref() {
            Some(view) => view.fit(),
            None => return,
        };
        let (Some(&cols), Some(&rows)) = (size.first(), size.get(1)) else {
            return;
        };
        if cols == 0 || rows == 0 || self.0.sent_size.get() == Some((cols, rows)) {
            return;
        }
        let open = self
            .0
            .socket
            .borrow()
            .as_ref()
            .is_some_and(|socket| socket.socket.ready_state() == WebSocket::OPEN);
        if open {
            self.0.sent_size.set(Some((cols, rows)));
            // Sizes are sent even read-only: they change nothing in the shell's
            // input, and a viewer never has a terminal anyway.
            if let Some(socket) = self.0.socket.borrow().as_ref()
                && let Ok(text) = serde_json::to_string(&TerminalInput::Resize { cols, rows })
            {
                let _ = socket.socket.send_with_str(&text);
            }
        }
    }

    fn fit_and_focus(&self) {
        let weak = Rc::downgrade(&self.0);
        let later = move || {
            if let Some(inner) = weak.upgrade() {
                let link = TerminalLink(inner);
                link.fit();
                if let Some(view) = link.0.view.borrow().as_ref() {
                    view.focus();
                }
            }
        };
        request_animation_frame(later);
    }

    fn close(&self) {
        self.0.closed.set(true);
        if let Some(socket) = self.0.socket.borrow_mut().take() {
            socket.shut();
        }
        if let Some((observer, _)) = self.0.observer.borrow_mut().take() {
            observer.disconnect();
        }
        if let Some(view) = self.0.view.borrow_mut().take() {
            view.dispose();
        }
    }
}
