//! Server-sent event streams through the browser's `EventSource`, kept connected.
//!
//! The browser reconnects an `EventSource` by itself after a dropped connection and
//! sends `Last-Event-ID`, so most outages heal without help. It gives up for good
//! only when a reconnect is answered with an error status; then this module opens a
//! fresh `EventSource` after a growing delay, asking the caller for the URL again so
//! a session stream can resume with `?after=<last seq>`. Callers learn about every
//! (re)connection through [`StreamState`] and parse the `data` of each message
//! themselves; this module knows nothing about what the events mean.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use leptos::prelude::{TimeoutHandle, set_timeout_with_handle};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Event, EventSource, MessageEvent};

/// `EventSource.readyState` once the browser has stopped reconnecting by itself.
const READY_STATE_CLOSED: u16 = 2;
/// The first and the longest pause before a fresh `EventSource` replaces a closed one.
const FIRST_RETRY_DELAY_MS: u64 = 1_000;
const MAX_RETRY_DELAY_MS: u64 = 15_000;

/// Where a stream's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    Connecting,
    /// Connected. `reconnected` is true for every connection after the first, when
    /// anything sent while the stream was down may have been missed.
    Open {
        reconnected: bool,
    },
    /// The connection dropped; the browser or this module is retrying.
    Reconnecting,
}

/// A live event stream. Dropping it closes the connection and stops retrying.
pub struct EventStream {
    shared: Rc<Shared>,
}

struct Shared {
    url: Box<dyn Fn() -> String>,
    on_message: Box<dyn Fn(String)>,
    on_state: Box<dyn Fn(StreamState)>,
    connection: RefCell<Connection>,
}

#[derive(Default)]
struct Connection {
    source: Option<EventSource>,
    handlers: Option<Handlers>,
    has_opened: bool,
    failures: u32,
    retry: Option<TimeoutHandle>,
    stopped: bool,
}

/// The JavaScript callbacks of the current `EventSource`; kept so they live exactly
/// as long as the source that calls them.
struct Handlers {
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl EventStream {
    /// Connects to `url()` and keeps the stream connected until dropped.
    pub fn connect(
        url: impl Fn() -> String + 'static,
        on_message: impl Fn(String) + 'static,
        on_state: impl Fn(StreamState) + 'static,
    ) -> EventStream {
        let shared = Rc::new(Shared {
            url: Box::new(url),
            on_message: Box::new(on_message),
            on_state: Box::new(on_state),
            connection: RefCell::new(Connection::default()),
        });
        open(&shared);
        EventStream { shared }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let mut connection = self.shared.connection.borrow_mut();
        connection.stopped = true;
        if let Some(retry) = connection.retry.take() {
            retry.clear();
        }
        close_source(&mut connection);
    }
}

fn open(shared: &Rc<Shared>) {
    let url = (shared.url)();
    (shared.on_state)(StreamState::Connecting);
    let source = match EventSource::new(&url) {
        Ok(source) => source,
        Err(error) => {
            leptos::logging::warn!("could not open an event stream to {url}: {error:?}");
            schedule_retry(shared);
            return;
        }
    };

    // The callbacks hold the shared state weakly: the state owns them, and a strong
    // reference back would keep a dropped stream alive forever.
    let weak = Rc::downgrade(shared);
    let on_open = Closure::<dyn FnMut(Event)>::new({
        let weak = weak.clone();
        move |_: Event| with_shared(&weak, handle_open)
    });
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let weak = weak.clone();
        move |event: MessageEvent| {
            if let (Some(shared), Some(data)) = (weak.upgrade(), event.data().as_string()) {
                (shared.on_message)(data);
            }
        }
    });
    let on_error =
        Closure::<dyn FnMut(Event)>::new(move |_: Event| with_shared(&weak, handle_error));
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));

    let mut connection = shared.connection.borrow_mut();
    close_source(&mut connection);
    connection.source = Some(source);
    connection.handlers = Some(Handlers {
        _on_open: on_open,
        _on_message: on_message,
        _on_error: on_error,
    });
}

fn with_shared(weak: &Weak<Shared>, handle: fn(&Rc<Shared>)) {
    if let Some(shared) = weak.upgrade() {
        handle(&shared);
    }
}

fn handle_open(shared: &Rc<Shared>) {
    let reconnected = {
        let mut connection = shared.connection.borrow_mut();
        let reconnected = connection.has_opened;
        connection.has_opened = true;
        connection.failures = 0;
        reconnected
    };
    (shared.on_state)(StreamState::Open { reconnected });
}

fn handle_error(shared: &Rc<Shared>) {
    let closed = {
        let connection = shared.connection.borrow();
        connection
            .source
            .as_ref()
            .is_some_and(|source| source.ready_state() == READY_STATE_CLOSED)
    };
    (shared.on_state)(StreamState::Reconnecting);
    // The closed source is replaced from the retry timer, not from here: this runs
    // inside one of the source's own callbacks, which must outlive the call.
    if closed {
        schedule_retry(shared);
    }
}

fn schedule_retry(shared: &Rc<Shared>) {
    let mut connection = shared.connection.borrow_mut();
    if connection.stopped {
        return;
    }
    let delay = FIRST_RETRY_DELAY_MS
        .saturating_mul(1 << connection.failures.min(4))
        .min(MAX_RETRY_DELAY_MS);
    connection.failures += 1;
    let weak = Rc::downgrade(shared);
    let retry = set_timeout_with_handle(
        move || {
            if let Some(shared) = weak.upgrade() {
                let stopped = {
                    let mut connection = shared.connection.borrow_mut();
                    connection.retry = None;
                    connection.stopped
                };
                if !stopped {
                    open(&shared);
                }
            }
        },
        Duration::from_millis(delay),
    );
    connection.retry = retry.ok();
}

fn close_source(connection: &mut Connection) {
    if let Some(source) = connection.source.take() {
        source.set_onopen(None);
        source.set_onmessage(None);
        source.set_onerror(None);
        source.close();
    }
    connection.handlers = None;
}
