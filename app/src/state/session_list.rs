//! The sidebar's sessions, newest first, kept live from `GET /api/events`.
//!
//! Snapshots (`GET /api/sessions`) and list events may arrive in either order: the
//! list is a union keyed by session id; a deleted session leaves it. What the
//! sidebar shows of it is what the chosen filter keeps ([`shows`]): the server
//! filters each snapshot the same way, and this keeps sessions the stream announces
//! (or archives) in step with it.

use nightshift_protocol::api::{Session, SessionStatus};
use nightshift_protocol::auth::SessionRole;
use nightshift_protocol::events::SessionListEvent;
use nightshift_protocol::repo::{PullRequestInfo, PullRequestSummary};
use nightshift_protocol::session_list::{ArchivedFilter, ListFilter, ListScope};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionList {
    sessions: Vec<Session>,
}

impl SessionList {
    /// Newest first.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    pub fn get(&self, id: &str) -> Option<&Session> {
        self.sessions.iter().find(|session| session.id == id)
    }

    /// Applies one change from `GET /api/events`.
    pub fn apply(&mut self, event: SessionListEvent) {
        match event {
            SessionListEvent::SessionCreated { session } => self.upsert(session),
            SessionListEvent::SessionStatusChanged { session_id, status } => {
                self.set_status(&session_id, status);
            }
            SessionListEvent::SessionTitleChanged { session_id, title } => {
                if let Some(session) = self.get_mut(&session_id) {
                    session.title = title;
                }
            }
            SessionListEvent::SessionDeleted { session_id } => self.remove(&session_id),
            // The inbox's own (`crate::inbox`); it changes nothing in the list.
            SessionListEvent::InboxChanged { .. } => {}
        }
    }

    /// Adds a session or replaces the one with its id.
    pub fn upsert(&mut self, session: Session) {
        match self.get_mut(&session.id) {
            Some(existing) => *existing = session,
            None => self.sessions.push(session),
        }
        self.sort();
    }

    pub fn set_status(&mut self, session_id: &str, status: SessionStatus) {
        if let Some(session) = self.get_mut(session_id) {
            session.status = status;
        }
    }

    /// The session's pull request changed (its page saw `pull_request_updated`):
    /// the row's badge follows without waiting for the next snapshot. A session
    /// without a repository in the list is left alone.
    pub fn set_pull_request(&mut self, session_id: &str, pull_request: &PullRequestInfo) {
        if let Some(repo) = self
            .get_mut(session_id)
            .and_then(|session| session.repo.as_mut())
        {
            repo.pull_request = Some(PullRequestSummary {
                number: pull_request.number,
                state: pull_request.state,
                url: pull_request.url.clone(),
            });
        }
    }

    /// Merges a full `GET /api/sessions` answer: its sessions replace the ones with the
    /// same id; sessions only this list knows (created after the snapshot was taken)
    /// stay.
    pub fn merge_snapshot(&mut self, sessions: Vec<Session>) {
        for session in sessions {
            match self.get_mut(&session.id) {
                Some(existing) => *existing = session,
                None => self.sessions.push(session),
            }
        }
        self.sort();
    }

    /// Forgets the session `id` (deleted).
    pub fn remove(&mut self, id: &str) {
        self.sessions.retain(|session| session.id != id);
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|session| session.id == id)
    }

    /// Newest first; ties broken by id so the order never flickers between renders.
    fn sort(&mut self) {
        self.sessions.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
    }
}

