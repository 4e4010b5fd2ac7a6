//! The session's repository panel as plain data: the repository and branch from
//! `GET /api/sessions/{id}/repo`, kept current by the timeline's latest
//! `repo_updated` and `pull_request_updated`, and the words and switches the panel
//! shows (commits ahead, files changed with their +/-, the pull request's state and
//! checks, whether "Push" and "Open pull request" may be pressed).
//!
//! Everything in a [`RepoState`] came out of the sandbox; the view writes these
//! strings as text nodes, never as markup.

use nightshift_protocol::repo::{
    ChangedFile, ChecksSummary, FileChange, PullRequestInfo, PullRequestRequest, PullRequestState,
    PullRequestSummary, RepoPhase, RepoState, RepoView, SessionRepo,
};
use nightshift_protocol::roles::SessionRole;

/// What the panel shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoPanel {
    pub repo: Option<SessionRepo>,
    pub state: Option<RepoState>,
    pub pull_request: Option<PullRequestInfo>,
}

impl RepoPanel {
    /// The panel from the session's `GET /repo` answer and the timeline's latest
    /// events. The events win: the stream replays from the start, so whatever it
    /// holds is at least as new as an answer read alongside it.
    pub fn new(
        view: Option<&RepoView>,
        state: Option<&RepoState>,
        pull_request: Option<&PullRequestInfo>,
    ) -> RepoPanel {
        RepoPanel {
            repo: view.map(|v| v.repo.clone()),
            state: state
                .cloned()
                .or_else(|| view.and_then(|v| v.state.clone())),
            pull_request: pull_request
                .cloned()
                .or_else(|| view.and_then(|v| v.pull_request.clone())),
        }
    }

    pub fn phase(&self) -> RepoPhase {
        self.state.as_ref().map_or(RepoPhase::Cloning, |s| s.phase)
    }

    /// The branch checked out, else the session's own.
    pub fn branch(&self) -> Option<&str> {
        self.state
            .as_ref()
            .map(|s| s.branch.as_str())
            .filter(|b| !b.is_empty())
            .or_else(|| self.repo.as_ref().map(|r| r.branch.as_str()))
    }

    /// "Cloning…", "3 commits ahead of main, uncommitted changes", and so on.
    pub fn status_line(&self) -> String {
        let Some(state) = &self.state else {
            return "Cloning…".to_owned();
        };
        match state.phase {
            RepoPhase::Cloning => "Cloning…".to_owned(),
            RepoPhase::Failed => format!(
                "Clone failed: {}",
                state.error.as_deref().unwrap_or("no reason given")
            ),
            RepoPhase::Ready => {
                let base = self
                    .repo
                    .as_ref()
                    .map_or("base", |r| r.base_branch.as_str());
                let mut parts = vec![format!(
                    "{} ahead of {base}",
                    plural(state.ahead, "commit", "commits")
                )];
                if state.behind > 0 {
                    parts.push(format!("{} behind", state.behind));
                }
                if state.dirty {
                    parts.push("uncommitted changes".to_owned());
                }
                if state.pushed && state.ahead > 0 {
                    parts.push("pushed".to_owned());
                }
                parts.join(", ")
            }
        }
    }

    /// "Push failed: …" while the last push (from the UI or the agent's tool) has
    /// failed; git's words come from the sandbox and are shown as text only.
    pub fn push_failure(&self) -> Option<String> {
        let state = self.state.as_ref()?;
        let reason = state.push_error.as_deref()?.trim();
        Some(if reason.is_empty() {
            "Push failed.".to_owned()
        } else {
            format!("Push failed: {reason}")
        })
    }

    pub fn files(&self) -> &[ChangedFile] {
        self.state.as_ref().map_or(&[], |s| s.files.as_slice())
    }

    /// Lines added and removed over every listed file.
    pub fn totals(&self) -> (u32, u32) {
        self.files().iter().fold((0, 0), |(a, d), f| {
            (a.saturating_add(f.additions), d.saturating_add(f.deletions))
        })
    }

