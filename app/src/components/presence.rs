//! Who is watching a session now, as a row of initials avatars.

use leptos::prelude::*;

use nightshift_protocol::auth::Viewer;

use crate::account::access::initials;

/// At most this many avatars; the rest are counted.
const MAX_AVATARS: usize = 5;

#[component]
pub fn PresenceAvatars(viewers: RwSignal<Vec<Viewer>>) -> impl IntoView {
    let shown = move || {
        viewers.with(|viewers| {
            viewers
                .iter()
                .take(MAX_AVATARS)
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let more = move || viewers.with(|viewers| viewers.len().saturating_sub(MAX_AVATARS));
    view! {
        <div class="presence" data-testid="presence" data-count=move || viewers.with(Vec::len)>
            <For each=shown key=|viewer| viewer.user_id.clone() let:viewer>
                <span class="avatar" data-testid="presence-avatar" data-user-id=viewer.user_id.clone()
                    title=format!("{} is watching", viewer.name)>
                    {initials(&viewer.name)}
                </span>
            </For>
            <Show when=move || { more() > 0 }>
                <span class="avatar avatar--more">"+" {more}</span>
            </Show>
        </div>
    }
}
