//! Profile: display name and default model (`PATCH /api/me`). The model is picked from
//! `GET /api/models` when the server lists models, else typed in.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::auth::PatchMeRequest;

use crate::api;
use crate::auth::Auth;
use crate::pages::{Choice, FormError, Panel, TextInput};

#[component]
pub fn ProfilePanel() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let me = auth.me();
    let email = me
        .as_ref()
        .and_then(|me| me.user.email.clone())
        .unwrap_or_default();
    let role = me
        .as_ref()
        .map(|me| me.user.role.as_str())
        .unwrap_or("member");
    let name = RwSignal::new(
        me.as_ref()
            .map(|me| me.user.name.clone())
            .unwrap_or_default(),
    );
    let model = RwSignal::new(
        me.as_ref()
            .and_then(|me| me.user.default_model.clone())
            .unwrap_or_default(),
    );
    let models = LocalResource::new(api::account::models);
    let error = RwSignal::new(None::<String>);
    let save = Action::new_local(move |update: &PatchMeRequest| {
        let update = update.clone();
        async move {
            match api::account::update_me(&update).await {
                Ok(me) => {
                    // The PATCH answer may leave out the CSRF token; keep ours.
                    if !me.csrf_token.is_empty() {
                        auth.set_me(me);
                    } else {
                        auth.reload();
                    }
                    true
                }
                Err(failure) => {
                    error.set(Some(failure.to_string()));
                    false
                }
            }
        }
    });
    let saving = save.pending();
    let saved = move || !saving.get() && save.value().get() == Some(true);

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let model = model.get_untracked().trim().to_owned();
        error.set(None);
        save.dispatch_local(PatchMeRequest {
            name: Some(name.get_untracked().trim().to_owned()),
            default_model: Some(model),
        });
    };

    let model_input = move || {
        let listed = models.get().unwrap_or_default();
        if listed.is_empty() {
            view! {
                <TextInput value=model test_id="profile-model" placeholder="e.g. claude-sonnet-4-5"/>
            }
            .into_any()
        } else {
            let mut options = vec![(String::new(), "The server's default".to_owned())];
            options.extend(listed.into_iter().map(|id| (id.clone(), id)));
            view! { <Choice value=model options=options test_id="profile-model"/> }.into_any()
        }
    };

    view! {
        <Panel title="Profile" test_id="settings-profile">
            <form class="form" on:submit=submit>
                <p class="form-note" data-testid="profile-email">{email} " · " {role}</p>
                <label class="field">
                    <span class="field__label">"Name"</span>
                    <TextInput value=name test_id="profile-name"/>
                </label>
                <label class="field">
                    <span class="field__label">"Default model"</span>
                    <Suspense fallback=|| ()>{model_input}</Suspense>
                </label>
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="profile-save"
                        disabled=move || saving.get()>"Save"</button>
                    <Show when=saved><span class="form-note">"Saved."</span></Show>
                </div>
                <FormError error=error/>
            </form>
        </Panel>
    }
}