    /// "2 files changed" (with the ones left out of the list counted).
    pub fn files_line(&self) -> String {
        let omitted = self.state.as_ref().map_or(0, |s| s.files_omitted);
        let listed = u32::try_from(self.files().len()).unwrap_or(u32::MAX);
        plural(
            listed.saturating_add(omitted),
            "file changed",
            "files changed",
        )
    }

    /// Whether `role` may press "Push": collaborators and above, once the clone is
    /// ready and the branch has commits the server does not have yet (a push takes
    /// commits only; uncommitted changes stay where they are).
    pub fn can_push(&self, role: Option<SessionRole>) -> bool {
        may_act(role)
            && self
                .state
                .as_ref()
                .is_some_and(|s| s.phase == RepoPhase::Ready && s.ahead > 0 && !s.pushed)
    }

    /// Whether `role` may press "Open pull request" (or "Update pull request"): the
    /// branch must have commits; the server checks GitHub's own permissions.
    pub fn can_open_pull_request(&self, role: Option<SessionRole>) -> bool {
        may_act(role)
            && self
                .state
                .as_ref()
                .is_some_and(|s| s.phase == RepoPhase::Ready && s.ahead > 0)
    }

    /// What "Open pull request" sends: a new pull request needs a title, taken
    /// from the session's (else the branch's name); an existing one keeps its own
    /// title and body. Draft or not is the team's setting.
    pub fn pull_request_request(&self, session_title: &str) -> PullRequestRequest {
        if self.pull_request.is_some() {
            return PullRequestRequest::default();
        }
        let title = Some(session_title.trim())
            .filter(|t| !t.is_empty())
            .or(self.branch())
            .unwrap_or("Changes from Nightshift");
        PullRequestRequest {
            title: Some(title.to_owned()),
            ..PullRequestRequest::default()
        }
    }

    pub fn pull_request_button(&self) -> &'static str {
        if self.pull_request.is_some() {
            "Update pull request"
        } else {
            "Open pull request"
        }
    }
}

/// A role that may change the session; `None` (not loaded yet) too, since the
/// server decides anyway and a control that flickers off is worse.
fn may_act(role: Option<SessionRole>) -> bool {
    role.is_none_or(SessionRole::can_prompt)
}

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The one letter a changed file's row starts with, as git prints it.
pub fn change_letter(change: FileChange) -> &'static str {
    match change {
        FileChange::Added => "A",
        FileChange::Modified => "M",
        FileChange::Deleted => "D",
        FileChange::Renamed => "R",
    }
}

/// A pull request's state as shown and as its CSS modifier (`draft`, `open`, …).
pub fn pull_request_state(state: PullRequestState) -> &'static str {
    state.as_str()
}

/// The checks in words and as one overall kind for the badge's colour:
/// `failure` if any failed, else `pending` if any is still running, else `success`;
/// `none` without checks.
pub fn checks_summary(checks: &ChecksSummary) -> (String, &'static str) {
    if checks.total == 0 {
        return ("No checks".to_owned(), "none");
    }
    let mut parts = Vec::new();
    if checks.success > 0 {
        parts.push(format!("{} passed", checks.success));
    }
    if checks.failure > 0 {
        parts.push(format!("{} failed", checks.failure));
    }
    if checks.pending > 0 {
        parts.push(format!("{} pending", checks.pending));
    }
    let kind = if checks.failure > 0 {
        "failure"
    } else if checks.pending > 0 {
        "pending"
    } else {
        "success"
    };
    let total = plural(checks.total, "check", "checks");
    (format!("{total}: {}", parts.join(", ")), kind)
}

/// Where a "Connect GitHub" or "Reconnect GitHub" button goes: the server's
/// `connect_url` with `return_to` set to `here` (percent-encoded), so the user comes
/// back to the form or session they left. `None` for a URL that is neither a path
/// on this origin nor `http(s)`: the button then does not appear.
pub fn connect_href(connect_url: &str, here: &str) -> Option<String> {
    let local = connect_url.starts_with('/') && !connect_url.starts_with("//");
    let remote = connect_url.starts_with("https://") || connect_url.starts_with("http://");
    if !(local || remote) || connect_url.chars().any(char::is_control) {
        return None;
    }
    let separator = if connect_url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{connect_url}{separator}return_to={}",
        percent_encode(here)
    ))
}

