//! The session header: title, status badge with what a waiting session is doing
//! (`state::session_phase`), "Wake" for an asleep one, connection state, the agent settings
//! (agent, model, permission mode, usage totals), the Abort button, and for the
//! session's owner or a team admin Archive and Delete; an archived session's banner
//! says why it takes no more prompts.
//!
//! On a phone-sized screen everything but the title and the badge folds into a menu
//! that the `⋯` button opens; the stylesheet decides when, so the header keeps one
//! set of controls for both layouts.

use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::api::SessionStatus;
use nightshift_protocol::auth::SessionRole;

use super::SessionContext;
use super::agent_picker::AgentPicker;
use crate::api;
use crate::components::StatusBadge;
use crate::components::session_access::SessionAccessBar;
use crate::components::sidebar::UNTITLED;
use crate::sse::StreamState;
use crate::state::session_phase::{offers_wake, waiting_note};
use crate::store::SessionsStore;

#[component]
pub fn SessionHeader(context: SessionContext) -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let session = Memo::new(move |_| {
        context
            .session_id
            .with_value(|id| store.list.with(|list| list.get(id).cloned()))
    });
    let title = move || {
        session.with(|session| match session {
            Some(session) if !session.title.trim().is_empty() => session.title.clone(),
            Some(_) => UNTITLED.to_owned(),
            None => "Loading…".to_owned(),
        })
    };
    // The session's own stream replays every status change in order, so its latest
    // one is current; before any arrives, the sessions list knows the status.
    let status = Signal::derive(move || {
        context
            .timeline
            .with(|timeline| timeline.status())
            .or_else(|| session.with(|session| session.as_ref().map(|session| session.status)))
    });
    let turn_running = Memo::new(move |_| {
        context
            .timeline
            .with(|timeline| timeline.has_running_turn())
    });
    let aborting = RwSignal::new(false);
    let can_abort = move || {
        !aborting.get() && (turn_running.get() || status.get() == Some(SessionStatus::Running))
    };

    let abort = move |_| {
        aborting.set(true);
        let session_id = context.session_id.get_value();
        spawn_local(async move {
            if let Err(error) = api::abort(&session_id).await {
                context
                    .action_error
                    .set(Some(format!("Could not abort: {error}")));
            }
            aborting.set(false);
        });
    };

    // Its owner or a team admin may delete it (after a confirmation).
    let can_delete = move || {
        session.with(|session| {
            session.as_ref().is_some_and(|session| {
                matches!(
                    session.my_role,
                    Some(SessionRole::Owner | SessionRole::Admin)
                )
            })
        })
    };
    let navigate = leptos_router::hooks::use_navigate();
    let delete = move |_| {
        let confirmed = web_sys::window()
            .and_then(|window| {
                window
                    .confirm_with_message(
                        "Delete this session? Its sandbox, prompts and events are removed for good.",
                    )
                    .ok()
            })
            .unwrap_or(false);
        if !confirmed {
            return;
        }
        let session_id = context.session_id.get_value();
        let navigate = navigate.clone();
        spawn_local(async move {
            match store.delete_session(session_id).await {
                Ok(()) => navigate("/", Default::default()),
                Err(error) => context
                    .action_error
                    .set(Some(format!("Could not delete the session: {error}"))),
            }
        });
    };

    let archived = move || status.get() == Some(SessionStatus::Archived);
    let archive = move |_| {
        let confirmed = web_sys::window()
            .and_then(|window| {
                window
                    .confirm_with_message(
                        "Archive this session? Its sandbox is destroyed; its history stays readable.",
                    )
                    .ok()
            })
            .unwrap_or(false);
        if !confirmed {
            return;
        }
        let session_id = context.session_id.get_value();
        spawn_local(async move {
            if let Err(error) = store.archive_session(session_id).await {
                context
                    .action_error
                    .set(Some(format!("Could not archive the session: {error}")));
            }
        });
    };

    let note = move || status.get().and_then(waiting_note);
    let waking = RwSignal::new(false);
    let can_wake = move || !waking.get() && status.get().is_some_and(offers_wake);
    let wake = move |_| {
        waking.set(true);
        let session_id = context.session_id.get_value();
        spawn_local(async move {
            if let Err(error) = api::wake(&session_id).await {
                context
                    .action_error
                    .set(Some(format!("Could not wake the session: {error}")));
            }
            waking.set(false);
        });
    };

    let menu_open = RwSignal::new(false);

    let connection = move || match context.stream.get() {
        StreamState::Connecting => ("connecting", "Connecting…"),
        StreamState::Open { .. } => ("live", "Live"),
        StreamState::Reconnecting => ("reconnecting", "Reconnecting…"),
    };
    // Shown as a banner unless the timeline already tells the same story.
    let session_error = move || {
        session
            .with(|session| session.as_ref().and_then(|session| session.error.clone()))
            .filter(|error| !context.timeline.with(|timeline| timeline.has_notice(error)))
    };

    view! {
        <header
            class="session-header"
            class:session-header--menu-open=move || menu_open.get()
            data-testid="session-header"
        >
            <div class="session-header__main">
                <h1 class="session-header__title" data-testid="session-title" title=title>{title}</h1>
                <StatusBadge status=status/>
                {move || note().map(|note| view! {
                    <span class="session-header__note" data-testid="status-note">{note}</span>
                })}
            </div>
            <button
                class="button button--ghost session-header__menu-toggle"
                data-testid="session-menu"
                aria-label="Session controls"
                aria-expanded=move || menu_open.get().to_string()
                on:click=move |_| menu_open.update(|open| *open = !*open)
            >
                "⋯"
            </button>
            <div class="session-header__side" data-testid="session-controls">
                <span class="connection" data-state=move || connection().0>
                    <span class="connection__dot"></span>
                    {move || connection().1}
                </span>
                <AgentPicker context=context/>
                <SessionAccessBar state=context.access session_id=context.session_id.get_value()/>
                <Show when=move || !context.access.read_only() && can_wake()>
                <button
                    class="button"
                    data-testid="wake"
                    on:click=wake
                    title="Restore the sandbox and reconnect the runner"
                >
                    "Wake"
                </button>
                </Show>
                <Show when=move || !context.access.read_only()>
                <button
                    class="button button--danger"
                    data-testid="abort"
                    disabled=move || !can_abort()
                    on:click=abort
                    title="Stop the running turn"
                >
                    <span class="button__stop" aria-hidden="true"></span>
                    {move || if aborting.get() { "Aborting…" } else { "Abort" }}
                </button>
                </Show>
                <Show when=move || can_delete() && !archived()>
                <button
                    class="button button--ghost"
                    data-testid="archive-session"
                    on:click=archive
                    title="Destroy the sandbox and keep the history, read-only"
                >
                    "Archive"
                </button>
                </Show>
                <Show when=can_delete>
                <button
                    class="button button--ghost"
                    data-testid="delete-session"
                    on:click=delete.clone()
                    title="Delete the session, its sandbox and its history"
                >
                    "Delete"
                </button>
                </Show>
            </div>
        </header>
        {move || session_error().map(|error| view! {
            <div class="banner banner--error" data-testid="session-error">{error}</div>
        })}
        <Show when=archived>
            <div class="banner banner--info" data-testid="archived-banner">
                "This session is archived: its sandbox was destroyed, and it cannot be \
                 resumed because no checkpoint of it is kept. Its history stays readable."
            </div>
        </Show>
    }
}
