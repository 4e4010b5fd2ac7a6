//! The composer: a textarea, a queue-mode selector and a Send button. Enter sends,
//! Shift+Enter starts a new line. The mode says what a prompt sent while a turn runs
//! does: `followup` (the default) runs after the current work, `steer` stops the
//! running turn and runs next, `collect` merges prompts sent within a moment of each
//! other into one. It is off, saying why, for viewers and on an archived session.

use leptos::ev::{KeyboardEvent, SubmitEvent};
use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::api::{QueueMode, SessionStatus};

use super::SessionContext;
use crate::api;
use crate::store::SessionsStore;

#[component]
pub fn Composer(context: SessionContext) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let sending = RwSignal::new(false);
    let mode = RwSignal::new(QueueMode::Followup);
    let busy = Memo::new(move |_| {
        context
            .timeline
            .with(|timeline| timeline.has_running_turn() || !timeline.queue().is_empty())
    });

    // An archived session takes no prompt (the server refuses it with
    // `session_archived`); the header's banner says why.
    let store = expect_context::<SessionsStore>();
    // A sent prompt is the moment to offer notifications (`crate::inbox`).
    let inbox = use_context::<crate::inbox::InboxStore>();
    let archived = move || {
        context.timeline.with(|timeline| timeline.status()) == Some(SessionStatus::Archived)
            || context.session_id.with_value(|id| {
                store.list.with(|list| {
                    list.get(id).is_some_and(|session| {
                        session.archived_at.is_some() || session.status == SessionStatus::Archived
                    })
                })
            })
    };
    // Viewers watch only; the server refuses their prompts too.
    let read_only = move || context.access.read_only() || archived();
    let send = move || {
        let content = draft.get_untracked();
        if content.trim().is_empty() || sending.get_untracked() || read_only() {
            return;
        }
        sending.set(true);
        context.action_error.set(None);
        // The box empties at once, so typing the next prompt can start right away;
        // a refused prompt comes back unless something new was typed meanwhile.
        draft.set(String::new());
        let session_id = context.session_id.get_value();
        let queue_mode = mode.get_untracked();
        // A steer is a one-off; the next prompt is a follow-up again unless chosen.
        if queue_mode == QueueMode::Steer {
            mode.set(QueueMode::Followup);
        }
        spawn_local(async move {
            match api::post_message(&session_id, content.clone(), queue_mode).await {
                Ok(answer) => {
                    context.timeline.update(|timeline| {
                        timeline.merge_messages(std::slice::from_ref(&answer.message))
                    });
                    if let Some(inbox) = inbox {
                        inbox.prompted.set(true);
                    }
                }
                Err(error) => {
                    context.action_error.set(Some(error.to_string()));
                    draft.update(|draft| {
                        if draft.is_empty() {
                            *draft = content;
                        }
                    });
                }
            }
            sending.set(false);
        });
    };
    let on_keydown = move |event: KeyboardEvent| {
        if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
            event.prevent_default();
            send();
        }
    };
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        send();
    };

    view! {
        <form class="composer" data-testid="composer" on:submit=on_submit>
            <textarea
                class="composer__input"
                rows="3"
                disabled=read_only
                placeholder=move || {
                    if archived() {
                        "This session is archived: it takes no more prompts."
                    } else if read_only() {
                        "You are a viewer of this session: you can watch, not prompt."
                    } else if busy.get() {
                        "Queue a follow-up… (Enter to send, Shift+Enter for a new line)"
                    } else {
                        "Describe a task… (Enter to send, Shift+Enter for a new line)"
                    }
                }
                prop:value=move || draft.get()
                on:input=move |event| draft.set(event_target_value(&event))
                on:keydown=on_keydown
            ></textarea>
            <div class="composer__bar">
                {move || context.action_error.get().map(|error| view! {
                    <p class="inline-error composer__error" data-testid="composer-error" role="alert">{error}</p>
                })}
                <span class="composer__hint" data-testid="composer-hint">{move || {
                    if archived() {
                        "Archived: read-only"
                    } else if read_only() {
                        "Read-only: ask the owner for collaborator access to prompt."
                    } else {
                        match (mode.get(), busy.get()) {
                            (QueueMode::Steer, true) => "Stops the running turn and runs next",
                            (QueueMode::Collect, _) => "Prompts sent within a moment are merged",
                            (_, true) => "Runs after the current work",
                            _ => "",
                        }
                    }
                }}</span>
                <select
                    class="composer__mode"
                    data-testid="queue-mode"
                    title="What a prompt sent while the agent works does"
                    disabled=read_only
                    prop:value=move || mode.get().as_str()
                    on:change=move |event| {
                        mode.set(QueueMode::parse(&event_target_value(&event)).unwrap_or_default())
                    }
                >
                    <option value="followup">"Follow-up"</option>
                    <option value="steer">"Steer"</option>
                    <option value="collect">"Collect"</option>
                </select>
                <button
                    class="button button--primary"
                    data-testid="send"
                    type="submit"
                    disabled=move || sending.get() || read_only() || draft.with(|draft| draft.trim().is_empty())
                >
                    {move || match (mode.get(), busy.get()) {
                        (QueueMode::Steer, true) => "Steer",
                        (_, true) => "Queue",
                        _ => "Send",
                    }}
                    <span class="button__kbd" aria-hidden="true">"↵"</span>
                </button>
            </div>
        </form>
    }
}
