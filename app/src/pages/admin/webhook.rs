//! The team's webhook (`GET`/`PUT /api/admin/webhook`, `POST /api/admin/webhook/test`):
//! a URL that receives each finished or failed turn and each question or permission
//! request as a POST in Slack's incoming-webhook format, how many posts it took and
//! failed, and a "Send test" button. Only admins see the URL.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use crate::api;
use crate::pages::{FormError, Panel, when};

#[component]
pub fn WebhookPanel() -> impl IntoView {
    let url = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let note = RwSignal::new(None::<String>);
    let save = Action::new_local(move |url: &String| {
        let url = url.trim().to_owned();
        async move {
            match api::inbox::save_webhook((!url.is_empty()).then_some(url)).await {
                Ok(_) => {
                    error.set(None);
                    note.set(Some("Saved.".to_owned()));
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        }
    });
    let test = Action::new_local(move |_: &()| async move {
        match api::inbox::test_webhook().await {
            Ok(result) if result.delivered => {
                error.set(None);
                note.set(Some("The test message was delivered.".to_owned()));
            }
            Ok(result) => error.set(Some(format!(
                "The test message was not delivered: {}",
                result.error.unwrap_or_default()
            ))),
            Err(failure) => error.set(Some(failure.to_string())),
        }
    });
    let settings = LocalResource::new(move || {
        save.version().get();
        test.version().get();
        api::inbox::webhook()
    });
    // The form starts from the URL as it stands, once it arrives.
    Effect::new(move || {
        if let Some(Ok(settings)) = settings.get() {
            url.set(settings.url.unwrap_or_default());
        }
    });
    let counters = move || {
        settings.get().and_then(Result::ok).map(|settings| {
            let last = settings
                .last_error
                .map(|reason| format!(" Last failure {}: {reason}", when(settings.last_failure_at)))
                .unwrap_or_default();
            format!(
                "{} delivered, {} failed.{last}",
                settings.deliveries, settings.failures
            )
        })
    };
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        note.set(None);
        save.dispatch_local(url.get_untracked());
    };
    view! {
        <Panel title="Webhook" test_id="admin-webhook">
            <form class="form" on:submit=submit>
                <label class="field">
                    <span class="field__label">"Posts each finished or failed turn and each question to this URL, in Slack's incoming-webhook format (https; empty turns it off)"</span>
                    <input class="input" type="url" data-testid="webhook-url"
                        placeholder="https://hooks.slack.com/services/…"
                        prop:value=move || url.get()
                        on:input=move |event| url.set(event_target_value(&event))/>
                </label>
                <div class="form__actions">
                    <button class="button button--primary" type="submit" data-testid="webhook-save">"Save"</button>
                    <button class="button" type="button" data-testid="webhook-test"
                        on:click=move |_| { note.set(None); test.dispatch_local(()); }>
                        "Send test"
                    </button>
                    {move || note.get().map(|note| view! { <span class="form-note" data-testid="webhook-note">{note}</span> })}
                </div>
                <p class="form-note" data-testid="webhook-counters">{counters}</p>
                <FormError error=error/>
            </form>
        </Panel>
    }
}
