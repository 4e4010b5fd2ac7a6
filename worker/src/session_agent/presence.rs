//! Presence: who is watching a session now. Every open `GET /events` stream of a
//! signed-in user is one watcher; a user with several tabs counts once. When the
//! set of people changes (a stream opens or closes), every stream gets a
//! `{"type":"presence_changed","viewers":[...]}` frame without an `id:` (it is not
//! part of the event log, so `Last-Event-ID` never points at it).
//!
//! The Worker names the viewer in the internal headers of the stream request; a
//! [`Watching`] guard lives as long as the stream and leaves when it is dropped.

use std::cell::RefCell;
use std::rc::Rc;

use nightshift_protocol::auth::Viewer;
use worker::Request;

use crate::sse::Subscribers;

/// The internal headers that name who opens a stream.
pub const VIEWER_ID_HEADER: &str = "x-nightshift-viewer-id";
pub const VIEWER_NAME_HEADER: &str = "x-nightshift-viewer-name";

#[derive(Debug, Default)]
pub struct Presence {
    watchers: RefCell<Vec<(u64, Viewer)>>,
    next: RefCell<u64>,
}

impl Presence {
    /// The people watching, each once, in the order they came.
    pub fn viewers(&self) -> Vec<Viewer> {
        let mut viewers: Vec<Viewer> = Vec::new();
        for (_, viewer) in self.watchers.borrow().iter() {
            if !viewers.iter().any(|known| known.user_id == viewer.user_id) {
                viewers.push(viewer.clone());
            }
        }
        viewers
    }

    fn frame(&self) -> String {
        let body = serde_json::json!({"type": "presence_changed", "viewers": self.viewers()});
        format!("data: {body}\n\n")
    }

    /// Registers the viewer named in `req`'s headers (none: an unnamed stream, not
    /// counted) and tells every stream if the set of people changed.
    pub fn join(self: &Rc<Self>, req: &Request, subscribers: &Rc<Subscribers>) -> Option<Watching> {
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let user_id = header(VIEWER_ID_HEADER)?;
        let name = header(VIEWER_NAME_HEADER).unwrap_or_else(|| user_id.clone());
        let before = self.viewers();
        let id = {
            let mut next = self.next.borrow_mut();
            *next += 1;
            *next
        };
        self.watchers
            .borrow_mut()
            .push((id, Viewer { user_id, name }));
        if self.viewers() != before {
            subscribers.broadcast(&self.frame());
        }
        Some(Watching {
            id,
            presence: Rc::clone(self),
            subscribers: Rc::clone(subscribers),
        })
    }
}

/// One open stream of a viewer; dropping it (the stream closed) leaves.
#[derive(Debug)]
pub struct Watching {
    id: u64,
    presence: Rc<Presence>,
    subscribers: Rc<Subscribers>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let before = self.presence.viewers();
        self.presence
            .watchers
            .borrow_mut()
            .retain(|(id, _)| *id != self.id);
        if self.presence.viewers() != before {
            self.subscribers.broadcast(&self.presence.frame());
        }
    }
}
