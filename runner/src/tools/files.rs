//! The file tools: `read_file`, `write_file` and `edit_file`, working on paths
//! confined by [`Workspace`]: each opens what [`Workspace::locate`] found, through the
//! workspace handle, so a symlink swapped in by a command cannot lead it outside.
//! Synchronous; the tool set runs them off the async threads.

use std::io::Read;

use serde::Deserialize;

use super::ToolOutput;
use super::paths::{Location, PathError, Workspace};

/// Lines `read_file` returns when no `limit` is given.
const DEFAULT_READ_LINES: usize = 2000;
/// Characters shown of a very long line.
const MAX_LINE_CHARS: usize = 2000;
/// Files larger than this are not read whole (use `offset`/`limit` or `bash`).
const MAX_READ_BYTES: u64 = 10 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    pub path: String,
    /// First line to return, 1-based.
    #[serde(default)]
    pub offset: Option<usize>,
    /// How many lines to return.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Prefix every line with its number (default true).
    #[serde(default)]
    pub line_numbers: Option<bool>,
}

pub fn read_file(workspace: &Workspace, args: ReadFileArgs) -> ToolOutput {
    let location = match workspace.locate(&args.path) {
        Ok(location) => location,
        Err(error) => return ToolOutput::error(error.to_string()),
    };
    let bytes = match read_bytes(&location, &args.path) {
        Ok(bytes) => bytes,
        Err(message) => return ToolOutput::error(message),
    };
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return ToolOutput::error(format!("{} looks like a binary file", args.path));
    }
    let text = String::from_utf8_lossy(&bytes);
    if text.is_empty() {
        return ToolOutput::ok(format!("({} is empty)", args.path));
    }

    let first = args.offset.unwrap_or(1).max(1);
    let limit = args.limit.unwrap_or(DEFAULT_READ_LINES).max(1);
    let numbered = args.line_numbers.unwrap_or(true);
    let total = text.lines().count();
    if first > total {
        return ToolOutput::error(format!(
            "{} has {total} lines; offset {first} is past the end",
            args.path
        ));
    }
    let mut output = String::new();
    for (index, line) in text.lines().enumerate().skip(first - 1).take(limit) {
        let line = if line.chars().count() > MAX_LINE_CHARS {
            let cut: String = line.chars().take(MAX_LINE_CHARS).collect();
            format!("{cut}... [line cut at {MAX_LINE_CHARS} characters]")
        } else {
            line.to_string()
        };
        if numbered {
            output.push_str(&format!("{:>6}\t{line}\n", index + 1));
        } else {
            output.push_str(&line);
            output.push('\n');
        }
    }
    let last = (first - 1 + limit).min(total);
    if last < total {
        output.push_str(&format!(
            "[lines {first}-{last} of {total}; use offset={} to read on]\n",
            last + 1
        ));
    }
    ToolOutput::ok(output)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    pub path: String,
    pub content: String,
}

pub fn write_file(workspace: &Workspace, args: WriteFileArgs) -> ToolOutput {
    let location = match workspace.locate(&args.path) {
        Ok(location) => location,
        Err(error) => return ToolOutput::error(error.to_string()),
    };
    match location.write(args.content.as_bytes()) {
        Ok(()) => ToolOutput::ok(format!(
            "Wrote {} bytes to {}",
            args.content.len(),
            location.display()
        )),
        Err(error) => ToolOutput::error(write_error(error, &args.path)),
    }
}

/// The whole content of the regular file at `location`, at most [`MAX_READ_BYTES`].
fn read_bytes(location: &Location, shown: &str) -> Result<Vec<u8>, String> {
    let file = location.open_file().map_err(|error| match error {
        PathError::IsADirectory(_) => format!("{shown} is a directory; use the list tool"),
        PathError::NotFound(_) => format!("cannot read {shown}: it does not exist"),
        error => error.to_string(),
    })?;
    let size = file
        .metadata()
        .map_err(|error| format!("cannot read {shown}: {error}"))?
        .len();
    if size > MAX_READ_BYTES {
        return Err(format!(
            "{shown} has {size} bytes, more than read_file reads; use bash (head, sed -n, grep) instead"
        ));
    }
    // The file may grow while it is read; never take more than the limit.
    let mut bytes = Vec::new();
    file.take(MAX_READ_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read {shown}: {error}"))?;
    Ok(bytes)
}

fn write_error(error: PathError, shown: &str) -> String {
    match error {
        PathError::Io { cause, .. } => format!("cannot write {shown}: {cause}"),
        error => error.to_string(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditFileArgs {
    pub path: String,
    pub old_string: String,
    pub new_string: String,
    #[serde(default)]
    pub replace_all: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("old_string is empty; to create or overwrite a file use write_file")]
    EmptyOldString,
    #[error("old_string and new_string are the same; nothing to change")]
    NoChange,
    #[error(
        "old_string was not found; it must match the file exactly, including whitespace and indentation"
    )]
    NotFound,
    #[error(
        "old_string occurs {0} times; add surrounding lines to make it unique, or set replace_all to replace every occurrence"
    )]
    Ambiguous(usize),
}

/// Replaces `old` by `new` in `content`: exactly once unless `replace_all`. Returns
/// the new content and how many occurrences were replaced.
pub fn apply_edit(
    content: &str,
    old: &str,
    new: &str,
    replace_all: bool,
) -> Result<(String, usize), EditError> {
    if old.is_empty() {
        return Err(EditError::EmptyOldString);
    }
    if old == new {
        return Err(EditError::NoChange);
    }
    let count = content.matches(old).count();
    match (count, replace_all) {
        (0, _) => Err(EditError::NotFound),
        (1, _) => Ok((content.replacen(old, new, 1), 1)),
        (n, true) => Ok((content.replace(old, new), n)),
        (n, false) => Err(EditError::Ambiguous(n)),
    }
}

