//! The rules of repo-aware sessions that need no GitHub and no platform: the name of
//! a session's branch, who commits (name and no-reply email), whether the team's
//! allow-list admits a repository, and whether a git credential request is for the
//! session's own repository.
//!
//! The Worker applies them around its GitHub calls (`worker/src/github/`); they live
//! here so they are unit-tested natively.

#[cfg(test)]
use nightshift_protocol::repo::valid_branch;
use nightshift_protocol::repo::{GitAuthor, valid_full_name};

/// The longest slug of the title a branch name carries.
const MAX_SLUG: usize = 40;

/// The session's own branch: `nightshift/<first 8 characters of the id>-<slug of the
/// title>` (`nightshift/<8 chars>` for an untitled session). The slug keeps ASCII
/// letters and digits, lowercased, with single dashes between words.
pub fn branch_name(session_id: &str, title: &str) -> String {
    let short: String = session_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= MAX_SLUG {
            break;
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        format!("nightshift/{short}")
    } else {
        format!("nightshift/{short}-{slug}")
    }
}

/// Who commits for a GitHub user: their name (their login when they have none) and
/// GitHub's no-reply address, which GitHub attributes to them without publishing
/// their email.
pub fn github_author(github_id: u64, login: &str, name: Option<&str>) -> GitAuthor {
    let name = name
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or(login);
    GitAuthor {
        name: name.chars().take(100).collect(),
        email: format!("{github_id}+{login}@users.noreply.github.com"),
    }
}

/// Whether one allow-list entry (`owner/name` or `owner/*`) is well formed.
pub fn valid_allow_entry(entry: &str) -> bool {
    match entry.strip_suffix("/*") {
        Some(owner) => valid_full_name(&format!("{owner}/x")),
        None => valid_full_name(entry),
    }
}

/// Whether the team's allow-list admits `full_name` (GitHub's names are
/// case-insensitive); an empty list admits every repository.
pub fn allowed(allow_list: &[String], full_name: &str) -> bool {
    if allow_list.is_empty() {
        return true;
    }
    let Some((owner, _)) = full_name.split_once('/') else {
        return false;
    };
    allow_list
        .iter()
        .any(|entry| match entry.strip_suffix("/*") {
            Some(allowed_owner) => allowed_owner.eq_ignore_ascii_case(owner),
            None => entry.eq_ignore_ascii_case(full_name),
        })
}

/// Whether what git's credential helper asked for (`protocol`, `host`, `path`) is
/// the session's repository at `clone_url`: the same scheme, the same host (and
/// port), and the path `owner/name` with or without `.git`. Anything else (another
/// host, another repository, a path with more in it) is refused.
pub fn credential_matches(clone_url: &str, protocol: &str, host: &str, path: &str) -> bool {
    let Some((scheme, rest)) = clone_url.split_once("://") else {
        return false;
    };
    let Some((url_host, url_path)) = rest.split_once('/') else {
        return false;
    };
    let strip = |p: &str| -> String {
        let p = p.trim_start_matches('/');
        p.strip_suffix(".git").unwrap_or(p).to_ascii_lowercase()
    };
    let wanted = strip(url_path);
    protocol == scheme
        && host.eq_ignore_ascii_case(url_host)
        && !path.contains("..")
        && valid_full_name(&wanted)
        && strip(path) == wanted
}

/// A user's GitHub token this close to its expiry (ms) is refreshed before it is
/// handed out, so it stays good for the git operation or API call it is for.
pub const TOKEN_REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

/// Whether a stored user token must be refreshed before use: GitHub refused it
/// already, or it expires within [`TOKEN_REFRESH_MARGIN_MS`] (an OAuth app's token,
/// without expiry, only when refused).
pub fn token_needs_refresh(expires_at_ms: Option<i64>, now_ms: i64, refused: bool) -> bool {
    refused || expires_at_ms.is_some_and(|at| at - TOKEN_REFRESH_MARGIN_MS <= now_ms)
}

