//! The team's spend caps: cost and tokens per session, per user per day and per
//! month, and per team per month. A prompt that would start over one is refused,
//! and a running turn stops at the step that reaches it. The usage itself is on
//! `/admin/usage`.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::usage::{CapScope, SpendCaps, UpdateSpendSettings};

use crate::api::{self, ApiError};
use crate::pages::{FormError, Panel, TextInput};
use crate::state::spend_form;

#[component]
pub fn SpendPanel() -> impl IntoView {
    let fields: [[RwSignal<String>; 2]; 4] =
        std::array::from_fn(|_| [RwSignal::new(String::new()), RwSignal::new(String::new())]);
    let error = RwSignal::new(None::<String>);
    let settings = LocalResource::new(api::usage::settings);
    Effect::new(move || match settings.get() {
        Some(Ok(settings)) => {
            for (row, text) in fields.iter().zip(spend_form::fields(&settings.caps)) {
                row[0].set(text[0].clone());
                row[1].set(text[1].clone());
            }
        }
        Some(Err(failure)) => error.set(Some(failure.to_string())),
        None => {}
    });
    let save = Action::new_local(move |caps: &SpendCaps| {
        let caps = *caps;
        async move {
            let result: Result<_, ApiError> = api::usage::save_settings(&UpdateSpendSettings {
                caps: Some(caps),
                prices: None,
            })
            .await;
            if let Err(failure) = &result {
                error.set(Some(failure.to_string()));
            }
            result.is_ok()
        }
    });
    let saved = move || !save.pending().get() && save.value().get() == Some(true);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let text = fields.map(|row| row.map(|field| field.get_untracked()));
        match spend_form::parse(&text) {
            Ok(caps) => {
                error.set(None);
                save.dispatch_local(caps);
            }
            Err(problem) => error.set(Some(problem)),
        }
    };
    let rows = CapScope::ALL
        .into_iter()
        .zip(fields)
        .map(|(scope, [usd, tokens])| {
            let name = match scope {
                CapScope::Session => "session",
                CapScope::UserDay => "user-day",
                CapScope::UserMonth => "user-month",
                CapScope::TeamMonth => "team-month",
            };
            let usd_id: &'static str = match scope {
                CapScope::Session => "cap-session-usd",
                CapScope::UserDay => "cap-user-day-usd",
                CapScope::UserMonth => "cap-user-month-usd",
                CapScope::TeamMonth => "cap-team-month-usd",
            };
            let tokens_id: &'static str = match scope {
                CapScope::Session => "cap-session-tokens",
                CapScope::UserDay => "cap-user-day-tokens",
                CapScope::UserMonth => "cap-user-month-tokens",
                CapScope::TeamMonth => "cap-team-month-tokens",
            };
            view! {
                <div class="field-row" data-cap=name>
                    <span class="field__label">{scope.label()}</span>
                    <label class="field">
                        <span class="field__label">"USD"</span>
                        <TextInput value=usd test_id=usd_id class="input--short"/>
                    </label>
                    <label class="field">
                        <span class="field__label">"Tokens"</span>
                        <TextInput value=tokens test_id=tokens_id class="input--short" kind="number"/>
                    </label>
                </div>
            }
        })
        .collect_view();
    view! {
        <Panel title="Spend caps" test_id="admin-spend">
            <p class="form-note">
                "Blank means no cap. Members who reach a cap are told which one and that you can raise it. "
                <a href="/admin/usage" data-testid="admin-usage-link">"See usage"</a>
            </p>
            <form class="form" on:submit=submit>
                {rows}
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="spend-save">"Save"</button>
                    <Show when=saved><span class="form-note">"Saved."</span></Show>
                </div>
                <FormError error=error/>
            </form>
        </Panel>
    }
}
