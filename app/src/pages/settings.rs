//! `/settings`: the signed-in user's profile and default model, personal API tokens,
//! and LLM keys (the team's too, for admins).

mod keys;
mod profile;
mod tokens;

use leptos::prelude::*;

use keys::KeysPanel;
use profile::ProfilePanel;
use tokens::TokensPanel;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <section class="page" data-testid="settings-page">
            <header class="page__header">
                <h1>"Settings"</h1>
            </header>
            <div class="page__body">
                <ProfilePanel/>
                <TokensPanel/>
                <KeysPanel/>
            </div>
        </section>
    }
}
