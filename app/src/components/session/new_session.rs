//! The agent and model a new session starts with, chosen next to the "New session"
//! button. The choice is one value for the whole page (the sidebar's button and the
//! empty state's share it) and is sent with `POST /api/sessions`; it can be changed
//! later in the session's header.

use std::cell::OnceCell;

use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::api::{AgentKind, CreateSessionRequest, ModelInfo};

use crate::api;

thread_local! {
    static CHOICE: OnceCell<(RwSignal<CreateSessionRequest>, RwSignal<Vec<ModelInfo>>)> =
        const { OnceCell::new() };
}

/// The page's choice for new sessions, and the models offered (loaded once).
pub fn new_session_choice() -> (RwSignal<CreateSessionRequest>, RwSignal<Vec<ModelInfo>>) {
    CHOICE.with(|cell| {
        *cell.get_or_init(|| {
            let choice = RwSignal::new(CreateSessionRequest::default());
            let models = RwSignal::new(Vec::new());
            spawn_local(async move {
                if let Ok(list) = api::list_models().await {
                    models.set(list);
                }
            });
            (choice, models)
        })
    })
}

/// The request a "New session" button sends.
pub fn new_session_request() -> CreateSessionRequest {
    new_session_choice().0.get_untracked()
}

#[component]
pub fn NewSessionOptions() -> impl IntoView {
    let (choice, models) = new_session_choice();
    view! {
        <div class="new-session-options" data-testid="new-session-options">
            <select
                class="agent-picker__select"
                data-testid="new-session-agent"
                title="The agent of the new session"
                prop:value=move || choice.with(|c| c.agent.unwrap_or_default().as_str())
                on:change=move |event| {
                    let agent = AgentKind::parse(&event_target_value(&event));
                    choice.update(|c| c.agent = agent);
                }
            >
                <option value="builtin">"Built-in agent"</option>
                <option value="opencode">"OpenCode"</option>
            </select>
            <select
                class="agent-picker__select"
                data-testid="new-session-model"
                title="The model of the new session"
                prop:value=move || choice.with(|c| c.model.clone().unwrap_or_default())
                on:change=move |event| {
                    let model = event_target_value(&event);
                    choice.update(|c| c.model = (!model.is_empty()).then_some(model));
                }
            >
                <option value="">"Default model"</option>
                {move || models.get().into_iter().map(|model| view! {
                    <option value=model.id.clone()>{model.name.clone()}</option>
                }).collect_view()}
            </select>
        </div>
    }
}
