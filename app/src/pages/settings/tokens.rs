//! Personal API tokens: create (name, read-only or read-write, optional expiry), shown
//! once with a copy button; list; revoke.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::auth::ApiTokenInfo;

use crate::account::forms::new_token;
use crate::api;
use crate::pages::{CopyField, FormError, Panel, TextInput, expiry, when};

#[component]
pub fn TokensPanel() -> impl IntoView {
    let tokens = RwSignal::new(Vec::<ApiTokenInfo>::new());
    let error = RwSignal::new(None::<String>);
    let reload = move || {
        spawn_local(async move {
            match api::account::tokens().await {
                Ok(list) => tokens.set(list),
                Err(failure) => error.set(Some(failure.to_string())),
            }
        })
    };
    reload();

    let name = RwSignal::new(String::new());
    let write = RwSignal::new(false);
    let days = RwSignal::new(String::new());
    let created = RwSignal::new(None::<String>);
    let create = move |event: SubmitEvent| {
        event.prevent_default();
        let body = match new_token(
            &name.get_untracked(),
            write.get_untracked(),
            &days.get_untracked(),
        ) {
            Ok(body) => body,
            Err(problem) => return error.set(Some(problem)),
        };
        error.set(None);
        spawn_local(async move {
            match api::account::create_token(&body).await {
                Ok(token) => {
                    created.set(Some(token.token));
                    name.set(String::new());
                    reload();
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    let revoke = move |id: String| {
        spawn_local(async move {
            match api::account::revoke_token(&id).await {
                Ok(()) => reload(),
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };

    view! {
        <Panel title="API tokens" test_id="settings-tokens">
            <p class="form-note">
                "For scripts and CLIs: send it as " <code>"Authorization: Bearer <token>"</code>
                ". A read-only token cannot send prompts or change anything."
            </p>
            <form class="form form--inline" on:submit=create>
                <TextInput value=name test_id="token-name" placeholder="Token name"/>
                <label class="check">
                    <input type="checkbox" data-testid="token-write" prop:checked=move || write.get()
                        on:change=move |event| write.set(event_target_checked(&event))/>
                    "Can write"
                </label>
                <TextInput value=days test_id="token-days" placeholder="Days (optional)" class="input--short"/>
                <button class="button button--primary" type="submit" data-testid="token-create">"Create token"</button>
            </form>
            {move || created.get().map(|token| view! {
                <CopyField value=token test_id="token-secret"
                    note="Copy it now: it is not shown again."/>
            })}
            <FormError error=error/>
            <table class="table" data-testid="token-list">
                <thead><tr><th>"Name"</th><th>"Scopes"</th><th>"Last used"</th><th>"Expires"</th><th></th></tr></thead>
                <tbody>
                    <For each=move || tokens.get() key=|token| token.id.clone() let:token>
                        <tr data-testid="token-row">
                            <td>{token.name.clone()}</td>
                            <td>{token.scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>().join(", ")}</td>
                            <td>{when(token.last_used_at)}</td>
                            <td>{expiry(token.expires_at)}</td>
                            <td class="table__actions">
                                <button class="button button--small button--danger" data-testid="token-revoke"
                                    on:click={
                                        let id = token.id.clone();
                                        move |_| revoke(id.clone())
                                    }>"Revoke"</button>
                            </td>
                        </tr>
                    </For>
                </tbody>
            </table>
            <Show when=move || tokens.with(Vec::is_empty)>
                <p class="form-note">"No tokens yet."</p>
            </Show>
        </Panel>
    }
}
