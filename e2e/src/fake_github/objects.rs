//! GitHub's JSON objects as the fake returns them (users, repositories, branches,
//! commits, pull requests, check runs), with the many `*_url` fields GitHub's
//! schemas require, built from the fake's state. Whether they match GitHub's
//! description is not assumed here: the validation layer checks every response.

use nightshift_protocol::calendar::civil_from_days;
use serde_json::{Value, json};

/// A GitHub account known to the fake.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: u64,
    pub login: String,
    pub name: String,
    pub email: String,
    /// `User` or `Bot` (an App's installation acts as a bot).
    pub kind: &'static str,
}

/// A timestamp in GitHub's format.
pub fn timestamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn node_id(kind: &str, id: u64) -> String {
    format!("{kind}_{id:08}")
}

/// `simple-user`.
pub fn simple_user(api: &str, account: &Account) -> Value {
    let login = &account.login;
    let user = format!("{api}/users/{login}");
    json!({
        "login": login,
        "id": account.id,
        "node_id": node_id("U", account.id),
        "avatar_url": format!("https://avatars.example/u/{}", account.id),
        "gravatar_id": "",
        "url": user,
        "html_url": format!("https://github.example/{login}"),
        "followers_url": format!("{user}/followers"),
        "following_url": format!("{user}/following{{/other_user}}"),
        "gists_url": format!("{user}/gists{{/gist_id}}"),
        "starred_url": format!("{user}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{user}/subscriptions"),
        "organizations_url": format!("{user}/orgs"),
        "repos_url": format!("{user}/repos"),
        "events_url": format!("{user}/events{{/privacy}}"),
        "received_events_url": format!("{user}/received_events"),
        "type": account.kind,
        "site_admin": false,
    })
}

/// `private-user`: what `GET /user` gives the user themself.
pub fn private_user(api: &str, account: &Account) -> Value {
    let mut user = simple_user(api, account);
    let extra = json!({
        "name": account.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": account.email,
        "hireable": null,
        "bio": null,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": timestamp(1_600_000_000),
        "updated_at": timestamp(1_700_000_000),
        "private_gists": 0,
        "total_private_repos": 0,
        "owned_private_repos": 0,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": true,
        "user_view_type": "private",
    });
    merge(&mut user, extra);
    user
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

/// What a repository object is made from.
pub struct RepoView<'a> {
    pub id: u64,
    pub owner: &'a Account,
    pub name: &'a str,
    pub private: bool,
    pub default_branch: &'a str,
    pub clone_url: String,
    /// `admin`/`push`/`pull` for the caller, when the caller is a user.
    pub permissions: Option<(bool, bool, bool)>,
}

