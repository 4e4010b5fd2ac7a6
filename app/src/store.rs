//! The sessions list shared by the sidebar and the session view, kept live.
//!
//! One [`SessionsStore`] exists per page, created by the root component and handed
//! out through Leptos context. It loads `GET /api/sessions`, follows `GET /api/events`
//! and reloads the list whenever that stream (re)opens, so a change made while the
//! stream was down is never missed. What each list event means is decided by
//! [`crate::state::SessionList`]; this file only wires it to the network and signals.

use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::api::{CreateSessionRequest, Session, SessionStatus};
use nightshift_protocol::events::SessionListEvent;
use nightshift_protocol::session_list::{BulkAction, BulkRequest, ListFilter};
use send_wrapper::SendWrapper;

use crate::api::{self, ApiError};
use crate::sse::{EventStream, StreamState};
use crate::state::SessionList;

#[derive(Debug, Clone, Copy)]
pub struct SessionsStore {
    pub list: RwSignal<SessionList>,
    /// True once one `GET /api/sessions` has answered.
    pub loaded: RwSignal<bool>,
    /// Why the last load failed, until one succeeds.
    pub load_error: RwSignal<Option<String>>,
    pub stream: RwSignal<StreamState>,
    /// Where the next (older) page of the list starts, while there is one.
    pub next_cursor: RwSignal<Option<String>>,
    /// What the sidebar lists: scope, search words, archived or not.
    pub filter: RwSignal<ListFilter>,
}

impl SessionsStore {
    /// Creates the store and starts loading and following the list. The stream is
    /// closed when the calling component's owner is cleaned up.
    pub fn start() -> SessionsStore {
        let store = SessionsStore {
            list: RwSignal::new(SessionList::default()),
            loaded: RwSignal::new(false),
            load_error: RwSignal::new(None),
            stream: RwSignal::new(StreamState::Connecting),
            next_cursor: RwSignal::new(None),
            filter: RwSignal::new(ListFilter::default()),
        };
        store.reload();
        // The user's inbox changes come on the same stream (see `crate::inbox`).
        let inbox = use_context::<crate::inbox::InboxStore>();
        let stream = EventStream::connect(
            || api::SESSION_LIST_EVENTS_URL.to_owned(),
            move |data| match serde_json::from_str::<SessionListEvent>(&data) {
                Ok(SessionListEvent::InboxChanged { entry, unread }) => {
                    if let Some(inbox) = inbox {
                        inbox.on_change(entry, unread);
                    }
                }
                Ok(event) => store.list.update(|list| list.apply(event)),
                Err(error) => leptos::logging::warn!("ignoring a sessions-list event: {error}"),
            },
            move |state| {
                store.stream.set(state);
                // Reload on every open, the first included: a session created between
                // the first load and the stream's opening would otherwise be missed.
                if matches!(state, StreamState::Open { .. }) {
                    store.reload();
                    if let Some(inbox) = inbox
                        && matches!(state, StreamState::Open { reconnected: true })
                    {
                        inbox.reload();
                    }
                }
            },
        );
        let stream = SendWrapper::new(stream);
        on_cleanup(move || drop(stream));
        store
    }

    /// Lists what `filter` keeps from now on: the first page of it is loaded (the
    /// sessions already known stay known; the sidebar shows those the filter keeps).
    pub fn set_filter(self, filter: ListFilter) {
        if self.filter.get_untracked() == filter {
            return;
        }
        self.filter.set(filter);
        self.next_cursor.set(None);
        self.reload();
    }

    /// Loads the first page of `GET /api/sessions` and merges it into the list.
    pub fn reload(self) {
        let filter = self.filter.get_untracked();
        spawn_local(async move {
            match api::list_sessions(None, &filter).await {
                Ok(answer) => {
                    self.list
                        .update(|list| list.merge_snapshot(answer.sessions));
                    self.next_cursor.set(answer.next_cursor);
                    self.loaded.set(true);
                    self.load_error.set(None);
                }
                Err(error) => self.load_error.set(Some(error.to_string())),
            }
        });
    }

    /// Loads the next (older) page and adds it to the list.
    pub fn load_more(self) {
        let Some(cursor) = self.next_cursor.get_untracked() else {
            return;
        };
        let filter = self.filter.get_untracked();
        spawn_local(async move {
            match api::list_sessions(Some(&cursor), &filter).await {
                Ok(answer) => {
                    self.list
                        .update(|list| list.merge_snapshot(answer.sessions));
                    self.next_cursor.set(answer.next_cursor);
                    self.load_error.set(None);
                }
                Err(error) => self.load_error.set(Some(error.to_string())),
            }
        });
    }

    /// `DELETE /api/sessions/{id}`; it leaves the list at once.
    pub async fn delete_session(self, session_id: String) -> Result<(), ApiError> {
        api::delete_session(&session_id).await?;
        self.list.update(|list| list.remove(&session_id));
        Ok(())
    }

    /// `POST /api/sessions/{id}/archive`; the list shows it archived at once.
    pub async fn archive_session(self, session_id: String) -> Result<(), ApiError> {
        let session = api::archive_session(&session_id).await?;
        self.remember(session);
        Ok(())
    }

    /// `POST /api/sessions/bulk`: `action` on `ids`. The sessions done are archived
    /// or gone from the list at once; answers how many the server refused.
    pub async fn bulk(self, action: BulkAction, ids: Vec<String>) -> Result<usize, ApiError> {
        let answer = api::bulk_sessions(&BulkRequest { action, ids }).await?;
        let mut refused = 0;
        self.list.update(|list| {
            for outcome in &answer.results {
                match (outcome.ok, action) {
                    (false, _) => refused += 1,
                    (true, BulkAction::Archive) => {
                        list.set_status(&outcome.id, SessionStatus::Archived)
                    }
                    (true, BulkAction::Delete) => list.remove(&outcome.id),
                }
            }
        });
        Ok(refused)
    }

    /// `POST /api/sessions`; the new session is listed at once, before its
    /// `session_created` event arrives. Answers its id.
    pub async fn create_session(self, request: &CreateSessionRequest) -> Result<String, ApiError> {
        let session = api::create_session_with(request).await?;
        let id = session.id.clone();
        self.remember(session);
        Ok(id)
    }

    /// Adds or refreshes one session, from an answer of `GET /api/sessions/{id}`.
    pub fn remember(self, session: Session) {
        self.list.update(|list| list.upsert(session));
    }
}

/// The app-relative URL of a session's page.
pub fn session_href(session_id: &str) -> String {
    format!(
        "/sessions/{}",
        String::from(js_sys::encode_uri_component(session_id))
    )
}