/// Whether the list filtered by `filter` shows `session`, for a viewer who is (or is
/// not) a team admin: the rules of `GET /api/sessions`, applied to what the stream
/// brings between snapshots.
pub fn shows(filter: &ListFilter, admin: bool, session: &Session) -> bool {
    let archived = session.archived_at.is_some() || session.status == SessionStatus::Archived;
    let archived_ok = match filter.archived {
        ArchivedFilter::Hide => !archived,
        ArchivedFilter::Only => archived,
        ArchivedFilter::Any => true,
    };
    let shared = matches!(
        session.my_role,
        Some(SessionRole::CoOwner | SessionRole::Collaborator | SessionRole::Viewer)
    );
    let scope_ok = match filter.scope {
        None => true,
        Some(ListScope::Mine) => session.my_role == Some(SessionRole::Owner),
        Some(ListScope::Shared) => shared,
        Some(ListScope::Team) => admin || shared,
    };
    let title = session.title.to_lowercase();
    archived_ok
        && scope_ok
        && filter
            .words
            .iter()
            .all(|word| title.contains(word.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, created_at: i64) -> Session {
        Session {
            id: id.into(),
            title: String::new(),
            status: SessionStatus::Provisioning,
            agent: Default::default(),
            model: None,
            permission_mode: Default::default(),
            usage: Default::default(),
            owner_id: "local".into(),
            sandbox_id: None,
            error: None,
            created_at,
            updated_at: created_at,
            my_role: None,
            owner: None,
            llm_source: None,
            repo: None,
            archived_at: None,
        }
    }

    #[test]
    fn the_filter_keeps_what_the_server_would_list() {
        let mut mine = session("m", 1);
        mine.title = "Fix the Build".into();
        mine.my_role = Some(SessionRole::Owner);
        let mut shared = session("s", 2);
        shared.my_role = Some(SessionRole::Viewer);
        let mut archived = session("a", 3);
        archived.my_role = Some(SessionRole::Owner);
        archived.status = SessionStatus::Archived;
        let filter = |scope: Option<&str>, q: Option<&str>, archived: Option<&str>| {
            ListFilter::parse(scope, q, archived).unwrap()
        };
        let default = ListFilter::default();
        assert!(shows(&default, false, &mine) && shows(&default, false, &shared));
        assert!(
            !shows(&default, false, &archived),
            "archived ones are hidden"
        );
        assert!(shows(&filter(None, None, Some("any")), false, &archived));
        assert!(!shows(&filter(None, None, Some("true")), false, &mine));
        assert!(shows(&filter(None, Some("BUILD fix"), None), false, &mine));
        assert!(!shows(
            &filter(None, Some("build deploy"), None),
            false,
            &mine
        ));
        let only_mine = filter(Some("mine"), None, None);
        assert!(shows(&only_mine, false, &mine) && !shows(&only_mine, false, &shared));
        let shared_only = filter(Some("shared"), None, None);
        assert!(!shows(&shared_only, true, &mine) && shows(&shared_only, false, &shared));
        let team = filter(Some("team"), None, None);
        assert!(shows(&team, true, &mine), "an admin's team is everyone's");
        assert!(!shows(&team, false, &mine) && shows(&team, false, &shared));
    }

    fn ids(list: &SessionList) -> Vec<&str> {
        list.sessions()
            .iter()
            .map(|session| session.id.as_str())
            .collect()
    }

    #[test]
    fn created_sessions_appear_newest_first() {
        let mut list = SessionList::default();
        list.apply(SessionListEvent::SessionCreated {
            session: session("old", 1),
        });
        list.apply(SessionListEvent::SessionCreated {
            session: session("new", 2),
        });
        list.apply(SessionListEvent::SessionCreated {
            session: session("new", 2),
        });
        assert_eq!(ids(&list), ["new", "old"]);
    }

    #[test]
    fn status_and_title_changes_update_the_row() {
        let mut list = SessionList::default();
        list.upsert(session("a", 1));
        list.apply(SessionListEvent::SessionStatusChanged {
            session_id: "a".into(),
            status: SessionStatus::Running,
        });
        list.apply(SessionListEvent::SessionTitleChanged {
            session_id: "a".into(),
            title: "Fix the build".into(),
        });
        // Changes to sessions the list does not know are ignored, not invented.
        list.apply(SessionListEvent::SessionTitleChanged {
            session_id: "zzz".into(),
            title: "ghost".into(),
        });
        let a = list.get("a").expect("a is listed");
        assert_eq!(
            (a.status, a.title.as_str()),
            (SessionStatus::Running, "Fix the build")
        );
        assert_eq!(list.sessions().len(), 1);
    }

    #[test]
    fn a_pull_request_change_updates_the_rows_badge() {
        use nightshift_protocol::repo::{PullRequestState, SessionRepoSummary};
        let mut list = SessionList::default();
        let mut with_repo = session("a", 1);
        with_repo.repo = Some(SessionRepoSummary {
            full_name: "acme/web".into(),
            branch: "nightshift/a-fix".into(),
            base_branch: "main".into(),
            pull_request: None,
        });
        list.upsert(with_repo);
        list.upsert(session("plain", 2));
        let pr = PullRequestInfo {
            number: 9,
            url: "https://github.com/acme/web/pull/9".into(),
            title: "Fix".into(),
            state: PullRequestState::Open,
            checks: Default::default(),
            author: None,
        };
        list.set_pull_request("a", &pr);
        list.set_pull_request("plain", &pr);
        list.set_pull_request("missing", &pr);
        let badge = list
            .get("a")
            .and_then(|s| s.repo.as_ref()?.pull_request.clone());
        assert_eq!(
            badge.map(|b| (b.number, b.state)),
            Some((9, PullRequestState::Open))
        );
        assert_eq!(list.get("plain").and_then(|s| s.repo.clone()), None);
    }

    #[test]
    fn a_snapshot_merges_with_sessions_seen_on_the_stream() {
        let mut list = SessionList::default();
        list.apply(SessionListEvent::SessionCreated {
            session: session("fresh", 5),
        });
        let mut stale = session("a", 1);
        stale.title = "from snapshot".into();
        list.merge_snapshot(vec![stale, session("b", 3)]);
        assert_eq!(ids(&list), ["fresh", "b", "a"]);
        assert_eq!(
            list.get("a").map(|a| a.title.as_str()),
            Some("from snapshot")
        );
    }
}
