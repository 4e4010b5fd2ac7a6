//! LLM keys: the user's own, and (for admins) the team's. A key is sent once and
//! never comes back; the list shows its last four characters.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::auth::{CreateKeyRequest, KeyInfo, KeyProvider};

use crate::account::forms::{KEY_PROVIDERS, new_llm_key};
use crate::api;
use crate::auth::Auth;
use crate::pages::{
    Choice, FormError, Listed, Panel, TextInput, choices, form_or_list_error, removal, rows, when,
};

#[component]
pub fn KeysPanel() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let error = RwSignal::new(None::<String>);
    let delete = removal(
        error,
        |id| async move { api::account::delete_key(&id).await },
    );
    // Listed again after a deletion; each form asks for a refetch after an addition.
    let keys = LocalResource::new(move || {
        delete.version().track();
        api::account::keys()
    });
    view! {
        <Panel title="LLM keys" test_id="settings-keys">
            <p class="form-note">
                "Your agent uses your key, else the team's. Keys are encrypted at rest and never shown again."
            </p>
            <KeyList keys=keys scope="user" delete=delete/>
            <KeyForm scope="user" keys=keys/>
            <Show when=move || auth.is_admin()>
                <h3 class="panel__subtitle">"Team keys"</h3>
                <KeyList keys=keys scope="team" delete=delete/>
                <KeyForm scope="team" keys=keys/>
            </Show>
            <FormError error=form_or_list_error(error, keys)/>
        </Panel>
    }
}

#[component]
fn KeyList(
    keys: Listed<KeyInfo>,
    scope: &'static str,
    delete: Action<String, ()>,
) -> impl IntoView {
    let listed = move || {
        rows(keys)
            .into_iter()
            .filter(|key| key.scope.as_str() == scope)
            .collect::<Vec<_>>()
    };
    view! {
        <ul class="key-list" data-testid=format!("key-list-{scope}")>
            <For each=listed key=|key| key.id.clone() let:key>
                <li class="key-list__item" data-testid="key-row">
                    <span class="key-list__provider">{provider_label(key.provider)}</span>
                    <span class="key-list__name">{(key.name != provider_label(key.provider)).then(|| key.name.clone())}</span>
                    <code class="key-list__last4">"…" {key.last4.clone()}</code>
                    <span class="key-list__meta">
                        {key.base_url.clone().unwrap_or_default()}
                        {(!key.models.is_empty()).then(|| format!(" · {}", key.models.join(", ")))}
                        " · added " {when(Some(key.created_at))}
                    </span>
                    <button class="button button--small button--danger" data-testid="key-delete" on:click={
                        let id = key.id.clone();
                        move |_| {
                            delete.dispatch_local(id.clone());
                        }
                    }>"Delete"</button>
                </li>
            </For>
        </ul>
    }
}

fn provider_label(provider: KeyProvider) -> &'static str {
    KEY_PROVIDERS
        .iter()
        .find(|(id, _)| *id == provider.as_str())
        .map_or("Other", |(_, label)| label)
}

#[component]
fn KeyForm(scope: &'static str, keys: Listed<KeyInfo>) -> impl IntoView {
    let provider = RwSignal::new("anthropic".to_owned());
    let api_key = RwSignal::new(String::new());
    let base_url = RwSignal::new(String::new());
    let models = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let compatible = move || provider.with(|provider| provider == "openai_compatible");
    let add = Action::new_local(move |key: &CreateKeyRequest| {
        let key = key.clone();
        async move {
            match api::account::add_key(&key).await {
                Ok(_) => {
                    api_key.set(String::new());
                    keys.refetch();
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        }
    });
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        match new_llm_key(
            scope,
            &provider.get_untracked(),
            &api_key.get_untracked(),
            &base_url.get_untracked(),
            &models.get_untracked(),
            &name.get_untracked(),
        ) {
            Ok(body) => {
                error.set(None);
                add.dispatch_local(body);
            }
            Err(problem) => error.set(Some(problem)),
        }
    };
    view! {
        <form class="form form--inline" on:submit=submit data-testid=format!("key-form-{scope}")>
            <Choice value=provider options=choices(&KEY_PROVIDERS) test_id="key-provider" class="input--short"/>
            <TextInput value=api_key test_id="key-secret" placeholder="API key" kind="password"/>
            <TextInput value=name test_id="key-name" placeholder="Name (optional)" class="input--short"/>
            <Show when=compatible>
                <TextInput value=base_url test_id="key-base-url" placeholder="Base URL, e.g. https://host/v1"/>
                <TextInput value=models test_id="key-models" placeholder="Models, comma-separated"/>
            </Show>
            <button class="button button--primary" type="submit" data-testid="key-add"
                disabled=move || add.pending().get()>
                {if scope == "team" { "Add team key" } else { "Add key" }}
            </button>
            <FormError error=error/>
        </form>
    }
}
