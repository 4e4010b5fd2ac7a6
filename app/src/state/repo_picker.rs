//! The new-session form's repository picker as plain data: the search query, the
//! pages of `GET /api/github/repos?q=&page=` it has loaded, the repository chosen,
//! its base branch, and whether the session starts a new branch or continues an
//! existing branch or pull request.
//!
//! Answers may come back out of order while the user types, so every request the
//! picker asks for carries the query it was made for, and an answer for any other
//! query is dropped. [`RepoPicker::choice`] turns the form into the
//! `CreateSessionRequest::repo` it sends, refusing what the server would refuse
//! (`protocol::repo::valid_full_name` / `valid_branch`) before it is sent.

use nightshift_protocol::repo::{
    BranchList, RepoChoice, RepoList, RepoSummary, valid_branch, valid_full_name,
};

/// Where the session's branch comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StartFrom {
    /// A new branch from the base branch (the server names it).
    #[default]
    NewBranch,
    /// An existing branch, as typed.
    Branch(String),
    /// An existing pull request's number, as typed.
    PullRequest(String),
}

/// One page to ask `GET /api/github/repos` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoQuery {
    pub q: String,
    pub page: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoPicker {
    query: String,
    results: Vec<RepoSummary>,
    next_page: Option<u32>,
    /// The page being loaded, if any: answers for another are stale.
    loading: Option<RepoQuery>,
    selected: Option<RepoSummary>,
    branches: Vec<String>,
    base_branch: String,
    start_from: StartFrom,
}

impl RepoPicker {
    pub fn query(&self) -> &str {
        &self.query
    }

