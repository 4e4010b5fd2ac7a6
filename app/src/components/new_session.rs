//! Starting a session: the "New session" button and the agent, model and GitHub
//! repository (`components::repo_picker`) the new session starts with, chosen next
//! to it.
//!
//! The choice is one value for the signed-in layout (the sidebar's button and the
//! empty state's share it), provided as context by [`NewSessionChoice::provide`] and
//! sent with `POST /api/sessions`; it can be changed later in the session's header.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use nightshift_protocol::api::{AgentKind, CreateSessionRequest, ModelInfo};

use crate::api;
use crate::components::repo_picker::RepoPickerView;
use crate::state::repo_picker::RepoPicker;
use crate::store::{SessionsStore, session_href};

/// The layout's choice for new sessions, and the models offered (loaded once).
#[derive(Clone, Copy)]
pub struct NewSessionChoice {
    pub request: RwSignal<CreateSessionRequest>,
    pub models: LocalResource<Vec<ModelInfo>>,
    /// The repository to work on, if any (sent as the request's `repo`).
    pub picker: RwSignal<RepoPicker>,
}

impl NewSessionChoice {
    /// Creates the choice, starts loading the models and provides it as context.
    pub fn provide() -> NewSessionChoice {
        let choice = NewSessionChoice {
            request: RwSignal::new(CreateSessionRequest::default()),
            models: LocalResource::new(|| async { api::list_models().await.unwrap_or_default() }),
            picker: RwSignal::new(RepoPicker::default()),
        };
        provide_context(choice);
        choice
    }
}

#[component]
pub fn NewSessionOptions() -> impl IntoView {
    let NewSessionChoice {
        request: choice,
        models,
        ..
    } = expect_context::<NewSessionChoice>();
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
                {move || models.get().unwrap_or_default().into_iter().map(|model| view! {
                    <option value=model.id.clone()>{model.name.clone()}</option>
                }).collect_view()}
            </select>
        </div>
        <RepoPickerView/>
    }
}

/// Creates a session (`POST /api/sessions` with the layout's [`NewSessionChoice`])
/// and opens it. Used by the sidebar and by the empty state.
#[component]
pub fn NewSessionButton(
    #[prop(into)] class: String,
    test_id: &'static str,
    #[prop(optional)] label: Option<&'static str>,
) -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let choice = expect_context::<NewSessionChoice>();
    let navigate = use_navigate();
    let creating = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let create = move |_| {
        if creating.get_untracked() {
            return;
        }
        error.set(None);
        let mut request = choice.request.get_untracked();
        match choice.picker.with_untracked(RepoPicker::choice) {
            Ok(repo) => request.repo = repo,
            Err(problem) => {
                error.set(Some(problem));
                return;
            }
        }
        creating.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            match store.create_session(&request).await {
                Ok(id) => navigate(&session_href(&id), Default::default()),
                Err(failure) => error.set(Some(failure.to_string())),
            }
            creating.set(false);
        });
    };
    view! {
        <button class=class data-testid=test_id on:click=create disabled=move || creating.get()>
            <span class="button__plus" aria-hidden="true">"+"</span>
            {move || if creating.get() { "Creating…" } else { label.unwrap_or("New session") }}
        </button>
        {move || error.get().map(|error| view! {
            <p class="inline-error" data-testid="new-session-error">{error}</p>
        })}
    }
}
