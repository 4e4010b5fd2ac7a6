//! The user's inbox as the app shows it: the entries loaded so far, the unread count,
//! and the rules of telling (the tab title's count, when a new entry becomes a
//! browser notification and what it says).
//!
//! A new entry arrives on the session-list stream (`inbox_changed`) with the count
//! as the server has it; marks made here take effect at once and the server's next
//! count confirms them. A notification is shown only for an entry not seen before,
//! and only when the user is not already looking at its session: the tab is hidden,
//! or another page is on screen.

use nightshift_protocol::inbox::{InboxEntry, InboxPage};

/// The inbox's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbox {
    /// Newest first.
    pub entries: Vec<InboxEntry>,
    pub unread: u32,
    pub next_cursor: Option<String>,
    pub loaded: bool,
}

impl Inbox {
    /// Takes the first page as the server has it now (a reload).
    pub fn load_first(&mut self, page: InboxPage) {
        self.entries = page.entries;
        self.unread = page.unread;
        self.next_cursor = page.next_cursor;
        self.loaded = true;
    }

    /// Adds an older page below the entries known.
    pub fn load_more(&mut self, page: InboxPage) {
        for entry in page.entries {
            if !self.entries.iter().any(|known| known.id == entry.id) {
                self.entries.push(entry);
            }
        }
        self.unread = page.unread;
        self.next_cursor = page.next_cursor;
    }

    /// An `inbox_changed` event; answers the entry when it is new (to notify).
    pub fn apply(&mut self, entry: Option<InboxEntry>, unread: u32) -> Option<InboxEntry> {
        self.unread = unread;
        let entry = entry?;
        if self.entries.iter().any(|known| known.id == entry.id) {
            return None;
        }
        self.entries.insert(0, entry.clone());
        Some(entry)
    }

    /// Marks `ids` read at `now` (every entry when `ids` is empty).
    pub fn mark_read(&mut self, ids: &[String], now: i64) {
        for entry in &mut self.entries {
            if entry.read_at.is_none() && (ids.is_empty() || ids.contains(&entry.id)) {
                entry.read_at = Some(now);
                self.unread = self.unread.saturating_sub(1);
            }
        }
        if ids.is_empty() {
            self.unread = 0;
        }
    }

    /// The unread entries' ids of `session_id` (read when its page is opened).
    pub fn unread_of(&self, session_id: &str) -> Vec<String> {
        self.entries
            .iter()
            .filter(|entry| entry.read_at.is_none() && entry.session_id == session_id)
            .map(|entry| entry.id.clone())
            .collect()
    }
}

/// The tab's title: `(3) Nightshift` while 3 entries are unread, else `Nightshift`.
pub fn tab_title(unread: u32) -> String {
    if unread == 0 {
        "Nightshift".to_owned()
    } else {
        format!("({unread}) Nightshift")
    }
}

/// Whether a new entry of `session_id` becomes a browser notification: when the tab
/// is hidden, or when the page on screen is not that session's.
pub fn should_notify(session_id: &str, tab_hidden: bool, session_on_screen: Option<&str>) -> bool {
    tab_hidden || session_on_screen != Some(session_id)
}

/// A notification's title (the session's) and body (what happened).
pub fn notification_text(entry: &InboxEntry) -> (String, String) {
    let title = if entry.title.trim().is_empty() {
        "Nightshift".to_owned()
    } else {
        entry.title.clone()
    };
    (title, format!("{}: {}", entry.kind.headline(), entry.text))
}

/// The session a page of the app shows, from its path (`/sessions/{id}`).
pub fn session_of_path(path: &str) -> Option<&str> {
    path.strip_prefix("/sessions/")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::inbox::InboxKind;

    use super::*;

    fn entry(id: &str, session: &str) -> InboxEntry {
        InboxEntry {
            id: id.into(),
            session_id: session.into(),
            kind: InboxKind::TurnFinished,
            title: "Fix the build".into(),
            text: "All green.".into(),
            created_at: 1,
            read_at: None,
        }
    }

    #[test]
    fn a_new_entry_is_added_once_and_only_a_new_one_notifies() {
        let mut inbox = Inbox::default();
        assert_eq!(
            inbox.apply(Some(entry("e1", "s1")), 1),
            Some(entry("e1", "s1"))
        );
        assert_eq!(inbox.apply(Some(entry("e1", "s1")), 1), None);
        assert_eq!(inbox.apply(None, 0), None);
        assert_eq!(inbox.entries.len(), 1);
        assert_eq!(inbox.unread, 0, "the server's count wins");
    }

    #[test]
    fn marks_count_down_and_all_clears() {
        let mut inbox = Inbox::default();
        inbox.load_first(InboxPage {
            entries: vec![entry("e2", "s1"), entry("e1", "s2")],
            unread: 2,
            next_cursor: None,
        });
        assert_eq!(inbox.unread_of("s1"), ["e2"]);
        inbox.mark_read(&["e2".to_owned()], 5);
        assert_eq!(inbox.unread, 1);
        assert_eq!(inbox.entries[0].read_at, Some(5));
        inbox.mark_read(&["e2".to_owned()], 6);
        assert_eq!(inbox.unread, 1, "marking twice counts once");
        inbox.mark_read(&[], 7);
        assert_eq!(inbox.unread, 0);
        assert!(inbox.entries.iter().all(|entry| entry.read_at.is_some()));
    }

    #[test]
    fn the_title_counts_and_notifications_skip_the_session_on_screen() {
        assert_eq!(tab_title(0), "Nightshift");
        assert_eq!(tab_title(3), "(3) Nightshift");
        assert!(!should_notify("s1", false, Some("s1")));
        assert!(should_notify("s1", true, Some("s1")));
        assert!(should_notify("s1", false, Some("s2")));
        assert!(should_notify("s1", false, None));
        assert_eq!(session_of_path("/sessions/s1"), Some("s1"));
        assert_eq!(session_of_path("/settings"), None);
        let (title, body) = notification_text(&entry("e1", "s1"));
        assert_eq!(
            (title.as_str(), body.as_str()),
            ("Fix the build", "Finished: All green.")
        );
    }
}
