//! Putting the session's repository into the workspace: once, inside the sandbox,
//! on the session's branch, with git asking the runner's credential helper (and
//! nothing else) for the repository's credential.
//!
//! Idempotent across runner restarts: a workspace whose repository already has a
//! commit checked out is left as it is (the agent's work is there); only the
//! settings below are written again. The workspace is not cloned into with
//! `git clone` because it is never quite empty (the sandbox may mount a directory
//! of its own there); `init` + `fetch` + `checkout` works over what is there.
//!
//! History: the base branch (and the continued branch) are fetched whole, not
//! shallow, because the agent needs `git log` and `blame`; other branches and tags
//! are fetched only when the agent asks for them.

use std::time::Duration;

use nightshift_protocol::repo::{GitAuthor, SessionRepo, valid_branch, valid_full_name};

use super::git::SandboxGit;

/// How long the clone's fetch may take (a large repository over a slow link).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a local git command may take.
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The credential helper git inside the sandbox runs: git's own `credential-cache`
/// client, pointed at the unix socket the runner serves (which speaks the cache
/// daemon's protocol), so nothing but this configuration enters the sandbox.
pub fn helper_setting(socket_in_sandbox: &str) -> String {
    format!("cache --socket {socket_in_sandbox}")
}

/// Where git in the sandbox gets the repository's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitCredentials<'a> {
    /// The runner's helper socket, at this path inside the sandbox.
    Helper(&'a str),
    /// The sandbox's egress adds it to git's requests: git asks no helper at all.
    AddedByEgress,
    /// Nowhere (the settings are left as they are).
    Unavailable,
}

/// Why a [`SessionRepo`] is not used: the Worker made it, but its fields end up in
/// git's argv, so nothing that could read as an option or carry a password gets
/// through.
pub fn check_repo(repo: &SessionRepo) -> Result<(), String> {
    if !valid_full_name(&repo.full_name) {
        return Err("the repository's name is not owner/name".into());
    }
    for branch in [&repo.branch, &repo.base_branch] {
        if !valid_branch(branch) {
            return Err(format!("{branch:?} is not a usable branch name"));
        }
    }
    let url = &repo.clone_url;
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("the clone URL has no scheme".into());
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if !matches!(scheme, "https" | "http")
        || authority.is_empty()
        || authority.contains('@')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("the clone URL must be http(s) without credentials".into());
    }
    Ok(())
}

/// Clones `repo` into the workspace unless it is there, and checks out its branch.
pub async fn ensure_cloned(
    git: &SandboxGit,
    repo: &SessionRepo,
    credentials: GitCredentials<'_>,
) -> Result<(), String> {
    check_repo(repo)?;
    // The workspace itself must be the repository's top (`.git` right there), not
    // some directory inside another repository.
    let cloned = git
        .run(
            &["rev-parse", "--verify", "--quiet", "HEAD"],
            1024,
            LOCAL_TIMEOUT,
        )
        .await?
        .success
        && git
            .checked(&["rev-parse", "--git-dir"], LOCAL_TIMEOUT)
            .await
            .is_ok_and(|dir| dir == ".git");
    if !cloned {
        git.checked(&["init", "--quiet"], LOCAL_TIMEOUT).await?;
    }
    configure(git, repo, credentials).await?;
    if cloned {
        return Ok(());
    }
    let base = format!(
        "+refs/heads/{b}:refs/remotes/origin/{b}",
        b = repo.base_branch
    );
    let own = format!("+refs/heads/{b}:refs/remotes/origin/{b}", b = repo.branch);
    let mut fetch = vec!["fetch", "--quiet", "--no-tags", "origin", base.as_str()];
    if repo.existing_branch {
        fetch.push(own.as_str());
    }
    git.checked(&fetch, FETCH_TIMEOUT).await?;
    let start = if repo.existing_branch {
        format!("refs/remotes/origin/{}", repo.branch)
    } else {
        format!("refs/remotes/origin/{}", repo.base_branch)
    };
    git.checked(
        &["checkout", "--quiet", "-B", &repo.branch, &start, "--"],
        LOCAL_TIMEOUT,
    )
    .await?;
    Ok(())
}

/// The repository's settings, written again on every start: the remote, the branch's
/// upstream (so a plain `git push` pushes the session's branch), and the credential
/// helper (replacing any other, so no helper the sandbox planted sees the request;
/// with the egress adding the credential, an empty one that resets the list, so git
/// asks none).
async fn configure(
    git: &SandboxGit,
    repo: &SessionRepo,
    credentials: GitCredentials<'_>,
) -> Result<(), String> {
    let upstream = format!("refs/heads/{}", repo.branch);
    let remote_key = format!("branch.{}.remote", repo.branch);
    let merge_key = format!("branch.{}.merge", repo.branch);
    let settings: Vec<(&str, String)> = vec![
        ("remote.origin.url", repo.clone_url.clone()),
        (
            "remote.origin.fetch",
            "+refs/heads/*:refs/remotes/origin/*".into(),
        ),
        (&remote_key, "origin".into()),
        (&merge_key, upstream),
        ("push.default", "upstream".into()),
        ("push.autoSetupRemote", "true".into()),
        ("credential.useHttpPath", "true".into()),
    ];
    for (key, value) in settings {
        git.checked(&["config", "--replace-all", key, &value], LOCAL_TIMEOUT)
            .await?;
    }
    if credentials == GitCredentials::AddedByEgress {
        git.checked(
            &["config", "--replace-all", "credential.helper", ""],
            LOCAL_TIMEOUT,
        )
        .await?;
    }
    if let GitCredentials::Helper(socket) = credentials {
        // An empty helper first resets the list read from the other config files, so
        // the runner's helper is the only one asked.
        git.checked(
            &["config", "--replace-all", "credential.helper", ""],
            LOCAL_TIMEOUT,
        )
        .await?;
        git.checked(
            &[
                "config",
                "--add",
                "credential.helper",
                &helper_setting(socket),
            ],
            LOCAL_TIMEOUT,
        )
        .await?;
    }
    Ok(())
}

/// Makes `author` the author and committer of the repository's next commits (the
/// prompting user of this turn). `.git/config` holds it: it is no secret, and the
/// agent sees whom it commits as.
pub async fn set_author(git: &SandboxGit, author: &GitAuthor) -> Result<(), String> {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control() && !matches!(c, '<' | '>'))
            .take(200)
            .collect()
    };
    let name = clean(&author.name);
    let email = clean(&author.email);
    if name.trim().is_empty() || email.trim().is_empty() {
        return Err("the author has no name or email".into());
    }
    git.checked(&["config", "user.name", &name], LOCAL_TIMEOUT)
        .await?;
    git.checked(&["config", "user.email", &email], LOCAL_TIMEOUT)
        .await?;
    Ok(())
}
