//! The queued prompts above the composer, each with a Cancel button.

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
    let full_text = prompt.content.clone();
    view! {
        <div class="queued-prompt" data-testid="queued-prompt" data-message-id=prompt.message_id>
            <span class="queued-prompt__icon" aria-hidden="true"></span>
            <span class="queued-prompt__text" title=full_text>{prompt.content}</span>
            <button
                class="button button--ghost button--small"
                data-testid="cancel-prompt"
                disabled=move || cancelling.get()
                on:click=cancel
                title="Remove this prompt from the queue"
            >
                "Cancel"
            </button>
        </div>
    }
}