/// Whose GitHub access a git credential is issued with: the user who prompted the
/// running turn (so a collaborator cannot push with the owner's access), else the
/// session's owner (the clone before any turn, a push asked between turns).
pub fn git_user<'a>(owner_id: &'a str, prompter: Option<&'a str>) -> &'a str {
    prompter.unwrap_or(owner_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_carry_the_short_id_and_a_slug_of_the_title() {
        assert_eq!(
            branch_name("01JABCDEF9XYZ", "Fix the login page!"),
            "nightshift/01jabcde-fix-the-login-page"
        );
        assert_eq!(branch_name("abcdefghij", ""), "nightshift/abcdefgh");
        assert_eq!(branch_name("abcdefghij", "  ---  "), "nightshift/abcdefgh");
        assert_eq!(
            branch_name("ab", "Ünïcode & spaces"),
            "nightshift/ab-n-code-spaces"
        );
        let long = branch_name("abcdefgh", &"word ".repeat(40));
        assert!(
            long.len() <= "nightshift/abcdefgh-".len() + MAX_SLUG,
            "{long}"
        );
        assert!(!long.ends_with('-'));
        for title in ["x..y", "a@{b", "~^:?*[\\", "end.lock", "tab\there"] {
            assert!(valid_branch(&branch_name("abcdefgh", title)), "{title}");
        }
    }

    #[test]
    fn credentials_are_for_the_prompter_of_the_running_turn() {
        assert_eq!(git_user("owner", Some("collaborator")), "collaborator");
        assert_eq!(git_user("owner", None), "owner");
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire_or_once_refused() {
        let now = 1_000_000_000;
        assert!(!token_needs_refresh(Some(now + 3_600_000), now, false));
        assert!(token_needs_refresh(Some(now + 60_000), now, false));
        assert!(token_needs_refresh(Some(now - 1), now, false));
        assert!(token_needs_refresh(Some(now + 3_600_000), now, true));
        assert!(!token_needs_refresh(None, now, false));
        assert!(token_needs_refresh(None, now, true));
    }

    #[test]
    fn authors_use_the_no_reply_address() {
        let author = github_author(583231, "octocat", Some("The Octocat"));
        assert_eq!(author.name, "The Octocat");
        assert_eq!(author.email, "583231+octocat@users.noreply.github.com");
        assert_eq!(github_author(1, "bob", Some("  ")).name, "bob");
        assert_eq!(github_author(1, "bob", None).name, "bob");
    }

    #[test]
    fn the_allow_list_admits_listed_repositories_and_owners() {
        assert!(allowed(&[], "any/thing"));
        let list = vec!["acme/web".to_string(), "tools/*".to_string()];
        assert!(allowed(&list, "acme/web"));
        assert!(allowed(&list, "ACME/Web"));
        assert!(allowed(&list, "tools/anything"));
        assert!(!allowed(&list, "acme/api"));
        assert!(!allowed(&list, "toolsx/a"));
        assert!(!allowed(&list, "evil/tools"));
        assert!(valid_allow_entry("acme/web"));
        assert!(valid_allow_entry("acme/*"));
        for bad in ["*", "acme", "*/x", "a/b/c", "acme/*x", ""] {
            assert!(!valid_allow_entry(bad), "{bad}");
        }
    }

    #[test]
    fn credentials_are_answered_only_for_the_sessions_repository() {
        let url = "https://github.com/acme/web.git";
        assert!(credential_matches(
            url,
            "https",
            "github.com",
            "acme/web.git"
        ));
        assert!(credential_matches(url, "https", "github.com", "acme/web"));
        assert!(credential_matches(
            url,
            "https",
            "GitHub.com",
            "Acme/Web.git"
        ));
        assert!(!credential_matches(
            url,
            "http",
            "github.com",
            "acme/web.git"
        ));
        assert!(!credential_matches(
            url,
            "https",
            "evil.com",
            "acme/web.git"
        ));
        assert!(!credential_matches(
            url,
            "https",
            "github.com",
            "acme/api.git"
        ));
        assert!(!credential_matches(
            url,
            "https",
            "github.com",
            "acme/web/x.git"
        ));
        assert!(!credential_matches(
            url,
            "https",
            "github.com",
            "acme/../web"
        ));
        assert!(!credential_matches(url, "https", "github.com", ""));
        let local = "http://127.0.0.1:4000/acme/web.git";
        assert!(credential_matches(
            local,
            "http",
            "127.0.0.1:4000",
            "acme/web.git"
        ));
        assert!(!credential_matches(
            local,
            "http",
            "127.0.0.1:4001",
            "acme/web.git"
        ));
    }
}
