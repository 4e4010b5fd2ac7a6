//! Repo-aware sessions: the GitHub repository a session works on, its working
//! branch, what the agent changed, and the pull request it hands back.
//!
//! Who speaks what:
//! - The browser and the CLI choose a repository with [`RepoChoice`] in
//!   `POST /api/sessions`, list what they may choose with `GET /api/github/repos`
//!   ([`RepoList`]) and `GET /api/github/repos/{owner}/{repo}/branches`
//!   ([`BranchList`]), and read a session's repository with
//!   `GET /api/sessions/{id}/repo` ([`RepoView`]) and its diff with
//!   `GET /api/sessions/{id}/diff` ([`DiffView`]).
//! - The `SessionAgent` hands its runner the [`SessionRepo`] in every `welcome`; the
//!   runner clones it into the workspace (once), and reports what it sees with
//!   `repo` frames ([`RepoState`]), which the `SessionAgent` stores (latest wins) and
//!   passes on as `repo_updated` events.
//! - The runner asks for a git credential (`POST /api/sessions/{id}/git/credential`,
//!   [`CredentialRequest`] -> [`GitCredential`]) and for a pull request
//!   (`POST /api/sessions/{id}/git/pull-request`, [`PullRequestRequest`] ->
//!   [`PullRequestInfo`]) with its runner token; the Worker answers for the
//!   session's repository only.
//!
//! Everything in a [`RepoState`] comes out of the sandbox, so it is bounded here
//! ([`RepoState::check`]) and the app renders it as text only.

use serde::{Deserialize, Serialize};

use crate::redacted::Redacted;

/// The most changed files a [`RepoState`] lists; the rest are counted in
/// [`RepoState::files_omitted`].
pub const MAX_REPO_STATE_FILES: usize = 500;

/// The longest path a [`ChangedFile`] may carry, in bytes.
pub const MAX_REPO_PATH_BYTES: usize = 1024;

/// The longest branch name accepted anywhere (git itself has no limit; GitHub's
/// refs are bounded well below this).
pub const MAX_BRANCH_BYTES: usize = 255;

/// The most bytes of diff `GET /api/sessions/{id}/diff` returns; a larger diff is
/// cut per file and marked [`FileDiff::truncated`].
pub const MAX_DIFF_BYTES: usize = 1024 * 1024;

/// A repository's "owner/name" on its host, checked: both parts non-empty, made of
/// the characters GitHub allows (ASCII letters, digits, `-`, `_`, `.`), not `.` or
/// `..`, at most 100 bytes each.
pub fn valid_full_name(full_name: &str) -> bool {
    let Some((owner, name)) = full_name.split_once('/') else {
        return false;
    };
    let part = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    part(owner) && part(name)
}

/// A branch name git and GitHub both accept, checked conservatively (a subset of
/// `git check-ref-format --branch`): no leading `-` or `/`, no `..`, no `@{`, no
/// control characters, spaces or `~^:?*[\`, no trailing `/`, `.` or `.lock`.
pub fn valid_branch(branch: &str) -> bool {
    !branch.is_empty()
        && branch.len() <= MAX_BRANCH_BYTES
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("@{")
        && !branch.contains("//")
        && !branch.contains("/.")
        && branch != "@"
        && branch.chars().all(|c| {
            !c.is_control() && !matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        })
}

/// `POST /api/sessions` `repo`: the repository to work on and where to start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoChoice {
    /// `owner/name` as GitHub spells it.
    pub full_name: String,
    /// The branch to start from and to open the pull request against; the
    /// repository's default branch when absent.
    #[serde(default)]
    pub base_branch: Option<String>,
    /// Continue an existing branch instead of making a new one: the session works on
    /// (and pushes to) this branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// Continue an existing pull request: its head branch becomes the session's
    /// branch, its base the base branch, and the session updates that pull request.
    #[serde(default)]
    pub pull_request: Option<u64>,
}

/// The repository a session works on, as the `SessionAgent` keeps it and hands it to
/// its runner in `welcome`. Holds no credential: git asks for one through the
/// runner's credential helper when it needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRepo {
    /// `owner/name`.
    pub full_name: String,
    /// The HTTPS URL git clones and pushes (`https://github.com/owner/name.git`, or
    /// the deployment's GitHub host); never with a user or password in it.
    pub clone_url: String,
    /// The branch the work starts from and the pull request targets.
    pub base_branch: String,
    /// The session's own branch (`nightshift/<short id>-<slug>`, or the existing
    /// branch the session continues).
    pub branch: String,
    /// Whether `branch` already exists on the server (continuing a branch or a
    /// pull request): the runner checks it out instead of creating it.
    #[serde(default)]
    pub existing_branch: bool,
    /// Who commits: the session owner's name and their GitHub no-reply (or verified)
    /// email. The runner sets it for the session's author unless a turn's prompter
    /// differs (see [`GitAuthor`] in the `prompt` frame).
    pub author: GitAuthor,
}

/// A commit author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitAuthor {
    pub name: String,
    pub email: String,
}

