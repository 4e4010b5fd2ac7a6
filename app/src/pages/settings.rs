//! `/settings`: the signed-in user's profile and default model, how long their idle
//! sessions wait before they sleep, personal API tokens,
//! LLM keys (the team's too, for admins) and their own usage.

mod keys;
mod profile;
mod sleep;
mod tokens;
mod usage;

use leptos::prelude::*;

use keys::KeysPanel;
use profile::ProfilePanel;
use sleep::SleepPanel;
use tokens::TokensPanel;
use usage::UsagePanel;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <section class="page" data-testid="settings-page">
            <header class="page__header">
                <h1>"Settings"</h1>
            </header>
            <div class="page__body">
                <ProfilePanel/>
                <SleepPanel/>
                <TokensPanel/>
                <KeysPanel/>
                <UsagePanel/>
            </div>
        </section>
    }
}
