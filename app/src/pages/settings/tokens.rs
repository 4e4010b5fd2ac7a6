//! Personal API tokens: create (name, read-only or read-write, optional expiry), shown
//! once with a copy button; list; revoke.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::auth::CreateTokenRequest;

use crate::account::forms::new_token;
use crate::api;
use crate::pages::{
    CopyField, FormError, Panel, TextInput, expiry, form_or_list_error, removal, rows, when,
};

#[component]
pub fn TokensPanel() -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let write = RwSignal::new(false);
    let days = RwSignal::new(String::new());
    let created = RwSignal::new(None::<String>);
    let create = Action::new_local(move |body: &CreateTokenRequest| {
        let body = body.clone();
        async move {
            match api::account::create_token(&body).await {
                Ok(token) => {
                    created.set(Some(token.token));
                    name.set(String::new());
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        }
    });
    let revoke = removal(
        error,
        |id| async move { api::account::revoke_token(&id).await },
    );
    // Listed again whenever a token was created or revoked.
    let tokens = LocalResource::new(move || {
        create.version().track();
        revoke.version().track();
        api::account::tokens()
    });

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        match new_token(
            &name.get_untracked(),
            write.get_untracked(),
            &days.get_untracked(),
        ) {
            Ok(body) => {
                error.set(None);
                create.dispatch_local(body);
            }
            Err(problem) => error.set(Some(problem)),
        }
    };

    view! {
        <Panel title="API tokens" test_id="settings-tokens">
            <p class="form-note">
                "For scripts and CLIs: send it as " <code>"Authorization: Bearer <token>"</code>
                ". A read-only token cannot send prompts or change anything."
            </p>
            <form class="form form--inline" on:submit=submit>
                <TextInput value=name test_id="token-name" placeholder="Token name"/>
                <label class="check">
                    <input type="checkbox" data-testid="token-write" prop:checked=move || write.get()
                        on:change=move |event| write.set(event_target_checked(&event))/>
                    "Can write"
                </label>
                <TextInput value=days test_id="token-days" placeholder="Days (optional)" class="input--short"/>
                <button class="button button--primary" type="submit" data-testid="token-create"
                    disabled=move || create.pending().get()>"Create token"</button>
            </form>
            {move || created.get().map(|token| view! {
                <CopyField value=token test_id="token-secret"
                    note="Copy it now: it is not shown again."/>
            })}
            <FormError error=form_or_list_error(error, tokens)/>
            <table class="table" data-testid="token-list">
                <thead><tr><th>"Name"</th><th>"Scopes"</th><th>"Last used"</th><th>"Expires"</th><th></th></tr></thead>
                <tbody>
                    <For each=move || rows(tokens) key=|token| token.id.clone() let:token>
                        <tr data-testid="token-row">
                            <td>{token.name.clone()}</td>
                            <td>{token.scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>().join(", ")}</td>
                            <td>{when(token.last_used_at)}</td>
                            <td>{expiry(token.expires_at)}</td>
                            <td class="table__actions">
                                <button class="button button--small button--danger" data-testid="token-revoke"
                                    on:click={
                                        let id = token.id.clone();
                                        move |_| {
                                            revoke.dispatch_local(id.clone());
                                        }
                                    }>"Revoke"</button>
                            </td>
                        </tr>
                    </For>
                </tbody>
            </table>
            <Show when=move || rows(tokens).is_empty()>
                <p class="form-note">"No tokens yet."</p>
            </Show>
        </Panel>
    }
}
