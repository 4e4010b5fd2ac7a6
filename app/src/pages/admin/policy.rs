//! Who may sign in: invited people only (the default), anyone at one email domain,
//! or anyone.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::auth::TeamSettings;

use crate::account::forms::{SIGNIN_POLICIES, team_settings};
use crate::api;
use crate::pages::{FormError, Panel, TextInput};

#[component]
pub fn PolicyPanel() -> impl IntoView {
    let policy = RwSignal::new("invite_only".to_owned());
    let domain = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let settings = LocalResource::new(api::account::team_settings);
    // The form starts from the settings as they stand, once they arrive.
    Effect::new(move || match settings.get() {
        Some(Ok(settings)) => {
            policy.set(settings.signin_policy.as_str().to_owned());
            domain.set(settings.allowed_domain.unwrap_or_default());
        }
        Some(Err(failure)) => error.set(Some(failure.to_string())),
        None => {}
    });
    let save = Action::new_local(move |settings: &TeamSettings| {
        let settings = settings.clone();
        async move {
            let result = api::account::save_team_settings(&settings).await;
            if let Err(failure) = &result {
                error.set(Some(failure.to_string()));
            }
            result.is_ok()
        }
    });
    let saved = move || !save.pending().get() && save.value().get() == Some(true);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        match team_settings(&policy.get_untracked(), &domain.get_untracked()) {
            Ok(settings) => {
                error.set(None);
                save.dispatch_local(settings);
            }
            Err(problem) => error.set(Some(problem)),
        }
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
            <form class="form" on:submit=submit>
                <div class="form__choices">{choices}</div>
                <Show when=move || policy.with(|policy| policy == "domain")>
                    <label class="field">
                        <span class="field__label">"Email domain"</span>
                        <TextInput value=domain test_id="policy-domain" placeholder="example.com"/>
                    </label>
                </Show>
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="policy-save">"Save"</button>
                    <Show when=saved><span class="form-note">"Saved."</span></Show>
                </div>
                <FormError error=error/>
            </form>
        </Panel>
    }
}
