//! The queued prompts above the composer, each with Edit and Cancel buttons. Editing
//! rewrites the prompt in place (`PATCH .../messages/{id}`) while it is still queued.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::SessionContext;
use crate::api;
use crate::state::QueuedPrompt;

#[component]
pub fn PromptQueueView(context: SessionContext) -> impl IntoView {
    let prompts = Memo::new(move |_| {
        context
            .timeline
            .with(|timeline| timeline.queue().prompts().to_vec())
    });
    view! {
        <Show when=move || prompts.with(|prompts| !prompts.is_empty())>
            <div class="queue" data-testid="queue">
                <div class="queue__title">
                    "Queued" <span class="queue__count">{move || prompts.with(Vec::len)}</span>
                </div>
                <For
                    each=move || prompts.get()
                    key=|prompt| prompt.message_id.clone()
                    children=move |prompt| view! { <QueuedPromptRow context=context prompt=prompt/> }
                />
            </div>
        </Show>
    }
}

#[component]
fn QueuedPromptRow(context: SessionContext, prompt: QueuedPrompt) -> impl IntoView {
    let cancelling = RwSignal::new(false);
    let message_id = prompt.message_id.clone();
    let cancel = move |_| {
        cancelling.set(true);
        let session_id = context.session_id.get_value();
        let message_id = message_id.clone();
        spawn_local(async move {
            match api::cancel_message(&session_id, &message_id).await {
                Ok(()) => context
                    .timeline
                    .update(|timeline| timeline.cancel_accepted(&message_id)),
                Err(error) => {
                    context
                        .action_error
                        .set(Some(format!("Could not cancel: {error}")));
                    cancelling.set(false);
                }
            }
        });
    };
    let editing = RwSignal::new(None::<String>);
    let saving = RwSignal::new(false);
    let save = {
        let message_id = prompt.message_id.clone();
        move || {
            let Some(content) = editing.get_untracked() else {
                return;
            };
            if content.trim().is_empty() || saving.get_untracked() {
                return;
            }
            saving.set(true);
            let session_id = context.session_id.get_value();
            let message_id = message_id.clone();
            spawn_local(async move {
                match api::edit_message(&session_id, &message_id, content).await {
                    Ok(message) => {
                        context
                            .timeline
                            .update(|timeline| timeline.merge_messages(&[message]));
                        editing.set(None);
                    }
                    Err(error) => context
                        .action_error
                        .set(Some(format!("Could not edit: {error}"))),
                }
                saving.set(false);
            });
        }
    };
    let save_on_click = save.clone();
    // Rows are keyed by id, so an edit (here or by anyone else) changes the text of
    // the existing row: it is read from the queue, not captured.
    let content = {
        let message_id = prompt.message_id.clone();
        let initial = prompt.content.clone();
        Memo::new(move |_| {
            context.timeline.with(|timeline| {
                timeline
                    .queue()
                    .prompts()
                    .iter()
                    .find(|queued| queued.message_id == message_id)
                    .map(|queued| queued.content.clone())
                    .unwrap_or_else(|| initial.clone())
            })
        })
    };
    view! {
        <div class="queued-prompt" data-testid="queued-prompt" data-message-id=prompt.message_id>
            <span class="queued-prompt__icon" aria-hidden="true"></span>
            {move || match editing.get() {
                None => {
                    view! { <span class="queued-prompt__text" data-testid="queued-prompt-text" title=move || content.get()>{move || content.get()}</span> }.into_any()
                }
                Some(value) => {
                    let save = save.clone();
                    view! {
                        <textarea
                            class="queued-prompt__editor"
                            data-testid="queued-prompt-editor"
                            rows="2"
                            prop:value=value
                            on:input=move |event| editing.set(Some(event_target_value(&event)))
                            on:keydown=move |event: leptos::ev::KeyboardEvent| {
                                if event.key() == "Enter" && !event.shift_key() {
                                    event.prevent_default();
                                    save();
                                } else if event.key() == "Escape" {
                                    editing.set(None);
                                }
                            }
                        ></textarea>
                    }
                    .into_any()
                }
            }}
            <Show
                when=move || editing.with(Option::is_some)
                fallback=move || {
                    view! {
                        <button
                            class="button button--ghost button--small"
                            data-testid="edit-prompt"
                            disabled=move || context.access.read_only()
                            on:click=move |_| editing.set(Some(content.get_untracked()))
                            title="Change this prompt before it runs"
                        >
                            "Edit"
                        </button>
                    }
                }
            >
                {
                    let save = save_on_click.clone();
                    view! {
                        <button
                            class="button button--primary button--small"
                            data-testid="save-prompt"
                            disabled=move || saving.get()
                            on:click=move |_| save()
                        >
                            "Save"
                        </button>
                    }
                }
            </Show>
            <button
                class="button button--ghost button--small"
                data-testid="cancel-prompt"
                disabled=move || cancelling.get() || context.access.read_only()
                on:click=cancel
                title="Remove this prompt from the queue"
            >
                "Cancel"
            </button>
        </div>
    }
}
