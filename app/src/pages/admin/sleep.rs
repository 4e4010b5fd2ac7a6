//! The team's maximum sleep time: no member's idle session stays awake longer
//! (their own time and the deployment's default are capped by it, and "never"
//! becomes it). Blank is no maximum. The bounds come from `GET /api/me/settings`.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::sleep::{MySettings, TeamSleep};

use crate::account::forms::{minutes_text, sleep_minutes, sleep_words};
use crate::api::{self, ApiError};
use crate::pages::{FormError, Panel, TextInput};

#[component]
pub fn SleepMaxPanel() -> impl IntoView {
    let minutes = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let bounds = RwSignal::new(None::<MySettings>);
    let loaded = LocalResource::new(|| async {
        let team = api::account::team_settings().await?;
        let mine = api::account::my_settings().await?;
        Ok::<_, ApiError>((team, mine))
    });
    // The form starts from the maximum as it stands, once it arrives.
    Effect::new(move || match loaded.get() {
        Some(Ok((team, mine))) => {
            let max = team.sleep.and_then(|sleep| sleep.max_sleep_after_ms);
            minutes.set(max.map(minutes_text).unwrap_or_default());
            bounds.set(Some(mine));
        }
        Some(Err(failure)) => error.set(Some(failure.to_string())),
        None => {}
    });
    let save = Action::new_local(move |max: &Option<u64>| {
        let max = *max;
        async move {
            let result = save_max(max).await;
            if let Err(failure) = &result {
                error.set(Some(failure.to_string()));
            }
            result.is_ok()
        }
    });
    let saved = move || !save.pending().get() && save.value().get() == Some(true);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let Some(settings) = bounds.get_untracked() else {
            return;
        };
        match sleep_minutes(&minutes.get_untracked(), settings.bounds, false) {
            Ok(max) => {
                error.set(None);
                save.dispatch_local(max);
            }
            Err(problem) => error.set(Some(problem)),
        }
    };
    let note = move || {
        bounds.get().map(|settings| {
            format!(
                "Blank: no maximum. The deployment's default is {}; a maximum lies between {} and {} minutes.",
                sleep_words(settings.default_sleep_after_ms),
                minutes_text(settings.bounds.min_ms),
                minutes_text(settings.bounds.max_ms),
            )
        })
    };
    view! {
        <Panel title="Sleep" test_id="admin-sleep">
            <form class="form" on:submit=submit>
                <label class="field">
                    <span class="field__label">"Most idle minutes before any session sleeps"</span>
                    <TextInput value=minutes test_id="sleep-max-minutes" class="input--short"
                        placeholder="no maximum"/>
                </label>
                <p class="form-note" data-testid="sleep-max-note">{note}</p>
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="sleep-max-save"
                        disabled=move || bounds.with(Option::is_none)>"Save"</button>
                    <Show when=saved><span class="form-note">"Saved."</span></Show>
                </div>
                <FormError error=error/>
            </form>
        </Panel>
    }
}

/// Saves a new maximum: the rest of the team's settings are sent back as they stand.
async fn save_max(max_sleep_after_ms: Option<u64>) -> Result<(), ApiError> {
    let mut settings = api::account::team_settings().await?;
    settings.limits = None;
    settings.sleep = Some(TeamSleep { max_sleep_after_ms });
    api::account::save_team_settings(&settings).await
}