pub fn edit_file(workspace: &Workspace, args: EditFileArgs) -> ToolOutput {
    let location = match workspace.locate(&args.path) {
        Ok(location) => location,
        Err(error) => return ToolOutput::error(error.to_string()),
    };
    let content = match read_bytes(&location, &args.path).and_then(|bytes| {
        String::from_utf8(bytes)
            .map_err(|_| format!("cannot read {}: it is not UTF-8 text", args.path))
    }) {
        Ok(content) => content,
        Err(message) => return ToolOutput::error(message),
    };
    match apply_edit(
        &content,
        &args.old_string,
        &args.new_string,
        args.replace_all,
    ) {
        // The new content replaces the file in the same directory handle it was read
        // from, so a path swapped meanwhile cannot redirect the write.
        Ok((updated, count)) => match location.write(updated.as_bytes()) {
            Ok(()) => ToolOutput::ok(format!(
                "Replaced {count} occurrence{} in {}",
                if count == 1 { "" } else { "s" },
                location.display()
            )),
            Err(error) => ToolOutput::error(write_error(error, &args.path)),
        },
        Err(error) => ToolOutput::error(format!("{}: {error}", args.path)),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;

    #[test]
    fn edit_replaces_a_unique_occurrence() {
        assert_eq!(
            apply_edit("a b c", "b", "X", false),
            Ok(("a X c".to_string(), 1))
        );
    }

    #[test]
    fn edit_refuses_missing_ambiguous_empty_and_no_op() {
        assert_eq!(
            apply_edit("a b c", "z", "X", false),
            Err(EditError::NotFound)
        );
        assert_eq!(
            apply_edit("x x x", "x", "y", false),
            Err(EditError::Ambiguous(3))
        );
        assert_eq!(
            apply_edit("abc", "", "y", false),
            Err(EditError::EmptyOldString)
        );
        assert_eq!(apply_edit("abc", "b", "b", false), Err(EditError::NoChange));
    }

    #[test]
    fn edit_replace_all_replaces_every_occurrence() {
        assert_eq!(
            apply_edit("x x x", "x", "yy", true),
            Ok(("yy yy yy".to_string(), 3))
        );
    }

    #[test]
    fn edit_matches_exactly_including_whitespace() {
        let content = "fn a() {\n    1\n}\n";
        assert_eq!(
            apply_edit(content, "  1", "  2", false).map(|(c, _)| c),
            Ok("fn a() {\n    2\n}\n".to_string())
        );
        assert_eq!(
            apply_edit(content, "\t1", "2", false),
            Err(EditError::NotFound)
        );
    }

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path(), Path::new("/workspace")).unwrap();
        (dir, ws)
    }

    #[test]
    fn write_creates_parents_then_read_and_edit_see_it() {
        let (dir, ws) = workspace();
        let written = write_file(
            &ws,
            WriteFileArgs {
                path: "a/b/c.txt".into(),
                content: "one\ntwo\nthree\n".into(),
            },
        );
        assert!(!written.is_error, "{}", written.text);
        assert_eq!(
            fs::read_to_string(dir.path().join("a/b/c.txt")).unwrap(),
            "one\ntwo\nthree\n"
        );

        let read = read_file(
            &ws,
            ReadFileArgs {
                path: "/workspace/a/b/c.txt".into(),
                offset: Some(2),
                limit: Some(1),
                line_numbers: None,
            },
        );
        assert_eq!(
            read.text,
            "     2\ttwo\n[lines 2-2 of 3; use offset=3 to read on]\n"
        );

        let edited = edit_file(
            &ws,
            EditFileArgs {
                path: "a/b/c.txt".into(),
                old_string: "two".into(),
                new_string: "2".into(),
                replace_all: false,
            },
        );
        assert!(!edited.is_error, "{}", edited.text);
        assert_eq!(
            fs::read_to_string(dir.path().join("a/b/c.txt")).unwrap(),
            "one\n2\nthree\n"
        );

        let plain = read_file(
            &ws,
            ReadFileArgs {
                path: "a/b/c.txt".into(),
                offset: None,
                limit: None,
                line_numbers: Some(false),
            },
        );
        assert_eq!(plain.text, "one\n2\nthree\n");
    }

    #[test]
    fn a_failed_edit_leaves_the_file_alone() {
        let (dir, ws) = workspace();
        fs::write(dir.path().join("f.txt"), "x x").unwrap();
        let edited = edit_file(
            &ws,
            EditFileArgs {
                path: "f.txt".into(),
                old_string: "x".into(),
                new_string: "y".into(),
                replace_all: false,
            },
        );
        assert!(edited.is_error);
        assert!(edited.text.contains("2 times"), "{}", edited.text);
        assert_eq!(fs::read_to_string(dir.path().join("f.txt")).unwrap(), "x x");
    }

    #[test]
    fn tools_refuse_paths_outside_the_workspace() {
        let (_dir, ws) = workspace();
        let read = read_file(
            &ws,
            ReadFileArgs {
                path: "/etc/passwd".into(),
                offset: None,
                limit: None,
                line_numbers: None,
            },
        );
        assert!(read.is_error);
        let write = write_file(
            &ws,
            WriteFileArgs {
                path: "../evil.txt".into(),
                content: "x".into(),
            },
        );
        assert!(write.is_error);
    }
}
