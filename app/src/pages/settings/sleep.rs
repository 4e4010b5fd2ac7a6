//! Sleep: how long a session of the user's stays idle before it sleeps
//! (`GET`/`PUT /api/me/settings`), in minutes; blank for the deployment's default,
//! `never` for never. The team's maximum, if an admin set one, caps it (and turns
//! "never" into that maximum); the panel says which time is in force.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::sleep::{MySettings, PutMySettings};

use crate::account::forms::{minutes_text, sleep_minutes, sleep_words};
use crate::api;
use crate::pages::{FormError, Panel, TextInput};

#[component]
pub fn SleepPanel() -> impl IntoView {
    let minutes = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let current = RwSignal::new(None::<MySettings>);
    let settings = LocalResource::new(api::account::my_settings);
    // The form starts from the time as it stands, once it arrives.
    Effect::new(move || match settings.get() {
        Some(Ok(settings)) => {
            minutes.set(field_text(&settings));
            current.set(Some(settings));
        }
        Some(Err(failure)) => error.set(Some(failure.to_string())),
        None => {}
    });
    let save = Action::new_local(move |request: &PutMySettings| {
        let request = request.clone();
        async move {
            match api::account::save_my_settings(&request).await {
                Ok(settings) => {
                    minutes.set(field_text(&settings));
                    current.set(Some(settings));
                    true
                }
                Err(failure) => {
                    error.set(Some(failure.to_string()));
                    false
                }
            }
        }
    });
    let saved = move || !save.pending().get() && save.value().get() == Some(true);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let Some(settings) = current.get_untracked() else {
            return;
        };
        match sleep_minutes(&minutes.get_untracked(), settings.bounds, true) {
            Ok(sleep_after_ms) => {
                error.set(None);
                save.dispatch_local(PutMySettings { sleep_after_ms });
            }
            Err(problem) => error.set(Some(problem)),
        }
    };
    let note = move || current.get().map(|settings| describe(&settings));
    view! {
        <Panel title="Sleep" test_id="settings-sleep">
            <form class="form" on:submit=submit>
                <label class="field">
                    <span class="field__label">"Idle minutes before a session sleeps"</span>
                    <TextInput value=minutes test_id="sleep-minutes" class="input--short"
                        placeholder="default"/>
                </label>
                <p class="form-note" data-testid="sleep-note">{note}</p>
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="sleep-save"
                        disabled=move || current.with(Option::is_none)>"Save"</button>
                    <Show when=saved><span class="form-note" data-testid="sleep-saved">"Saved."</span></Show>
                </div>
                <FormError error=error/>
            </form>
        </Panel>
    }
}

/// The field's text for the stored choice: blank (the default), `never` or minutes.
fn field_text(settings: &MySettings) -> String {
    match settings.sleep_after_ms {
        None => String::new(),
        Some(0) => "never".to_owned(),
        Some(ms) => minutes_text(ms),
    }
}

/// What is in force and why: the default, the team's maximum, the time itself.
fn describe(settings: &MySettings) -> String {
    if settings.default_sleep_after_ms == 0 {
        return "Sleep is off on this deployment: sessions stay awake.".to_owned();
    }
    let mut parts = vec![match settings.effective_sleep_after_ms {
        0 => "Your sessions never sleep.".to_owned(),
        ms => format!("Sessions sleep after {} idle.", sleep_words(ms)),
    }];
    parts.push(format!(
        "The default is {}.",
        sleep_words(settings.default_sleep_after_ms)
    ));
    if let Some(max) = settings.max_sleep_after_ms {
        parts.push(format!("Your team's maximum is {}.", sleep_words(max)));
    }
    parts.push("Leave blank for the default; \"never\" keeps them awake.".to_owned());
    parts.join(" ")
}
