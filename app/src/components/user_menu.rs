//! The sidebar's foot: who is signed in, the inbox with its unread count, links to settings and (for admins) the team
//! page, and sign-out.

use leptos::prelude::*;

use crate::account::access::initials;
use crate::auth::Auth;
use crate::pages::inbox::InboxLink;

#[component]
pub fn UserMenu() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let name = move || {
        auth.me()
            .map(|me| me.user.display_name().to_owned())
            .unwrap_or_default()
    };
    let avatar = move || {
        auth.me()
            .and_then(|me| me.user.avatar_url.filter(|url| url.starts_with("https://")))
    };
    // A picture that does not load (offline, blocked) falls back to initials.
    let broken = RwSignal::new(false);
    view! {
        <div class="user-menu" data-testid="user-menu">
            <div class="user-menu__who">
                {move || match avatar().filter(|_| !broken.get()) {
                    Some(url) => {
                        view! {
                            <img class="avatar avatar--image" src=url alt="" on:error=move |_| broken.set(true)/>
                        }
                            .into_any()
                    }
                    None => view! { <span class="avatar">{initials(&name())}</span> }.into_any(),
                }}
                <span class="user-menu__name" data-testid="user-name">{name}</span>
            </div>
            <nav class="user-menu__links">
                <InboxLink/>
                <a class="link-button" href="/settings" data-testid="nav-settings">"Settings"</a>
                <Show when=move || auth.is_admin()>
                    <a class="link-button" href="/admin" data-testid="nav-admin">"Team"</a>
                </Show>
                <button class="link-button" data-testid="sign-out" on:click=move |_| auth.sign_out()>"Sign out"</button>
            </nav>
        </div>
    }
}
