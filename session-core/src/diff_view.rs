//! `GET /api/sessions/{id}/diff`: the command the Worker runs in the session's
//! sandbox (through the sandbox backend's exec API) and the parsing of its output
//! into a [`DiffView`]. The output is the sandbox's (its git, its config, its files),
//! so it is parsed as hostile text: any shape is accepted without panicking, every
//! patch is cut to what is left of [`MAX_DIFF_BYTES`], and at most
//! [`MAX_REPO_STATE_FILES`] files are listed.

use nightshift_protocol::repo::{
    DiffView, FileChange, FileDiff, MAX_DIFF_BYTES, MAX_REPO_PATH_BYTES, MAX_REPO_STATE_FILES,
};

/// The program and arguments: the merge base of the checked-out commit and
/// `origin/<base>` on the first line, then the working tree's diff against it (no
/// external diff drivers or text conversions, renames found, paths unquoted).
pub fn diff_command(base_branch: &str) -> (String, Vec<String>) {
    let script = "base=$(git merge-base \"refs/remotes/origin/$1\" HEAD) || exit 3; \
        echo \"$base\"; \
        exec git -c core.quotepath=off diff --no-color --no-ext-diff --no-textconv -M \"$base\" --";
    (
        "bash".to_string(),
        vec![
            "-c".to_string(),
            script.to_string(),
            "diff".to_string(),
            base_branch.to_string(),
        ],
    )
}

/// Parses the command's standard output.
pub fn parse_diff(output: &str, base_branch: &str) -> DiffView {
    let (first, rest) = output.split_once('\n').unwrap_or((output, ""));
    let merge_base = Some(first.trim())
        .filter(|sha| (7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let mut files = Vec::new();
    let mut omitted: u32 = 0;
    let mut budget = MAX_DIFF_BYTES;
    for section in sections(rest) {
        let Some(mut file) = parse_section(section) else {
            continue;
        };
        if files.len() >= MAX_REPO_STATE_FILES {
            omitted = omitted.saturating_add(1);
            continue;
        }
        if file.patch.len() > budget {
            file.patch = cut(&file.patch, budget);
            file.truncated = true;
        }
        budget -= file.patch.len();
        files.push(file);
    }
    DiffView {
        base_branch: base_branch.to_string(),
        merge_base,
        files,
        files_omitted: omitted,
    }
}

/// The `diff --git` sections of a diff.
fn sections(diff: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = Vec::new();
    let mut offset = 0;
    for line in diff.split_inclusive('\n') {
        if line.starts_with("diff --git ") {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, start)| &diff[*start..starts.get(i + 1).copied().unwrap_or(diff.len())])
        .collect()
}

fn parse_section(section: &str) -> Option<FileDiff> {
    let mut lines = section.lines();
    let header = lines.next()?.strip_prefix("diff --git ")?;
    let mut change = FileChange::Modified;
    let (mut from, mut to) = (None, None);
    let mut binary = false;
    for line in lines {
        if line.starts_with("@@") {
            break;
        }
        if line.starts_with("new file mode") {
            change = FileChange::Added;
        } else if line.starts_with("deleted file mode") {
            change = FileChange::Deleted;
        } else if let Some(path) = line.strip_prefix("rename from ") {
            change = FileChange::Renamed;
            from = Some(unquote(path));
        } else if let Some(path) = line.strip_prefix("rename to ") {
            to = Some(unquote(path));
        } else if line.starts_with("Binary files ") || line == "GIT binary patch" {
            binary = true;
        }
    }
    let path = match (&change, to) {
        (FileChange::Renamed, Some(to)) => to,
        _ => same_path(header)?,
    };
    if path.is_empty() || path.len() > MAX_REPO_PATH_BYTES {
        return None;
    }
    let old_path =
        from.filter(|from| from.len() <= MAX_REPO_PATH_BYTES && change == FileChange::Renamed);
    Some(FileDiff {
        path,
        old_path,
        change,
        patch: if binary {
            String::new()
        } else {
            section.to_string()
        },
        binary,
        truncated: false,
    })
}

/// The path of `a/P b/P` (the same path twice, so the halves are found by length
/// even when the path holds spaces).
fn same_path(header: &str) -> Option<String> {
    if header.starts_with('"') {
        let (a, _) = split_quoted(header)?;
        return a.strip_prefix("a/").map(str::to_string);
    }
    let length = header.len().checked_sub(5)? / 2;
    let a = header.get(2..2 + length)?;
    let b = header.get(2 + length + 3..)?;
    (header.starts_with("a/") && a == b).then(|| a.to_string())
}

/// The first C-quoted string of `text` and what follows it.
fn split_quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut out = Vec::new();
    let mut bytes = body.bytes().enumerate();
    while let Some((i, byte)) = bytes.next() {
        match byte {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), &body[i + 1..])),
            b'\\' => {
                let (_, escaped) = bytes.next()?;
                match escaped {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'0'..=b'7' => {
                        let mut value = u32::from(escaped - b'0');
                        for _ in 0..2 {
                            let (_, digit) = bytes.next()?;
                            value =
                                value * 8 + u32::from(digit.checked_sub(b'0').filter(|d| *d < 8)?);
                        }
                        out.push(u8::try_from(value).ok()?);
                    }
                    other => out.push(other),
                }
            }
            other => out.push(other),
        }
    }
    None
}

