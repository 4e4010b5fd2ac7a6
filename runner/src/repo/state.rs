//! What the session's repository looks like now ([`RepoState`]), computed by git
//! inside the sandbox and parsed here as hostile output: NUL-separated, bounded in
//! bytes and files, paths cut to the protocol's limits.
//!
//! The changed files are the working tree (committed or not) against the merge
//! base of the checked-out commit and `origin/<base>`, as a pull request would show
//! them, plus untracked files as added.

use std::collections::BTreeMap;
use std::time::Duration;

use nightshift_protocol::repo::{
    ChangedFile, FileChange, MAX_REPO_PATH_BYTES, MAX_REPO_STATE_FILES, RepoPhase, RepoState,
    SessionRepo,
};

use super::git::SandboxGit;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Output read from one listing command.
const MAX_LISTING: usize = 2 * 1024 * 1024;

/// Computes the state of a cloned repository.
pub async fn compute(git: &SandboxGit, repo: &SessionRepo) -> Result<RepoState, String> {
    let branch = git
        .checked(&["rev-parse", "--abbrev-ref", "HEAD"], TIMEOUT)
        .await?;
    let head = git
        .checked(&["rev-parse", "--verify", "HEAD"], TIMEOUT)
        .await?;
    let base = format!("refs/remotes/origin/{}", repo.base_branch);
    let merge_base = git
        .checked(&["merge-base", &base, "HEAD"], TIMEOUT)
        .await
        .ok();
    let (behind, ahead) = match git
        .checked(
            &[
                "rev-list",
                "--left-right",
                "--count",
                &format!("{base}...HEAD"),
            ],
            TIMEOUT,
        )
        .await
    {
        Ok(counts) => parse_counts(&counts),
        Err(_) => (0, 0),
    };
    let remote_branch = git
        .checked(
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/remotes/origin/{}", repo.branch),
            ],
            TIMEOUT,
        )
        .await
        .ok();
    let status = git
        .run(
            &["status", "--porcelain=v2", "-z", "--untracked-files=all"],
            MAX_LISTING,
            TIMEOUT,
        )
        .await?;
    let untracked = parse_untracked(&status.stdout);
    let dirty = !status.stdout.is_empty();

    let mut files = BTreeMap::new();
    if let Some(merge_base) = &merge_base {
        let names = git
            .run(
                &["diff", "--name-status", "-z", "-M", merge_base, "--"],
                MAX_LISTING,
                TIMEOUT,
            )
            .await?;
        for file in parse_name_status(&names.stdout) {
            files.insert(file.path.clone(), file);
        }
        let numstat = git
            .run(
                &["diff", "--numstat", "-z", "-M", merge_base, "--"],
                MAX_LISTING,
                TIMEOUT,
            )
            .await?;
        for (path, counts) in parse_numstat(&numstat.stdout) {
            if let Some(file) = files.get_mut(&path) {
                match counts {
                    Some((additions, deletions)) => {
                        file.additions = additions;
                        file.deletions = deletions;
                    }
                    None => file.binary = true,
                }
            }
        }
    }
    for path in untracked {
        files.entry(path.clone()).or_insert(ChangedFile {
            path,
            change: FileChange::Added,
            old_path: None,
            additions: 0,
            deletions: 0,
            binary: false,
        });
    }
    let total = files.len();
    let files: Vec<ChangedFile> = files.into_values().take(MAX_REPO_STATE_FILES).collect();
    let files_omitted = u32::try_from(total - files.len()).unwrap_or(u32::MAX);
    Ok(RepoState {
        phase: RepoPhase::Ready,
        error: None,
        branch: cut(&branch, nightshift_protocol::repo::MAX_BRANCH_BYTES),
        pushed: remote_branch.as_deref() == Some(head.as_str()),
        head: (head.len() <= 64).then_some(head),
        ahead,
        behind,
        dirty,
        files,
        files_omitted,
        push_error: None,
    })
}

