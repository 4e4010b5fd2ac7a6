//! What `/` shows: no session selected yet, and an invitation to start one.

use leptos::prelude::*;

use crate::components::new_session::NewSessionButton;

#[component]
pub fn EmptyState() -> impl IntoView {
    view! {
        <section class="empty-state" data-testid="empty-state">
            <div class="empty-state__card">
                <div class="empty-state__glyph" aria-hidden="true">"☾"</div>
                <h1>"Start a session"</h1>
                <p>
                    "Every session gets its own sandbox. Describe a task; the agent works on it "
                    "in the background while you watch, queue follow-ups or stop it."
                </p>
                <NewSessionButton
                    class="button button--primary button--large"
                    test_id="empty-new-session"
                    label="New session"
                />
            </div>
        </section>
    }
}

/// Any other path.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="empty-state">
            <div class="empty-state__card">
                <h1>"Nothing here"</h1>
                <p>"This page does not exist. Pick a session on the left or start a new one."</p>
            </div>
        </section>
    }
}