    pub fn results(&self) -> &[RepoSummary] {
        &self.results
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    pub fn has_more(&self) -> bool {
        self.next_page.is_some()
    }

    pub fn selected(&self) -> Option<&RepoSummary> {
        self.selected.as_ref()
    }

    /// The base branch's choices: the repository's branches once loaded, else its
    /// default branch alone.
    pub fn branches(&self) -> &[String] {
        &self.branches
    }

    pub fn base_branch(&self) -> &str {
        &self.base_branch
    }

    pub fn start_from(&self) -> &StartFrom {
        &self.start_from
    }

    /// The user typed `query`: the results start over, and this is the first page
    /// to load.
    /// The box keeps what was typed (a trailing space included, or typing one would
    /// eat it); the server is asked for it trimmed.
    pub fn search(&mut self, query: &str) -> RepoQuery {
        self.query = query.to_owned();
        self.results.clear();
        self.next_page = None;
        let request = RepoQuery {
            q: self.query.trim().to_owned(),
            page: 1,
        };
        self.loading = Some(request.clone());
        request
    }

    /// The next page of the current query, unless one is loading or there is none.
    pub fn load_more(&mut self) -> Option<RepoQuery> {
        if self.loading.is_some() {
            return None;
        }
        let request = RepoQuery {
            q: self.query.trim().to_owned(),
            page: self.next_page?,
        };
        self.loading = Some(request.clone());
        Some(request)
    }

    /// An answer for `request`; ignored (false) unless it is the page being loaded.
    pub fn on_page(&mut self, request: &RepoQuery, list: RepoList) -> bool {
        if self.loading.as_ref() != Some(request) {
            return false;
        }
        self.loading = None;
        for repo in list.repos {
            if !self.results.iter().any(|r| r.full_name == repo.full_name) {
                self.results.push(repo);
            }
        }
        // A server that names the page it just gave as the next one would loop.
        self.next_page = list.next_page.filter(|next| *next > request.page);
        true
    }

    /// Loading `request` failed: it may be asked again.
    pub fn on_failed(&mut self, request: &RepoQuery) {
        if self.loading.as_ref() == Some(request) {
            self.loading = None;
        }
    }

    /// Chooses the result named `full_name`; answers whether it is one. The base
    /// branch becomes its default branch until the branches arrive.
    pub fn select(&mut self, full_name: &str) -> bool {
        let Some(repo) = self.results.iter().find(|r| r.full_name == full_name) else {
            return false;
        };
        self.base_branch = repo.default_branch.clone();
        self.branches = vec![repo.default_branch.clone()];
        self.selected = Some(repo.clone());
        self.start_from = StartFrom::NewBranch;
        true
    }

    /// No repository: the session starts in an empty workspace, as without GitHub.
    pub fn clear(&mut self) {
        self.selected = None;
        self.branches.clear();
        self.base_branch.clear();
        self.start_from = StartFrom::NewBranch;
    }

    /// The chosen repository's branches arrived (ignored for another repository).
    pub fn on_branches(&mut self, full_name: &str, list: BranchList) {
        if self.selected.as_ref().map(|r| r.full_name.as_str()) != Some(full_name) {
            return;
        }
        let mut branches = list.branches;
        if !branches.contains(&list.default_branch) {
            branches.insert(0, list.default_branch.clone());
        }
        if !branches.contains(&self.base_branch) {
            self.base_branch = list.default_branch;
        }
        self.branches = branches;
    }

    pub fn set_base_branch(&mut self, branch: &str) {
        self.base_branch = branch.to_owned();
    }

    pub fn set_start_from(&mut self, start_from: StartFrom) {
        self.start_from = start_from;
    }

    /// What `POST /api/sessions` gets as `repo`: `None` without a repository, an
    /// error in words for a choice the server would refuse.
    pub fn choice(&self) -> Result<Option<RepoChoice>, String> {
        let Some(repo) = &self.selected else {
            return Ok(None);
        };
        repo_choice(
            &repo.full_name,
            Some(self.base_branch.as_str()).filter(|b| !b.is_empty()),
            &self.start_from,
        )
        .map(Some)
    }
}

/// A checked [`RepoChoice`] from what the form holds.
pub fn repo_choice(
    full_name: &str,
    base_branch: Option<&str>,
    start_from: &StartFrom,
) -> Result<RepoChoice, String> {
    if !valid_full_name(full_name) {
        return Err(format!("{full_name:?} is not a repository's owner/name"));
    }
    if let Some(base) = base_branch
        && !valid_branch(base)
    {
        return Err(format!("{base:?} is not a branch name"));
    }
    let mut choice = RepoChoice {
        full_name: full_name.to_owned(),
        base_branch: base_branch.map(str::to_owned),
        ..RepoChoice::default()
    };
    match start_from {
        StartFrom::NewBranch => {}
        StartFrom::Branch(branch) => {
            let branch = branch.trim();
            if !valid_branch(branch) {
                return Err(format!("{branch:?} is not a branch name"));
            }
            choice.branch = Some(branch.to_owned());
        }
        StartFrom::PullRequest(number) => {
            let number = number.trim().trim_start_matches('#');
            match number.parse::<u64>() {
                Ok(n) if n > 0 => choice.pull_request = Some(n),
                _ => return Err(format!("{number:?} is not a pull request number")),
            }
        }
    }
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(full_name: &str) -> RepoSummary {
        RepoSummary {
            full_name: full_name.into(),
            private: false,
            default_branch: "main".into(),
            description: None,
            can_push: true,
        }
    }

    fn page(names: &[&str], next_page: Option<u32>) -> RepoList {
        RepoList {
            repos: names.iter().map(|n| repo(n)).collect(),
            next_page,
        }
    }

    fn names(picker: &RepoPicker) -> Vec<&str> {
        picker
            .results()
            .iter()
            .map(|r| r.full_name.as_str())
            .collect()
    }

    #[test]
    fn an_answer_for_an_older_query_is_dropped() {
        let mut picker = RepoPicker::default();
        let first = picker.search("ac");
        let second = picker.search("acme/we");
        assert!(!picker.on_page(&first, page(&["acme/api"], None)));
        assert!(picker.on_page(&second, page(&["acme/web"], None)));
        assert_eq!(names(&picker), ["acme/web"]);
        assert!(!picker.is_loading());
    }

    #[test]
    fn pages_append_without_duplicates_and_stop_at_the_last() {
        let mut picker = RepoPicker::default();
        let first = picker.search("");
        assert_eq!(picker.load_more(), None, "one page at a time");
        picker.on_page(&first, page(&["a/one", "a/two"], Some(2)));
        let second = picker.load_more().expect("a second page");
        assert_eq!(
            second,
            RepoQuery {
                q: "".into(),
                page: 2
            }
        );
        picker.on_page(&second, page(&["a/two", "a/three"], Some(2)));
        assert_eq!(names(&picker), ["a/one", "a/two", "a/three"]);
        assert!(
            !picker.has_more(),
            "a next page that is not later ends paging"
        );
        assert_eq!(picker.load_more(), None);
    }

    #[test]
    fn the_box_keeps_what_was_typed_and_the_server_gets_it_trimmed() {
        let mut picker = RepoPicker::default();
        let request = picker.search("acme ");
        assert_eq!(picker.query(), "acme ");
        assert_eq!(request.q, "acme");
    }

    #[test]
    fn a_failed_page_can_be_asked_again() {
        let mut picker = RepoPicker::default();
        let first = picker.search("x");
        picker.on_failed(&first);
        assert!(!picker.is_loading());
    }

    #[test]
    fn selecting_takes_the_default_branch_until_the_branches_arrive() {
        let mut picker = RepoPicker::default();
        let first = picker.search("");
        picker.on_page(&first, page(&["acme/web"], None));
        assert!(!picker.select("acme/other"));
        assert!(picker.select("acme/web"));
        assert_eq!(picker.base_branch(), "main");
        picker.on_branches(
            "acme/other",
            BranchList {
                default_branch: "x".into(),
                branches: vec!["x".into()],
            },
        );
        assert_eq!(picker.branches(), ["main"]);
        picker.on_branches(
            "acme/web",
            BranchList {
                default_branch: "main".into(),
                branches: vec!["dev".into(), "main".into()],
            },
        );
        picker.set_base_branch("dev");
        assert_eq!(
            picker.choice(),
            Ok(Some(RepoChoice {
                full_name: "acme/web".into(),
                base_branch: Some("dev".into()),
                branch: None,
                pull_request: None,
            }))
        );
        picker.clear();
        assert_eq!(picker.choice(), Ok(None));
    }

    #[test]
    fn continuing_a_branch_or_pull_request_is_checked() {
        let new = StartFrom::NewBranch;
        assert!(repo_choice("acme/web", None, &new).is_ok());
        assert!(repo_choice("acme", None, &new).is_err());
        assert!(repo_choice("acme/web", Some("a..b"), &new).is_err());
        let branch = repo_choice("acme/web", None, &StartFrom::Branch(" fix-1 ".into()));
        assert_eq!(branch.map(|c| c.branch), Ok(Some("fix-1".into())));
        assert!(repo_choice("acme/web", None, &StartFrom::Branch("-x".into())).is_err());
        let pr = repo_choice("acme/web", None, &StartFrom::PullRequest("#12".into()));
        assert_eq!(pr.map(|c| c.pull_request), Ok(Some(12)));
        for bad in ["", "0", "twelve", "-3"] {
            let result = repo_choice("acme/web", None, &StartFrom::PullRequest(bad.into()));
            assert!(result.is_err(), "{bad:?}");
        }
    }
}
