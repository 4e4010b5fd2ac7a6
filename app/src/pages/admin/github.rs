//! Which GitHub repositories the team may work on (`owner/name` or `owner/*`, one a
//! line; none means any a member can reach) and whether pull requests open as
//! drafts: `GET`/`PUT /api/admin/github`.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::repo::GithubSettings;

use crate::account::forms::github_settings;
use crate::api;
use crate::pages::{FormError, Panel};

#[component]
pub fn GithubPanel() -> impl IntoView {
    let allowed = RwSignal::new(String::new());
    let draft = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let settings = LocalResource::new(api::github::settings);
    // The form starts from the settings as they stand, once they arrive.
    Effect::new(move || match settings.get() {
        Some(Ok(settings)) => {
            allowed.set(settings.allowed_repos.join("\n"));
            draft.set(settings.draft_pull_requests);
        }
        Some(Err(failure)) => error.set(Some(failure.to_string())),
        None => {}
    });
    let save = Action::new_local(move |settings: &GithubSettings| {
        let settings = settings.clone();
        async move {
            let result = api::github::save_settings(&settings).await;
            if let Err(failure) = &result {
                error.set(Some(failure.to_string()));
            }
            result.is_ok()
        }
    });
    let saved = move || !save.pending().get() && save.value().get() == Some(true);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        match github_settings(&allowed.get_untracked(), draft.get_untracked()) {
            Ok(settings) => {
                error.set(None);
                save.dispatch_local(settings);
            }
            Err(problem) => error.set(Some(problem)),
        }
    };
    view! {
        <Panel title="GitHub" test_id="admin-github">
            <form class="form" on:submit=submit>
                <label class="field">
                    <span class="field__label">"Allowed repositories (owner/name or owner/*, one a line; empty allows all)"</span>
                    <textarea class="input input--area" rows="4" data-testid="github-allowed"
                        placeholder="acme/web\nacme-labs/*"
                        prop:value=move || allowed.get()
                        on:input=move |event| allowed.set(event_target_value(&event))></textarea>
                </label>
                <label class="check">
                    <input type="checkbox" data-testid="github-draft"
                        prop:checked=move || draft.get()
                        on:change=move |event| draft.set(event_target_checked(&event))/>
                    "Open pull requests as drafts"
                </label>
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="github-save">"Save"</button>
                    <Show when=saved><span class="form-note">"Saved."</span></Show>
                </div>
                <FormError error=error/>
            </form>
        </Panel>
    }
}
