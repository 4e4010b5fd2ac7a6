//! `/inbox`: what happened in the user's sessions while they were away (a turn
//! they started finished or failed, the agent asks a question or a permission),
//! newest first; an entry opens its session and is marked read. Also the sidebar's
//! link with the unread count, and the offer to turn on browser notifications that
//! appears after the user's first prompt on a page (never on page load).

use leptos::prelude::*;
use nightshift_protocol::inbox::InboxEntry;

use crate::inbox::InboxStore;
use crate::notifications;
use crate::pages::when;
use crate::store::session_href;

#[component]
pub fn InboxPage() -> impl IntoView {
    let store = expect_context::<InboxStore>();
    let entries = move || store.inbox.with(|inbox| inbox.entries.clone());
    let unread = move || store.inbox.with(|inbox| inbox.unread);
    let more = move || store.inbox.with(|inbox| inbox.next_cursor.is_some());
    view! {
        <section class="page" data-testid="inbox-page">
            <header class="page__header">
                <h1>"Inbox"</h1>
                <button class="button" data-testid="inbox-mark-all"
                    disabled=move || unread() == 0
                    on:click=move |_| store.mark_read(Vec::new())>
                    "Mark all read"
                </button>
            </header>
            <div class="page__body">
                {move || store.error.get().map(|error| view! {
                    <p class="inline-error" role="alert">{error}</p>
                })}
                <Show when=move || store.inbox.with(|inbox| inbox.loaded && inbox.entries.is_empty())>
                    <p class="form-note" data-testid="inbox-empty">
                        "Nothing yet. When a turn you started ends, or the agent needs you, it shows here."
                    </p>
                </Show>
                <ul class="inbox-list" data-testid="inbox-list">
                    <For each=entries key=|entry| (entry.id.clone(), entry.read_at) let:entry>
                        <InboxRow entry=entry/>
                    </For>
                </ul>
                <Show when=more>
                    <button class="button" data-testid="inbox-more" on:click=move |_| store.load_more()>
                        "Older"
                    </button>
                </Show>
            </div>
        </section>
    }
}

#[component]
fn InboxRow(entry: InboxEntry) -> impl IntoView {
    let store = expect_context::<InboxStore>();
    let href = session_href(&entry.session_id);
    let unread = entry.read_at.is_none();
    let open = {
        let (id, href) = (entry.id.clone(), href.clone());
        move |event: leptos::ev::MouseEvent| {
            event.prevent_default();
            store.open(&id, &href);
        }
    };
    let title = if entry.title.trim().is_empty() {
        crate::components::sidebar::UNTITLED.to_owned()
    } else {
        entry.title.clone()
    };
    view! {
        <li class="inbox-entry" class:inbox-entry--unread=unread>
            <a href=href on:click=open data-testid="inbox-entry" data-kind=entry.kind.as_str()
                data-session=entry.session_id.clone()>
                <span class="inbox-entry__title">{title}</span>
                <span class="inbox-entry__kind">{entry.kind.headline()}</span>
                <span class="inbox-entry__text">{entry.text.clone()}</span>
                <span class="inbox-entry__when">{when(Some(entry.created_at))}</span>
            </a>
        </li>
    }
}

/// The sidebar's link to the inbox, with the unread count.
#[component]
pub fn InboxLink() -> impl IntoView {
    let store = expect_context::<InboxStore>();
    let unread = move || store.inbox.with(|inbox| inbox.unread);
    view! {
        <a class="link-button" href="/inbox" data-testid="nav-inbox">
            "Inbox"
            <Show when=move || { unread() > 0 }>
                <span class="count-badge" data-testid="inbox-count">{unread}</span>
            </Show>
        </a>
    }
}

/// "Get a notification when the agent finishes or needs you": offered once the
/// user has sent a prompt, while the browser has never been asked.
#[component]
pub fn NotificationOffer() -> impl IntoView {
    let store = expect_context::<InboxStore>();
    let enable = move |_| {
        store.offer_closed.set(true);
        notifications::request(|_| {});
    };
    view! {
        <Show when=move || store.offer_notifications()>
            <div class="banner" role="status" data-testid="notification-offer">
                <span>"Get a browser notification when the agent finishes or needs you?"</span>
                <button class="button button--primary" data-testid="notification-enable" on:click=enable>
                    "Turn on"
                </button>
                <button class="button button--ghost" data-testid="notification-dismiss"
                    on:click=move |_| store.offer_closed.set(true)>
                    "Not now"
                </button>
            </div>
        </Show>
    }
}