/// `repository` (and, with `full`, `full-repository`).
pub fn repository(api: &str, view: &RepoView, full: bool) -> Value {
    let full_name = format!("{}/{}", view.owner.login, view.name);
    let url = format!("{api}/repos/{full_name}");
    let mut repo = json!({
        "id": view.id,
        "node_id": node_id("R", view.id),
        "name": view.name,
        "full_name": full_name,
        "owner": simple_user(api, view.owner),
        "private": view.private,
        "visibility": if view.private { "private" } else { "public" },
        "html_url": format!("https://github.example/{full_name}"),
        "description": null,
        "fork": false,
        "url": url,
        "archive_url": format!("{url}/{{archive_format}}{{/ref}}"),
        "assignees_url": format!("{url}/assignees{{/user}}"),
        "blobs_url": format!("{url}/git/blobs{{/sha}}"),
        "branches_url": format!("{url}/branches{{/branch}}"),
        "collaborators_url": format!("{url}/collaborators{{/collaborator}}"),
        "comments_url": format!("{url}/comments{{/number}}"),
        "commits_url": format!("{url}/commits{{/sha}}"),
        "compare_url": format!("{url}/compare/{{base}}...{{head}}"),
        "contents_url": format!("{url}/contents/{{+path}}"),
        "contributors_url": format!("{url}/contributors"),
        "deployments_url": format!("{url}/deployments"),
        "downloads_url": format!("{url}/downloads"),
        "events_url": format!("{url}/events"),
        "forks_url": format!("{url}/forks"),
        "git_commits_url": format!("{url}/git/commits{{/sha}}"),
        "git_refs_url": format!("{url}/git/refs{{/sha}}"),
        "git_tags_url": format!("{url}/git/tags{{/sha}}"),
        "hooks_url": format!("{url}/hooks"),
        "issue_comment_url": format!("{url}/issues/comments{{/number}}"),
        "issue_events_url": format!("{url}/issues/events{{/number}}"),
        "issues_url": format!("{url}/issues{{/number}}"),
        "keys_url": format!("{url}/keys{{/key_id}}"),
        "labels_url": format!("{url}/labels{{/name}}"),
        "languages_url": format!("{url}/languages"),
        "merges_url": format!("{url}/merges"),
        "milestones_url": format!("{url}/milestones{{/number}}"),
        "notifications_url": format!("{url}/notifications{{?since,all,participating}}"),
        "pulls_url": format!("{url}/pulls{{/number}}"),
        "releases_url": format!("{url}/releases{{/id}}"),
        "stargazers_url": format!("{url}/stargazers"),
        "statuses_url": format!("{url}/statuses/{{sha}}"),
        "subscribers_url": format!("{url}/subscribers"),
        "subscription_url": format!("{url}/subscription"),
        "tags_url": format!("{url}/tags"),
        "teams_url": format!("{url}/teams"),
        "trees_url": format!("{url}/git/trees{{/sha}}"),
        "clone_url": view.clone_url,
        "git_url": format!("git://github.example/{full_name}.git"),
        "ssh_url": format!("git@github.example:{full_name}.git"),
        "svn_url": format!("https://github.example/{full_name}"),
        "mirror_url": null,
        "homepage": null,
        "language": null,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers": 0,
        "watchers_count": 0,
        "size": 0,
        "default_branch": view.default_branch,
        "open_issues": 0,
        "open_issues_count": 0,
        "has_issues": true,
        "has_projects": false,
        "has_wiki": false,
        "has_pages": false,
        "has_downloads": false,
        "has_discussions": false,
        "archived": false,
        "disabled": false,
        "license": null,
        "pushed_at": timestamp(1_700_000_000),
        "created_at": timestamp(1_600_000_000),
        "updated_at": timestamp(1_700_000_000),
    });
    if let Some((admin, push, pull)) = view.permissions {
        merge(
            &mut repo,
            json!({"permissions": {"admin": admin, "maintain": admin, "push": push, "triage": push, "pull": pull}}),
        );
    }
    if full {
        merge(
            &mut repo,
            json!({"network_count": 0, "subscribers_count": 0}),
        );
    }
    repo
}

/// `short-branch`.
pub fn short_branch(repo_url: &str, name: &str, sha: &str) -> Value {
    json!({
        "name": name,
        "commit": {"sha": sha, "url": format!("{repo_url}/commits/{sha}")},
        "protected": false,
    })
}

/// A commit as `git log` describes it, for `commit` objects.
pub struct CommitFacts {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub date: String,
    pub message: String,
}

/// `branch-with-protection`.
pub fn branch_with_protection(
    repo_url: &str,
    html_url: &str,
    name: &str,
    c: &CommitFacts,
) -> Value {
    let person = json!({"name": c.author_name, "email": c.author_email, "date": c.date});
    let commit = json!({
        "url": format!("{repo_url}/commits/{}", c.sha),
        "sha": c.sha,
        "node_id": format!("C_{}", &c.sha[..12.min(c.sha.len())]),
        "html_url": format!("{html_url}/commit/{}", c.sha),
        "comments_url": format!("{repo_url}/commits/{}/comments", c.sha),
        "commit": {
            "url": format!("{repo_url}/git/commits/{}", c.sha),
            "author": person,
            "committer": person,
            "message": c.message,
            "comment_count": 0,
            "tree": {"sha": c.tree, "url": format!("{repo_url}/git/trees/{}", c.tree)},
        },
        "author": null,
        "committer": null,
        "parents": c.parents.iter().map(|p| json!({
            "sha": p,
            "url": format!("{repo_url}/commits/{p}"),
            "html_url": format!("{html_url}/commit/{p}"),
        })).collect::<Vec<_>>(),
    });
    json!({
        "name": name,
        "commit": commit,
        "_links": {
            "html": format!("{html_url}/tree/{name}"),
            "self": format!("{repo_url}/branches/{name}"),
        },
        "protected": false,
        "protection": {"enabled": false},
        "protection_url": format!("{repo_url}/branches/{name}/protection"),
    })
}