fn unquote(path: &str) -> String {
    if path.starts_with('"') {
        split_quoted(path).map(|(p, _)| p).unwrap_or_default()
    } else {
        path.to_string()
    }
}

fn cut(text: &str, limit: usize) -> String {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn files_of_every_kind_are_found() {
        let output = format!(
            "{BASE}\n\
diff --git a/src/main.rs b/src/main.rs\nindex 1..2 100644\n--- a/src/main.rs\n+++ b/src/main.rs\n@@ -1 +1 @@\n-a\n+b\n\
diff --git a/with space.txt b/with space.txt\nnew file mode 100644\n--- /dev/null\n+++ b/with space.txt\n@@ -0,0 +1 @@\n+x\n\
diff --git a/old.txt b/new.txt\nsimilarity index 90%\nrename from old.txt\nrename to new.txt\n\
diff --git a/gone b/gone\ndeleted file mode 100644\n\
diff --git a/img.png b/img.png\nBinary files a/img.png and b/img.png differ\n\
diff --git \"a/tab\\there\" \"b/tab\\there\"\nnew file mode 100644\n"
        );
        let view = parse_diff(&output, "main");
        assert_eq!(view.merge_base.as_deref(), Some(BASE));
        let summary: Vec<_> = view
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.change, f.old_path.as_deref(), f.binary))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("src/main.rs", FileChange::Modified, None, false),
                ("with space.txt", FileChange::Added, None, false),
                ("new.txt", FileChange::Renamed, Some("old.txt"), false),
                ("gone", FileChange::Deleted, None, false),
                ("img.png", FileChange::Modified, None, true),
                ("tab\there", FileChange::Added, None, false),
            ]
        );
        assert!(view.files[0].patch.contains("+b\n"));
        assert!(view.files[4].patch.is_empty());
    }

    #[test]
    fn hostile_output_is_bounded_and_never_panics() {
        let big = "+".repeat(MAX_DIFF_BYTES);
        let output = format!(
            "not a sha\ndiff --git a/a b/a\n@@ -0,0 +1 @@\n{big}\ndiff --git a/b b/b\n@@\n+é\n"
        );
        let view = parse_diff(&output, "main");
        assert_eq!(view.merge_base, None);
        assert!(view.files[0].truncated);
        let total: usize = view.files.iter().map(|f| f.patch.len()).sum();
        assert!(total <= MAX_DIFF_BYTES);

        let many: String = (0..MAX_REPO_STATE_FILES + 3)
            .map(|i| format!("diff --git a/f{i} b/f{i}\n"))
            .collect();
        let view = parse_diff(&format!("{BASE}\n{many}"), "main");
        assert_eq!(
            (view.files.len(), view.files_omitted),
            (MAX_REPO_STATE_FILES, 3)
        );

        for junk in [
            "",
            "\n",
            "diff --git \n",
            "diff --git \"a/\\",
            "diff --git \"a/\\777\" x\n",
            "diff --git a/x b/y\n",
            "diff --git a/é b/\n",
            "x\ndiff --git a/\u{1F600}\u{1F600} b/\u{1F600}\n",
        ] {
            let _ = parse_diff(junk, "main");
        }
    }
}