/// Every byte but the unreserved ones as `%XX` (a query value's encoding).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A session list row's pull request badge: `#12 open`.
pub fn pull_request_badge(pull_request: &PullRequestSummary) -> String {
    format!(
        "#{} {}",
        pull_request.number,
        pull_request_state(pull_request.state)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightshift_protocol::repo::GitAuthor;

    fn repo() -> SessionRepo {
        SessionRepo {
            full_name: "acme/web".into(),
            clone_url: "https://github.com/acme/web.git".into(),
            base_branch: "main".into(),
            branch: "nightshift/ab12cd34-fix".into(),
            existing_branch: false,
            author: GitAuthor {
                name: "Ada".into(),
                email: "1+ada@users.noreply.github.com".into(),
            },
        }
    }

    fn ready(ahead: u32, pushed: bool, dirty: bool) -> RepoState {
        RepoState {
            phase: RepoPhase::Ready,
            branch: "nightshift/ab12cd34-fix".into(),
            ahead,
            pushed,
            dirty,
            files: vec![
                ChangedFile {
                    path: "src/a.rs".into(),
                    change: FileChange::Modified,
                    old_path: None,
                    additions: 3,
                    deletions: 1,
                    binary: false,
                },
                ChangedFile {
                    path: "b.txt".into(),
                    change: FileChange::Added,
                    old_path: None,
                    additions: 2,
                    deletions: 0,
                    binary: false,
                },
            ],
            files_omitted: 1,
            ..RepoState::default()
        }
    }

    #[test]
    fn a_failed_push_is_said_until_one_succeeds() {
        let mut state = ready(2, false, false);
        assert_eq!(
            RepoPanel::new(None, Some(&state), None).push_failure(),
            None
        );
        state.push_error = Some("remote: Permission denied\nfatal: unable to access".into());
        let panel = RepoPanel::new(None, Some(&state), None);
        assert_eq!(
            panel.push_failure().as_deref(),
            Some("Push failed: remote: Permission denied\nfatal: unable to access")
        );
        // The branch still has commits the server lacks: pushing again is offered.
        assert!(panel.can_push(Some(SessionRole::Owner)));
        state.push_error = Some("  ".into());
        assert_eq!(
            RepoPanel::new(None, Some(&state), None)
                .push_failure()
                .as_deref(),
            Some("Push failed.")
        );
    }

    fn pr(number: u64) -> PullRequestInfo {
        PullRequestInfo {
            number,
            url: format!("https://github.com/acme/web/pull/{number}"),
            title: "Fix".into(),
            state: PullRequestState::Draft,
            checks: ChecksSummary::default(),
            author: None,
        }
    }

    #[test]
    fn the_timelines_events_win_over_the_first_answer() {
        let view = RepoView {
            repo: repo(),
            state: Some(RepoState::default()),
            pull_request: Some(pr(1)),
        };
        let state = ready(2, false, false);
        let panel = RepoPanel::new(Some(&view), Some(&state), Some(&pr(2)));
        assert_eq!(panel.phase(), RepoPhase::Ready);
        assert_eq!(panel.pull_request.as_ref().map(|p| p.number), Some(2));
        let panel = RepoPanel::new(Some(&view), None, None);
        assert_eq!(panel.phase(), RepoPhase::Cloning);
        assert_eq!(panel.pull_request.as_ref().map(|p| p.number), Some(1));
        assert_eq!(panel.branch(), Some("nightshift/ab12cd34-fix"));
    }

    #[test]
    fn the_status_line_says_where_the_branch_stands() {
        let mut panel = RepoPanel::new(None, None, None);
        assert_eq!(panel.status_line(), "Cloning…");
        panel.repo = Some(repo());
        panel.state = Some(ready(1, false, true));
        assert_eq!(
            panel.status_line(),
            "1 commit ahead of main, uncommitted changes"
        );
        panel.state = Some(ready(3, true, false));
        assert_eq!(panel.status_line(), "3 commits ahead of main, pushed");
        panel.state = Some(RepoState {
            phase: RepoPhase::Failed,
            error: Some("<b>denied</b>".into()),
            ..RepoState::default()
        });
        assert_eq!(panel.status_line(), "Clone failed: <b>denied</b>");
    }

    #[test]
    fn files_are_counted_and_totalled() {
        let panel = RepoPanel::new(None, Some(&ready(1, false, false)), None);
        assert_eq!(panel.totals(), (5, 1));
        assert_eq!(panel.files_line(), "3 files changed");
        assert_eq!(change_letter(panel.files()[1].change), "A");
    }

    #[test]
    fn viewers_cannot_push_or_open_a_pull_request() {
        let panel = RepoPanel::new(None, Some(&ready(1, false, false)), None);
        for role in [SessionRole::Collaborator, SessionRole::Owner] {
            assert!(panel.can_push(Some(role)));
            assert!(panel.can_open_pull_request(Some(role)));
        }
        assert!(!panel.can_push(Some(SessionRole::Viewer)));
        assert!(!panel.can_open_pull_request(Some(SessionRole::Viewer)));
        assert_eq!(panel.pull_request_button(), "Open pull request");
    }

    #[test]
    fn nothing_to_push_or_propose_disables_the_buttons() {
        let owner = Some(SessionRole::Owner);
        let pushed = RepoPanel::new(None, Some(&ready(1, true, false)), Some(&pr(4)));
        assert!(!pushed.can_push(owner));
        assert!(pushed.can_open_pull_request(owner));
        assert_eq!(pushed.pull_request_button(), "Update pull request");
        let empty = RepoPanel::new(None, Some(&ready(0, false, true)), None);
        assert!(!empty.can_open_pull_request(owner));
        assert!(
            !empty.can_push(owner),
            "uncommitted changes alone push nothing"
        );
        let cloning = RepoPanel::new(None, None, None);
        assert!(!cloning.can_push(owner));
    }

    #[test]
    fn a_new_pull_request_is_titled_after_the_session_and_an_open_one_kept() {
        let state = ready(1, true, false);
        let new = RepoPanel::new(None, Some(&state), None);
        assert_eq!(
            new.pull_request_request("  Fix the login  ")
                .title
                .as_deref(),
            Some("Fix the login")
        );
        assert_eq!(
            new.pull_request_request(" ").title.as_deref(),
            Some("nightshift/ab12cd34-fix")
        );
        let open = RepoPanel::new(None, Some(&state), Some(&pr(3)));
        assert_eq!(
            open.pull_request_request("Fix"),
            PullRequestRequest::default()
        );
    }

    #[test]
    fn checks_read_as_words_and_one_colour() {
        let none = ChecksSummary::default();
        assert_eq!(checks_summary(&none), ("No checks".into(), "none"));
        let mixed = ChecksSummary {
            total: 4,
            pending: 1,
            success: 2,
            failure: 1,
        };
        assert_eq!(
            checks_summary(&mixed),
            ("4 checks: 2 passed, 1 failed, 1 pending".into(), "failure")
        );
        let running = ChecksSummary {
            total: 1,
            pending: 1,
            ..none
        };
        assert_eq!(checks_summary(&running).1, "pending");
        let green = ChecksSummary {
            total: 2,
            success: 2,
            ..none
        };
        assert_eq!(
            checks_summary(&green),
            ("2 checks: 2 passed".into(), "success")
        );
    }

    #[test]
    fn connect_links_come_back_here_and_stay_on_http() {
        assert_eq!(
            connect_href("/auth/github/connect", "/sessions/a b").as_deref(),
            Some("/auth/github/connect?return_to=%2Fsessions%2Fa%20b")
        );
        assert_eq!(
            connect_href("https://ns.example/auth/github/connect?x=1", "/").as_deref(),
            Some("https://ns.example/auth/github/connect?x=1&return_to=%2F")
        );
        for bad in [
            "javascript:alert(1)",
            "//evil.example/x",
            "auth/github",
            "/a\nb",
        ] {
            assert_eq!(connect_href(bad, "/"), None, "{bad:?}");
        }
    }

    #[test]
    fn a_list_rows_badge_names_the_pull_request() {
        let summary = PullRequestSummary {
            number: 12,
            state: PullRequestState::Merged,
            url: "u".into(),
        };
        assert_eq!(pull_request_badge(&summary), "#12 merged");
    }
}