/// Where the runner's clone of the session's repository stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoPhase {
    /// Not cloned yet, or cloning.
    #[default]
    Cloning,
    /// Cloned and on the session's branch.
    Ready,
    /// The clone (or checking out the branch) failed; [`RepoState::error`] says why.
    Failed,
}

/// How a file differs from the merge base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    Added,
    Modified,
    Deleted,
    Renamed,
}

/// One changed file of a [`RepoState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFile {
    pub path: String,
    pub change: FileChange,
    /// The path before a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// Lines added and removed; both 0 for a binary file.
    pub additions: u32,
    pub deletions: u32,
    #[serde(default)]
    pub binary: bool,
}

/// What the runner sees in the session's repository: sent in `repo` frames after the
/// clone, after commands and file edits, after a push and at the end of each turn
/// (only when it changed). Compared with the merge base of the branch and
/// `origin/<base_branch>`, committed and uncommitted work together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoState {
    pub phase: RepoPhase,
    /// Why the phase is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The branch checked out (the session's branch unless the agent moved).
    #[serde(default)]
    pub branch: String,
    /// The commit checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Commits on the branch that the base branch does not have.
    #[serde(default)]
    pub ahead: u32,
    /// Commits on the base branch that the branch does not have.
    #[serde(default)]
    pub behind: u32,
    /// Whether the working tree has changes not committed.
    #[serde(default)]
    pub dirty: bool,
    /// Whether the server's copy of the branch is the checked-out commit.
    #[serde(default)]
    pub pushed: bool,
    /// Changed files against the merge base, at most [`MAX_REPO_STATE_FILES`].
    #[serde(default)]
    pub files: Vec<ChangedFile>,
    /// Changed files left out of `files`.
    #[serde(default)]
    pub files_omitted: u32,
    /// Why the last push failed (git's own words from the sandbox, cut to 4 KiB);
    /// none once a push succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_error: Option<String>,
}

impl RepoState {
    /// Whether a state a runner sent stays within the bounds above; the
    /// `SessionAgent` drops one that does not (and says so in an `error` event).
    pub fn check(&self) -> Result<(), &'static str> {
        if self.files.len() > MAX_REPO_STATE_FILES {
            return Err("too many files");
        }
        if self.branch.len() > MAX_BRANCH_BYTES {
            return Err("branch name too long");
        }
        if self.head.as_ref().is_some_and(|h| h.len() > 64) {
            return Err("head too long");
        }
        if self.error.as_ref().is_some_and(|e| e.len() > 4096) {
            return Err("error too long");
        }
        if self.push_error.as_ref().is_some_and(|e| e.len() > 4096) {
            return Err("push error too long");
        }
        let long = |p: &String| p.len() > MAX_REPO_PATH_BYTES;
        if self
            .files
            .iter()
            .any(|f| long(&f.path) || f.old_path.as_ref().is_some_and(long))
        {
            return Err("path too long");
        }
        Ok(())
    }
}

/// A pull request's state as GitHub reports it, with drafts apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestState {
    Draft,
    Open,
    Closed,
    Merged,
}

impl PullRequestState {
    /// The wire name, which the app and the CLI also show.
    pub fn as_str(self) -> &'static str {
        match self {
            PullRequestState::Draft => "draft",
            PullRequestState::Open => "open",
            PullRequestState::Closed => "closed",
            PullRequestState::Merged => "merged",
        }
    }
}

/// The check runs of a pull request's head commit, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksSummary {
    pub total: u32,
    pub pending: u32,
    pub success: u32,
    pub failure: u32,
}

/// A session's pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestInfo {
    pub number: u64,
    pub url: String,
    pub title: String,
    pub state: PullRequestState,
    #[serde(default)]
    pub checks: ChecksSummary,
    /// The GitHub login that opened it (the user who asked for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// A session's repository in lists (`Session::repo`): enough for a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRepoSummary {
    pub full_name: String,
    pub branch: String,
    pub base_branch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestSummary>,
}

/// A pull request in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestSummary {
    pub number: u64,
    pub state: PullRequestState,
    pub url: String,
}

/// `GET /api/sessions/{id}/repo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoView {
    pub repo: SessionRepo,
    /// The runner's latest report; `None` before the first.
    #[serde(default)]
    pub state: Option<RepoState>,
    #[serde(default)]
    pub pull_request: Option<PullRequestInfo>,
}

/// One file of `GET /api/sessions/{id}/diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub change: FileChange,
    /// The unified diff of this file (git's `diff --git` section, headers included);
    /// empty for a binary file.
    pub patch: String,
    #[serde(default)]
    pub binary: bool,
    /// The patch was cut at the size limit.
    #[serde(default)]
    pub truncated: bool,
}

/// `GET /api/sessions/{id}/diff`: the branch's work (committed or not) against the
/// merge base with the base branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffView {
    pub base_branch: String,
    #[serde(default)]
    pub merge_base: Option<String>,
    pub files: Vec<FileDiff>,
    /// Files left out at the size limit.
    #[serde(default)]
    pub files_omitted: u32,
}

/// One repository of `GET /api/github/repos`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSummary {
    pub full_name: String,
    pub private: bool,
    pub default_branch: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Whether the user may push (else a session on it cannot push or open a PR).
    #[serde(default)]
    pub can_push: bool,
}

