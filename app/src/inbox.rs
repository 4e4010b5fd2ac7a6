//! The inbox shared by the sidebar's link, the inbox page and the notifications,
//! kept live. One [`InboxStore`] exists per signed-in page (Leptos context); it loads
//! `GET /api/inbox`, takes `inbox_changed` events from the session-list stream
//! (`crate::store` hands them over), keeps the tab title's count, and shows a
//! browser notification for a new entry the user is not looking at. What each
//! change means is `crate::state::inbox`'s.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_location, use_navigate};
use nightshift_protocol::inbox::InboxEntry;
use send_wrapper::SendWrapper;
use web_sys::NotificationPermission;

use crate::api;
use crate::notifications;
use crate::state::inbox::{Inbox, notification_text, session_of_path, should_notify, tab_title};
use crate::store::session_href;

#[derive(Clone, Copy)]
pub struct InboxStore {
    pub inbox: RwSignal<Inbox>,
    /// Why the last load failed, until one succeeds.
    pub error: RwSignal<Option<String>>,
    /// The user sent a prompt on this page: the moment to offer notifications.
    pub prompted: RwSignal<bool>,
    /// The user closed the offer, or answered it.
    pub offer_closed: RwSignal<bool>,
    /// The page on screen (its path), for "is the user looking at this session".
    path: Memo<String>,
    navigate: StoredValue<Navigate>,
}

/// The router's navigation, kept for a notification's click (which runs outside
/// any component).
type Navigate = SendWrapper<Box<dyn Fn(&str)>>;

impl InboxStore {
    /// Creates the store (inside the router), loads the first page and keeps the
    /// tab's title.
    pub fn provide() -> InboxStore {
        let location = use_location();
        let navigate = use_navigate();
        let store = InboxStore {
            inbox: RwSignal::new(Inbox::default()),
            error: RwSignal::new(None),
            prompted: RwSignal::new(false),
            offer_closed: RwSignal::new(false),
            path: Memo::new(move |_| location.pathname.get()),
            navigate: StoredValue::new(SendWrapper::new(Box::new(move |href: &str| {
                navigate(href, NavigateOptions::default())
            }))),
        };
        provide_context(store);
        store.reload();
        Effect::new(move |_| {
            notifications::set_tab_title(&tab_title(store.inbox.with(|inbox| inbox.unread)));
        });
        on_cleanup(|| notifications::set_tab_title(&tab_title(0)));
        store
    }

    /// Loads the first page (also after the list stream reopens: a change made
    /// while it was down is not missed).
    pub fn reload(self) {
        spawn_local(async move {
            match api::inbox::page(None).await {
                Ok(page) => {
                    self.inbox.update(|inbox| inbox.load_first(page));
                    self.error.set(None);
                }
                Err(error) => self.error.set(Some(error.to_string())),
            }
        });
    }

    /// Loads the next (older) page.
    pub fn load_more(self) {
        let Some(cursor) = self.inbox.with_untracked(|inbox| inbox.next_cursor.clone()) else {
            return;
        };
        spawn_local(async move {
            match api::inbox::page(Some(&cursor)).await {
                Ok(page) => self.inbox.update(|inbox| inbox.load_more(page)),
                Err(error) => self.error.set(Some(error.to_string())),
            }
        });
    }

    /// An `inbox_changed` event from the list stream.
    pub fn on_change(self, entry: Option<InboxEntry>, unread: u32) {
        let mut fresh = None;
        self.inbox
            .update(|inbox| fresh = inbox.apply(entry, unread));
        let Some(entry) = fresh else {
            return;
        };
        let on_screen = self
            .path
            .with_untracked(|path| session_of_path(path).map(str::to_owned));
        if !should_notify(
            &entry.session_id,
            notifications::tab_hidden(),
            on_screen.as_deref(),
        ) {
            return;
        }
        let (title, body) = notification_text(&entry);
        let href = session_href(&entry.session_id);
        let id = entry.id.clone();
        notifications::show(&title, &body, &entry.id, move || self.open(&id, &href));
    }

    /// Marks `ids` read (every entry when empty): at once here, then on the server.
    pub fn mark_read(self, ids: Vec<String>) {
        self.inbox
            .update(|inbox| inbox.mark_read(&ids, js_sys::Date::now() as i64));
        spawn_local(async move {
            match api::inbox::mark_read(ids).await {
                Ok(marked) => self.inbox.update(|inbox| inbox.unread = marked.unread),
                Err(error) => self.error.set(Some(error.to_string())),
            }
        });
    }

    /// Opens an entry's session and marks the entry read.
    pub fn open(self, entry_id: &str, href: &str) {
        self.mark_read(vec![entry_id.to_owned()]);
        self.navigate.with_value(|navigate| navigate(href));
    }

    /// Whether to offer notifications now: after a prompt, while never asked.
    pub fn offer_notifications(self) -> bool {
        self.prompted.get()
            && !self.offer_closed.get()
            && notifications::permission() == Some(NotificationPermission::Default)
    }
}
