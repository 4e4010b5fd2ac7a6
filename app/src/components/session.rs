//! The session page (`/sessions/:id`): header, then the panels (`panels`), the
//! first of which is the chat: live timeline, queue and composer, with the
//! session's repository beside it when it has one (`repo`).
//!
//! [`SessionPage`] re-creates [`SessionView`] whenever the id in the URL changes, so
//! each session starts from a fresh [`Timeline`] and its own event stream. The view
//! folds the stream into the timeline through `Timeline::apply` and hands the signal to
//! the child components, which only read it.

mod agent_picker;
mod composer;
mod header;
mod panels;
mod prompt_queue;
mod question;
mod repo;
mod spend;
mod timeline;
mod tool_call;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use nightshift_protocol::events::SessionEvent;
use send_wrapper::SendWrapper;

use crate::api;
use crate::components::session_access::SessionAccessState;
use crate::sse::{EventStream, StreamState};
use crate::state::Timeline;
use crate::store::SessionsStore;

use composer::Composer;
use header::SessionHeader;
use panels::SessionPanels;
use prompt_queue::PromptQueueView;
use repo::{ReconnectBanner, RepoAside};
use timeline::TimelineView;

/// How long incoming events are gathered before the timeline is updated once for all
/// of them. Replaying a long history then costs one render instead of thousands.
const EVENT_BATCH_DELAY: Duration = Duration::from_millis(16);
/// How close to the bottom (in pixels) still counts as "at the bottom" for following
/// new output.
const STICK_TO_BOTTOM_SLACK_PX: i32 = 48;

#[component]
pub fn SessionPage() -> impl IntoView {
    let params = use_params_map();
    let session_id = Memo::new(move |_| params.with(|params| params.get("id").unwrap_or_default()));
    move || view! { <SessionView session_id=session_id.get()/> }
}

/// Everything the children of the session view share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionContext {
    pub session_id: StoredValue<String>,
    pub timeline: RwSignal<Timeline>,
    pub stream: RwSignal<StreamState>,
    /// The last failed action (sending, cancelling, aborting), shown by the composer.
    pub action_error: RwSignal<Option<String>>,
    /// The user's role here and who else is watching.
    pub access: SessionAccessState,
}

#[component]
fn SessionView(session_id: String) -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let context = SessionContext {
        session_id: StoredValue::new(session_id.clone()),
        timeline: RwSignal::new(Timeline::default()),
        stream: RwSignal::new(StreamState::Connecting),
        action_error: RwSignal::new(None),
        access: SessionAccessState::start(&session_id),
    };
    // Deeper components (question cards) reach the session through context.
    provide_context(context);
    let missing = RwSignal::new(false);
    let session_id_for_panels = session_id.clone();
    let stream = follow_events(context);

    // The session record (title, status, error) and the queue snapshot load in
    // parallel with the event stream; the stream alone would get there too, these
    // just make the first paint complete sooner.
    {
        let session_id = session_id.clone();
        let stream = stream.clone();
        spawn_local(async move {
            match api::get_session(&session_id).await {
                Ok(session) => store.remember(session),
                Err(error) if error.is_not_found() => {
                    missing.set(true);
                    stream.borrow_mut().take();
                }
                Err(error) => context.action_error.set(Some(error.to_string())),
            }
        });
    }
    spawn_local(async move {
        if let Ok(answer) = api::list_messages(&session_id).await {
            context
                .timeline
                .update(|timeline| timeline.merge_messages(&answer.messages));
        }
    });
    let stream = SendWrapper::new(stream);
    on_cleanup(move || drop(stream.borrow_mut().take()));

    let scroller = NodeRef::<Div>::new();
    let stick_to_bottom = StoredValue::new(true);
    Effect::new(move |_| {
        context.timeline.track();
        if stick_to_bottom.get_value() {
            request_animation_frame(move || {
                if let Some(element) = scroller.get_untracked() {
                    element.set_scroll_top(element.scroll_height());
                }
            });
        }
    });
    let on_scroll = move |_| {
        if let Some(element) = scroller.get_untracked() {
            let distance = element.scroll_height() - element.scroll_top() - element.client_height();
            stick_to_bottom.set_value(distance < STICK_TO_BOTTOM_SLACK_PX);
        }
    };

    view! {
        <Show when=move || !missing.get() fallback=|| view! { <MissingSession/> }>
            <section class="session" data-testid="session-view">
                <SessionHeader context=context/>
                <ReconnectBanner context=context/>
                <SessionPanels session_id=session_id_for_panels.clone()>
                    <div class="chat-split">
                        <div class="chat-split__chat">
                            <div class="session__scroll" node_ref=scroller on:scroll=on_scroll>
                                <TimelineView context=context/>
                            </div>
                            <div class="session__dock">
                                <PromptQueueView context=context/>
                                <Composer context=context/>
                            </div>
                        </div>
                        <RepoAside context=context/>
                    </div>
                </SessionPanels>
            </section>
        </Show>
    }
}

/// Opens the session's event stream. Events are parsed, gathered for
/// [`EVENT_BATCH_DELAY`] and applied to the timeline together; `apply` drops any the
/// timeline has already seen. A fresh connection (after the browser gave up
/// reconnecting by itself) resumes after the last event applied.
fn follow_events(context: SessionContext) -> Rc<RefCell<Option<EventStream>>> {
    let pending: Rc<RefCell<Vec<SessionEvent>>> = Rc::default();
    let session_id = context.session_id.get_value();
    let stream = EventStream::connect(
        move || {
            let after = context
                .timeline
                .try_with_untracked(Timeline::last_seq)
                .unwrap_or(0);
            api::session_events_url(&session_id, after)
        },
        move |data| {
            // Presence is not part of the session's history; it never reaches the timeline.
            if context.access.absorb(&data) {
                return;
            }
            let event = match serde_json::from_str::<SessionEvent>(&data) {
                Ok(event) => event,
                Err(error) => {
                    leptos::logging::warn!("ignoring a session event: {error}");
                    return;
                }
            };
            let first_pending = {
                let mut pending = pending.borrow_mut();
                pending.push(event);
                pending.len() == 1
            };
            if first_pending {
                let pending = pending.clone();
                set_timeout(
                    move || {
                        let events = std::mem::take(&mut *pending.borrow_mut());
                        context.timeline.try_update(|timeline| {
                            for event in events {
                                timeline.apply(event);
                            }
                        });
                    },
                    EVENT_BATCH_DELAY,
                );
            }
        },
        move |state| context.stream.set(state),
    );
    Rc::new(RefCell::new(Some(stream)))
}

/// Makes the running memo or effect re-run when `memo` changes. It reads the memo
/// rather than calling `track()`: memos are lazy, and one that has never run has not
/// subscribed to its own sources yet, so only tracking it would never fire.
pub(crate) fn depend_on<T: PartialEq + Send + Sync + 'static>(memo: Memo<T>) {
    memo.with(|_| ());
}

#[component]
fn MissingSession() -> impl IntoView {
    view! {
        <section class="empty-state" data-testid="session-missing">
            <div class="empty-state__card">
                <h1>"Session not found"</h1>
                <p>"It may have been created on another server. Pick a session on the left."</p>
            </div>
        </section>
    }
}