/// One end of a pull request (`head` or `base`).
pub fn pull_end(api: &str, view: &RepoView, branch: &str, sha: &str) -> Value {
    json!({
        "label": format!("{}:{branch}", view.owner.login),
        "ref": branch,
        "sha": sha,
        "user": simple_user(api, view.owner),
        "repo": repository(api, view, false),
    })
}

/// What a pull request object is made from.
pub struct PullView<'a> {
    pub id: u64,
    pub number: u64,
    pub title: &'a str,
    pub body: Option<&'a str>,
    pub state: &'a str,
    pub draft: bool,
    pub author: &'a Account,
    pub created_at: u64,
    pub updated_at: u64,
    pub closed_at: Option<u64>,
    pub head: Value,
    pub base: Value,
}

/// `pull-request-simple`, or with `full` the `pull-request` of one PR's own routes.
pub fn pull_request(api: &str, full_name: &str, pr: &PullView, full: bool) -> Value {
    let repo_url = format!("{api}/repos/{full_name}");
    let url = format!("{repo_url}/pulls/{}", pr.number);
    let html = format!("https://github.example/{full_name}/pull/{}", pr.number);
    let issue = format!("{repo_url}/issues/{}", pr.number);
    let link = |href: &str| json!({"href": href});
    let sha = pr.head["sha"].as_str().unwrap_or_default().to_string();
    let mut value = json!({
        "url": url,
        "id": pr.id,
        "node_id": node_id("PR", pr.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": issue,
        "commits_url": format!("{url}/commits"),
        "review_comments_url": format!("{url}/comments"),
        "review_comment_url": format!("{repo_url}/pulls/comments{{/number}}"),
        "comments_url": format!("{issue}/comments"),
        "statuses_url": format!("{repo_url}/statuses/{sha}"),
        "number": pr.number,
        "state": pr.state,
        "locked": false,
        "title": pr.title,
        "user": simple_user(api, pr.author),
        "body": pr.body,
        "labels": [],
        "milestone": null,
        "active_lock_reason": null,
        "created_at": timestamp(pr.created_at),
        "updated_at": timestamp(pr.updated_at),
        "closed_at": pr.closed_at.map(timestamp),
        "merged_at": null,
        "merge_commit_sha": null,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": pr.head,
        "base": pr.base,
        "_links": {
            "self": link(&url),
            "html": link(&html),
            "issue": link(&issue),
            "comments": link(&format!("{issue}/comments")),
            "review_comments": link(&format!("{url}/comments")),
            "review_comment": link(&format!("{repo_url}/pulls/comments{{/number}}")),
            "commits": link(&format!("{url}/commits")),
            "statuses": link(&format!("{repo_url}/statuses/{sha}")),
        },
        "author_association": "COLLABORATOR",
        "auto_merge": null,
        "draft": pr.draft,
    });
    if full {
        merge(
            &mut value,
            json!({
                "merged": false,
                "mergeable": null,
                "rebaseable": null,
                "mergeable_state": "unknown",
                "merged_by": null,
                "comments": 0,
                "review_comments": 0,
                "maintainer_can_modify": false,
                "commits": 1,
                "additions": 0,
                "deletions": 0,
                "changed_files": 0,
            }),
        );
    }
    value
}

/// A check run the test set on a commit.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub id: u64,
    pub head_sha: String,
    pub name: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// Set when completed: `success`, `failure`, ...
    pub conclusion: Option<String>,
}

/// `check-run`.
pub fn check_run(api: &str, full_name: &str, run: &CheckRun) -> Value {
    let url = format!("{api}/repos/{full_name}/check-runs/{}", run.id);
    let html = format!("https://github.example/{full_name}/runs/{}", run.id);
    let completed = run.status == "completed";
    json!({
        "id": run.id,
        "node_id": node_id("CR", run.id),
        "head_sha": run.head_sha,
        "external_id": "",
        "url": url,
        "html_url": html,
        "details_url": html,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": timestamp(1_700_000_000),
        "completed_at": if completed { Some(timestamp(1_700_000_060)) } else { None },
        "output": {
            "title": null,
            "summary": null,
            "text": null,
            "annotations_count": 0,
            "annotations_url": format!("{url}/annotations"),
        },
        "name": run.name,
        "check_suite": {"id": run.id},
        "app": null,
        "pull_requests": [],
    })
}

/// GitHub's error body (`basic-error`).
pub fn error(message: &str) -> Value {
    json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
    }
}
