//! The caps every member is held to: live sessions (each with its sandbox), queued
//! prompts per session, open streams and LLM keys. Going over one answers 429.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::auth::UsageLimits;

use crate::account::forms::usage_limits;
use crate::api::{self, ApiError};
use crate::pages::{FormError, Panel, TextInput};

#[component]
pub fn LimitsPanel() -> impl IntoView {
    let live_sessions = RwSignal::new(String::new());
    let queued_prompts = RwSignal::new(String::new());
    let open_streams = RwSignal::new(String::new());
    let keys = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let settings = LocalResource::new(api::account::team_settings);
    // The form starts from the caps as they stand, once they arrive.
    Effect::new(move || match settings.get() {
        Some(Ok(settings)) => {
            if let Some(limits) = settings.limits {
                live_sessions.set(limits.live_sessions.to_string());
                queued_prompts.set(limits.queued_prompts.to_string());
                open_streams.set(limits.open_streams.to_string());
                keys.set(limits.keys.to_string());
            }
        }
        Some(Err(failure)) => error.set(Some(failure.to_string())),
        None => {}
    });
    let save = Action::new_local(move |limits: &UsageLimits| {
        let limits = *limits;
        async move {
            let result = save_limits(limits).await;
            if let Err(failure) = &result {
                error.set(Some(failure.to_string()));
            }
            result.is_ok()
        }
    });
    let saved = move || !save.pending().get() && save.value().get() == Some(true);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        match usage_limits(
            &live_sessions.get_untracked(),
            &queued_prompts.get_untracked(),
            &open_streams.get_untracked(),
            &keys.get_untracked(),
        ) {
            Ok(limits) => {
                error.set(None);
                save.dispatch_local(limits);
            }
            Err(problem) => error.set(Some(problem)),
        }
    };
    let field = |label: &'static str, value: RwSignal<String>, test_id: &'static str| {
        view! {
            <label class="field">
                <span class="field__label">{label}</span>
                <TextInput value=value test_id=test_id class="input--short" kind="number"/>
            </label>
        }
    };
    view! {
        <Panel title="Limits per member" test_id="admin-limits">
            <form class="form" on:submit=submit>
                {field("Live sessions (each holds a sandbox)", live_sessions, "limit-live-sessions")}
                {field("Queued prompts per session", queued_prompts, "limit-queued-prompts")}
                {field("Open event streams", open_streams, "limit-open-streams")}
                {field("LLM keys", keys, "limit-keys")}
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="limits-save">"Save"</button>
                    <Show when=saved><span class="form-note">"Saved."</span></Show>
                </div>
                <FormError error=error/>
            </form>
        </Panel>
    }
}

/// Saves new caps: the sign-in policy is sent back as it stands, only the caps change.
async fn save_limits(limits: UsageLimits) -> Result<(), ApiError> {
    let mut settings = api::account::team_settings().await?;
    settings.limits = Some(limits);
    api::account::save_team_settings(&settings).await
}