/// `git rev-list --left-right --count A...B`: "<left>\t<right>".
pub fn parse_counts(text: &str) -> (u32, u32) {
    let mut parts = text
        .split_whitespace()
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// A path from git, as text the protocol accepts (`None` when it is too long to
/// show: such a file is counted, not listed).
fn path_of(bytes: &[u8]) -> Option<String> {
    let path = String::from_utf8_lossy(bytes).into_owned();
    (!path.is_empty() && path.len() <= MAX_REPO_PATH_BYTES).then_some(path)
}

fn cut(text: &str, limit: usize) -> String {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Untracked files of `git status --porcelain=v2 -z` (`? <path>` entries).
pub fn parse_untracked(output: &[u8]) -> Vec<String> {
    let mut entries = output.split(|b| *b == 0).peekable();
    let mut untracked = Vec::new();
    while let Some(entry) = entries.next() {
        // A rename entry ("2 ...") is followed by its original path.
        if entry.starts_with(b"2 ") {
            entries.next();
        } else if let Some(path) = entry.strip_prefix(b"? ")
            && let Some(path) = path_of(path)
        {
            untracked.push(path);
        }
    }
    untracked
}

/// `git diff --name-status -z -M`: `<status>\0<path>\0`, or for a rename or copy
/// `R<score>\0<old>\0<new>\0`.
pub fn parse_name_status(output: &[u8]) -> Vec<ChangedFile> {
    let mut fields = output.split(|b| *b == 0);
    let mut files = Vec::new();
    while let Some(status) = fields.next() {
        let Some(kind) = status.first() else {
            continue;
        };
        let file = |path: Option<String>, change, old_path| {
            path.map(|path| ChangedFile {
                path,
                change,
                old_path,
                additions: 0,
                deletions: 0,
                binary: false,
            })
        };
        let parsed = match kind {
            b'R' | b'C' => {
                let old = fields.next().and_then(path_of);
                let new = fields.next().and_then(path_of);
                if *kind == b'R' {
                    file(new, FileChange::Renamed, old)
                } else {
                    file(new, FileChange::Added, None)
                }
            }
            b'A' => file(fields.next().and_then(path_of), FileChange::Added, None),
            b'D' => file(fields.next().and_then(path_of), FileChange::Deleted, None),
            b'M' | b'T' => file(fields.next().and_then(path_of), FileChange::Modified, None),
            _ => {
                fields.next();
                None
            }
        };
        files.extend(parsed);
    }
    files
}

/// `git diff --numstat -z -M`: `<add>\t<del>\t<path>\0`, or for a rename
/// `<add>\t<del>\t\0<old>\0<new>\0`; `-\t-\t` for a binary file (`None`).
pub fn parse_numstat(output: &[u8]) -> Vec<(String, Option<(u32, u32)>)> {
    let mut fields = output.split(|b| *b == 0);
    let mut counts = Vec::new();
    while let Some(field) = fields.next() {
        let mut parts = field.splitn(3, |b| *b == b'\t');
        let (Some(added), Some(deleted), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = if path.is_empty() {
            // A rename: the old path, then the new one.
            fields.next();
            fields.next()
        } else {
            Some(path)
        };
        let Some(path) = path.and_then(path_of) else {
            continue;
        };
        let number = |bytes: &[u8]| std::str::from_utf8(bytes).ok()?.parse::<u32>().ok();
        counts.push((path, number(added).zip(number(deleted))));
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_status_with_renames_and_odd_paths() {
        let output =
            b"M\0src/a.rs\0R087\0old name.txt\0new\nname.txt\0A\0\xffbin\0D\0gone\0X\0weird\0";
        let files = parse_name_status(output);
        let summary: Vec<_> = files
            .iter()
            .map(|f| (f.path.as_str(), f.change, f.old_path.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("src/a.rs", FileChange::Modified, None),
                ("new\nname.txt", FileChange::Renamed, Some("old name.txt")),
                ("\u{fffd}bin", FileChange::Added, None),
                ("gone", FileChange::Deleted, None),
            ]
        );
    }

    #[test]
    fn numstat_with_binaries_and_renames() {
        let output = b"3\t1\tsrc/a.rs\0-\t-\timage.png\0\x30\t0\t\0old\0new\0junk\0";
        assert_eq!(
            parse_numstat(output),
            vec![
                ("src/a.rs".to_string(), Some((3, 1))),
                ("image.png".to_string(), None),
                ("new".to_string(), Some((0, 0))),
            ]
        );
    }

    #[test]
    fn overlong_paths_are_left_out_and_untracked_files_found() {
        let long = "x".repeat(MAX_REPO_PATH_BYTES + 1);
        let output = format!("M\0{long}\0M\0ok\0");
        assert_eq!(parse_name_status(output.as_bytes()).len(), 1);
        let status = b"1 .M N... 100644 100644 100644 a b tracked.rs\0? new file.txt\0\
2 R. N... 100644 100644 100644 a b R100 renamed\0? not-untracked-original\0? x\0";
        assert_eq!(parse_untracked(status), vec!["new file.txt", "x"]);
        assert_eq!(parse_counts("2\t5\n"), (2, 5));
        assert_eq!(parse_counts("junk"), (0, 0));
    }
}
