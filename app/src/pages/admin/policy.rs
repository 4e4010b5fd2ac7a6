//! Who may sign in: invited people only (the default), anyone at one email domain,
//! or anyone.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::account::forms::{SIGNIN_POLICIES, team_settings};
use crate::api;
use crate::pages::{FormError, Panel, TextInput};

#[component]
pub fn PolicyPanel() -> impl IntoView {
    let policy = RwSignal::new("invite_only".to_owned());
    let domain = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    spawn_local(async move {
        match api::account::team_settings().await {
            Ok(settings) => {
                policy.set(settings.signin_policy.as_str().to_owned());
                domain.set(settings.allowed_domain.unwrap_or_default());
            }
            Err(failure) => error.set(Some(failure.to_string())),
        }
    });
    let save = move |event: SubmitEvent| {
        event.prevent_default();
        let settings = match team_settings(&policy.get_untracked(), &domain.get_untracked()) {
            Ok(settings) => settings,
            Err(problem) => return error.set(Some(problem)),
        };
        error.set(None);
        saved.set(false);
        spawn_local(async move {
            match api::account::save_team_settings(&settings).await {
                Ok(()) => saved.set(true),
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    let choices = SIGNIN_POLICIES
        .iter()
        .map(|(id, label)| {
            view! {
                <label class="check">
                    <input type="radio" name="signin-policy" value=*id data-testid=format!("policy-{id}")
                        prop:checked=move || policy.with(|policy| policy == id)
                        on:change=move |_| policy.set((*id).to_owned())/>
                    {*label}
                </label>
            }
        })
        .collect_view();
    view! {
        <Panel title="Sign-in policy" test_id="admin-policy">
            <form class="form" on:submit=save>
                <div class="form__choices">{choices}</div>
                <Show when=move || policy.with(|policy| policy == "domain")>
                    <label class="field">
                        <span class="field__label">"Email domain"</span>
                        <TextInput value=domain test_id="policy-domain" placeholder="example.com"/>
                    </label>
                </Show>
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="policy-save">"Save"</button>
                    <Show when=move || saved.get()><span class="form-note">"Saved."</span></Show>
                </div>
                <FormError error=error/>
            </form>
        </Panel>
    }
}