/// `GET /api/github/repos?q=&page=`: the signed-in user's repositories that the team
/// allows, filtered by `q` (a substring of `owner/name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoList {
    pub repos: Vec<RepoSummary>,
    /// The page to ask for next, when there is one.
    #[serde(default)]
    pub next_page: Option<u32>,
}

/// `GET /api/github/repos/{owner}/{repo}/branches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchList {
    pub default_branch: String,
    pub branches: Vec<String>,
}

/// `GET /api/github`: whether the caller's GitHub account is connected for
/// repository access, and how to connect it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubConnection {
    /// A token with repository access is stored and was not found revoked.
    pub connected: bool,
    #[serde(default)]
    pub login: Option<String>,
    /// Where to send the browser to connect (or reconnect): `/auth/github/connect`.
    pub connect_url: String,
    /// Repositories and organisations the team allows (`owner/name` or `owner/*`);
    /// empty means every repository the user can reach.
    #[serde(default)]
    pub allowed: Vec<String>,
}

/// `POST /api/sessions/{id}/git/credential` (runner token): what git's credential
/// helper asked for, in git's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequest {
    /// `https` (the only one answered).
    pub protocol: String,
    /// `github.com` (with a port when there is one).
    pub host: String,
    /// `owner/name.git` (git sends it with `credential.useHttpPath`, which the
    /// runner sets).
    pub path: String,
}

/// A short-lived credential for the session's repository, for git's HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCredential {
    /// `x-access-token`.
    pub username: String,
    pub password: Redacted<String>,
    /// When it stops working (ms since the epoch); git is not told, the helper
    /// asks again after it.
    pub expires_at: i64,
}

/// `POST /api/sessions/{id}/pull-request` (browser: collaborators and above) and
/// `POST /api/sessions/{id}/git/pull-request` (runner token: the agent's tool).
/// Creates the session's pull request, or updates the one it has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequestRequest {
    /// Required to create; kept when updating if absent.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// The team's setting (draft by default) when absent.
    #[serde(default)]
    pub draft: Option<bool>,
}

/// `GET`/`PUT /api/admin/github` (admins): what the team may work on and how its
/// pull requests open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// `owner/name` or `owner/*` entries; empty allows every repository a member
    /// can reach with their own GitHub access.
    #[serde(default)]
    pub allowed_repos: Vec<String>,
    /// Whether pull requests open as drafts unless the request says otherwise.
    #[serde(default = "default_true")]
    pub draft_pull_requests: bool,
}

fn default_true() -> bool {
    true
}

impl Default for GithubSettings {
    fn default() -> Self {
        GithubSettings {
            allowed_repos: Vec::new(),
            draft_pull_requests: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names() {
        assert!(valid_full_name("octo-org/hello.world_2"));
        for bad in [
            "", "a", "/b", "a/", "a/b/c", "../b", "a/..", "a b/c", "a/%2e",
        ] {
            assert!(!valid_full_name(bad), "{bad}");
        }
        assert!(!valid_full_name(&format!("a/{}", "x".repeat(101))));
    }

    #[test]
    fn branches() {
        for good in ["main", "nightshift/ab12cd-fix-login", "release-1.2", "a.b"] {
            assert!(valid_branch(good), "{good}");
        }
        for bad in [
            "", "-x", "/x", "x/", "x.lock", "a..b", "a@{1}", "a b", "a~1", "a:b", "a\nb", "@",
            ".x", "a/.b", "a//b", "x.",
        ] {
            assert!(!valid_branch(bad), "{bad:?}");
        }
    }

    #[test]
    fn repo_state_bounds() {
        let mut state = RepoState {
            phase: RepoPhase::Ready,
            branch: "b".into(),
            ..Default::default()
        };
        assert!(state.check().is_ok());
        let file = ChangedFile {
            path: "x".repeat(MAX_REPO_PATH_BYTES + 1),
            change: FileChange::Added,
            old_path: None,
            additions: 1,
            deletions: 0,
            binary: false,
        };
        state.files.push(file.clone());
        assert_eq!(state.check(), Err("path too long"));
        state.files = vec![
            ChangedFile {
                path: "a".into(),
                ..file
            };
            MAX_REPO_STATE_FILES + 1
        ];
        assert_eq!(state.check(), Err("too many files"));
    }

    #[test]
    fn pull_request_states_print_as_their_wire_names() {
        for state in [
            PullRequestState::Draft,
            PullRequestState::Open,
            PullRequestState::Closed,
            PullRequestState::Merged,
        ] {
            let wire = serde_json::to_value(state).unwrap();
            assert_eq!(wire.as_str(), Some(state.as_str()));
        }
    }

    #[test]
    fn credential_debug_hides_the_password() {
        let c = GitCredential {
            username: "x-access-token".into(),
            password: "ghs_secret".to_string().into(),
            expires_at: 1,
        };
        assert!(!format!("{c:?}").contains("ghs_secret"));
        assert!(serde_json::to_string(&c).unwrap().contains("ghs_secret"));
    }
}
