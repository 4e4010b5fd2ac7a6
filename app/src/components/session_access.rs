//! What the signed-in user may do in the open session and who else is watching it:
//! the session's `my_role`, owner and key source (`GET /api/sessions/{id}`), and its
//! viewers (`GET /api/sessions/{id}/presence`, then `presence_changed` events from
//! the session's own stream).
//!
//! The header shows it ([`SessionAccessBar`]); the composer reads
//! [`SessionAccessState::read_only`] to lock itself for viewers.
//!
//! Being listed is a lease the server keeps only while it hears heartbeats: while
//! the session page is open and visible it sends `POST .../presence` every
//! [`HEARTBEAT`]; when the page is hidden, unloaded or left it sends a keepalive
//! `DELETE .../presence` so the others see it go at once.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;

use nightshift_protocol::auth::{LlmSource, Viewer};

use crate::account::access::{SessionAccess, llm_source_label, presence_update, role_label};
use crate::api;
use crate::components::presence::PresenceAvatars;
use crate::components::share_dialog::ShareDialog;
use crate::store::SessionsStore;

/// How often an open, visible session page renews its presence lease.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Whether the page is visible (`document.hidden` is false); true when unknown.
fn page_visible() -> bool {
    let Some(window) = web_sys::window() else {
        return true;
    };
    let document = js_sys::Reflect::get(&window, &wasm_bindgen::JsValue::from_str("document"));
    let hidden = document
        .and_then(|document| js_sys::Reflect::get(&document, &"hidden".into()))
        .ok()
        .and_then(|hidden| hidden.as_bool());
    hidden != Some(true)
}

/// Keeps the caller listed as watching `session_id` while this component lives and
/// the page is visible (see the module docs).
fn keep_presence(session_id: &str) {
    let id = session_id.to_owned();
    let beat = {
        let id = id.clone();
        move || {
            if page_visible() {
                let id = id.clone();
                spawn_local(async move {
                    let _ = api::account::presence_heartbeat(&id).await;
                });
            }
        }
    };
    beat();
    let interval = set_interval_with_handle(beat.clone(), HEARTBEAT).ok();
    let visibility = window_event_listener_untyped("visibilitychange", {
        let id = id.clone();
        move |_| {
            if page_visible() {
                beat();
            } else {
                api::account::leave_presence(&id);
            }
        }
    });
    let hide = window_event_listener_untyped("pagehide", {
        let id = id.clone();
        move |_| api::account::leave_presence(&id)
    });
    let id = SendWrapper::new(id);
    on_cleanup(move || {
        if let Some(interval) = interval {
            interval.clear();
        }
        visibility.remove();
        hide.remove();
        api::account::leave_presence(&id);
    });
}

#[derive(Clone, Copy)]
pub struct SessionAccessState {
    /// The session's access fields, read again whenever its status changes (the key
    /// source is that of the latest turn; the sessions list follows status live).
    /// `None` while loading or when they could not be read.
    access: LocalResource<Option<SessionAccess>>,
    pub viewers: RwSignal<Vec<Viewer>>,
}

impl std::fmt::Debug for SessionAccessState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAccessState").finish_non_exhaustive()
    }
}

impl SessionAccessState {
    /// Loads the session's access fields and its current viewers.
    pub fn start(session_id: &str) -> SessionAccessState {
        let id = session_id.to_owned();
        keep_presence(&id);
        let store = use_context::<SessionsStore>();
        let access = LocalResource::new({
            let id = id.clone();
            move || {
                if let Some(store) = store {
                    store
                        .list
                        .with(|list| list.get(&id).map(|session| session.status));
                }
                let id = id.clone();
                async move { api::account::session_access(&id).await.ok() }
            }
        });
        let viewers = RwSignal::new(Vec::new());
        spawn_local(async move {
            // The stream's own presence events may already have arrived; they are newer.
            if let Ok(current) = api::account::presence(&id).await {
                viewers.try_update(|shown| {
                    if shown.is_empty() {
                        *shown = current;
                    }
                });
            }
        });
        SessionAccessState { access, viewers }
    }

    /// The session's access fields once loaded (tracked).
    fn with_access<T>(self, read: impl FnOnce(Option<&SessionAccess>) -> T) -> T {
        read(self.access.get().flatten().as_ref())
    }

    /// Takes a `presence_changed` event from the session stream; answers whether the
    /// message was one.
    pub fn absorb(self, data: &str) -> bool {
        match presence_update(data) {
            Some(viewers) => {
                self.viewers.try_set(viewers);
                true
            }
            None => false,
        }
    }

    /// True for a viewer, who may watch but not prompt or abort (tracked). Until the
    /// session has loaded the controls stay enabled; the server decides anyway.
    pub fn read_only(self) -> bool {
        self.with_access(|access| access.is_some_and(SessionAccess::read_only))
    }

    /// The user's role here once loaded (tracked); `None` until then.
    pub fn role(self) -> Option<nightshift_protocol::roles::SessionRole> {
        self.with_access(|access| access.map(SessionAccess::role))
    }
}

/// The header's access row: which key the agent uses, who is watching, and for those
/// who may share, the Share button.
#[component]
pub fn SessionAccessBar(state: SessionAccessState, session_id: String) -> impl IntoView {
    let open = RwSignal::new(false);
    let can_share =
        move || state.with_access(|access| access.is_some_and(|access| access.role().can_share()));
    // The pill names the user's role; its tooltip names the owner.
    let role = move || {
        state.with_access(|access| {
            access.map(|access| {
                let owner = access
                    .owner
                    .as_ref()
                    .map(|owner| format!("Owned by {}", owner.name))
                    .unwrap_or_default();
                (access.role().as_str(), role_label(access.role()), owner)
            })
        })
    };
    // Known once a turn has run; before that there is nothing to show.
    let source = move || {
        state.with_access(|access| {
            access
                .and_then(|access| access.llm_source)
                .map(LlmSource::as_str)
        })
    };
    let session_id = StoredValue::new(session_id);
    view! {
        <div class="access-bar" data-testid="session-access">
            {move || source().map(|source| view! {
                <span class="key-source" data-testid="llm-source" data-source=source
                    title="Which LLM key this session's turns use">
                    {llm_source_label(source)}
                </span>
            })}
            {move || role().map(|(id, label, owner)| view! {
                <span class="role-pill" data-testid="my-role" data-role=id title=owner>{label}</span>
            })}
            <PresenceAvatars viewers=state.viewers/>
            <Show when=can_share>
                <button class="button button--small" data-testid="share-open" on:click=move |_| open.set(true)>
                    "Share"
                </button>
            </Show>
            <Show when=move || open.get()>
                <ShareDialog session_id=session_id.get_value() on_close=move || open.set(false)/>
            </Show>
        </div>
    }
}
