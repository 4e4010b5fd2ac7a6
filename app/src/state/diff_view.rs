//! The session's diff (`GET /api/sessions/{id}/diff`) as the view draws it: per
//! file, collapsible, each unified patch split into hunks and lines with their kind
//! and old/new line numbers, and each line's code coloured by the app's highlighter
//! for the file's extension.
//!
//! Every byte of a patch comes out of the sandbox, so the parser accepts anything:
//! lines it does not understand are kept as context, numbers it cannot read start
//! at 0, and nothing is dropped or interpreted as markup. The only HTML made here is
//! the highlighter's, which escapes every byte ([`crate::markdown::highlight`]).

use nightshift_protocol::repo::{DiffView, FileChange, FileDiff};

use crate::markdown::highlight::{Language, highlight};

/// What a line of a hunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
    /// `\ No newline at end of file`.
    Note,
}

impl LineKind {
    /// The CSS modifier and `data-kind` of a line.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Context => "context",
            LineKind::Added => "added",
            LineKind::Removed => "removed",
            LineKind::Note => "note",
        }
    }

    fn sign(self) -> &'static str {
        match self {
            LineKind::Context => " ",
            LineKind::Added => "+",
            LineKind::Removed => "-",
            LineKind::Note => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    /// The line's number in the old file (context and removed lines).
    pub old_number: Option<u32>,
    /// The line's number in the new file (context and added lines).
    pub new_number: Option<u32>,
    /// The line's text without its `+`/`-`/` ` sign.
    pub text: String,
    /// `text` as escaped, coloured HTML.
    pub html: String,
}

impl DiffLine {
    pub fn sign(&self) -> &'static str {
        self.kind.sign()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@ context` line, as text.
    pub header: String,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffFile {
    pub path: String,
    pub old_path: Option<String>,
    pub change: FileChange,
    pub binary: bool,
    pub truncated: bool,
    pub hunks: Vec<Hunk>,
    pub additions: u32,
    pub deletions: u32,
    pub expanded: bool,
}

/// The diff view's model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffModel {
    pub base_branch: String,
    pub files: Vec<DiffFile>,
    pub files_omitted: u32,
}

/// Files with more changed lines than this start collapsed, so one generated file
/// does not push the rest out of sight.
const EXPAND_AT_MOST_LINES: u32 = 400;

impl DiffModel {
    pub fn new(view: DiffView) -> DiffModel {
        DiffModel {
            base_branch: view.base_branch,
            files: view.files.into_iter().map(DiffFile::new).collect(),
            files_omitted: view.files_omitted,
        }
    }

    /// Opens or closes file `index` (out of range: nothing).
    pub fn toggle(&mut self, index: usize) {
        if let Some(file) = self.files.get_mut(index) {
            file.expanded = !file.expanded;
        }
    }

    pub fn set_all_expanded(&mut self, expanded: bool) {
        for file in &mut self.files {
            file.expanded = expanded;
        }
    }
}

impl DiffFile {
    fn new(diff: FileDiff) -> DiffFile {
        let language = Language::from_path(&diff.path);
        let hunks = parse_patch(&diff.patch, language);
        let count = |kind| {
            let n = hunks
                .iter()
                .flat_map(|h| &h.lines)
                .filter(|l| l.kind == kind)
                .count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        let additions = count(LineKind::Added);
        let deletions = count(LineKind::Removed);
        DiffFile {
            expanded: additions.saturating_add(deletions) <= EXPAND_AT_MOST_LINES,
            path: diff.path,
            old_path: diff.old_path,
            change: diff.change,
            binary: diff.binary,
            truncated: diff.truncated,
            hunks,
            additions,
            deletions,
        }
    }
}

/// Splits a file's unified diff (git's `diff --git` section) into hunks. Header
/// lines before the first `@@` (`diff --git`, `index`, `---`, `+++`, modes) are
/// left out: the file's row already says what they say.
pub fn parse_patch(patch: &str, language: Option<Language>) -> Vec<Hunk> {
    let mut hunks: Vec<Hunk> = Vec::new();
    let (mut old, mut new) = (0u32, 0u32);
    for raw in patch.lines() {
        if raw.starts_with("@@") {
            let (old_start, new_start) = hunk_starts(raw);
            old = old_start;
            new = new_start;
            hunks.push(Hunk {
                header: raw.to_owned(),
                lines: Vec::new(),
            });
            continue;
        }
        let Some(hunk) = hunks.last_mut() else {
            continue;
        };
        let (kind, text) = match raw.as_bytes().first() {
            Some(b'+') => (LineKind::Added, &raw[1..]),
            Some(b'-') => (LineKind::Removed, &raw[1..]),
            Some(b' ') => (LineKind::Context, &raw[1..]),
            Some(b'\\') => (LineKind::Note, raw),
            // An empty line inside a hunk is a context line whose space was lost.
            _ => (LineKind::Context, raw),
        };
        let (old_number, new_number) = match kind {
            LineKind::Added => (None, Some(next(&mut new))),
            LineKind::Removed => (Some(next(&mut old)), None),
            LineKind::Context => (Some(next(&mut old)), Some(next(&mut new))),
            LineKind::Note => (None, None),
        };
        let html = match kind {
            LineKind::Note => highlight(None, text),
            _ => highlight(language, text),
        };
        hunk.lines.push(DiffLine {
            kind,
            old_number,
            new_number,
            text: text.to_owned(),
            html,
        });
    }
    hunks
}

fn next(counter: &mut u32) -> u32 {
    let current = *counter;
    *counter = counter.saturating_add(1);
    current
}

/// The first old and new line numbers of a `@@ -a,b +c,d @@` header; 0 for a part
/// that does not read as a number.
fn hunk_starts(header: &str) -> (u32, u32) {
    let mut old = 0;
    let mut new = 0;
    for word in header.split_whitespace().skip(1).take(2) {
        let start = |w: &str| {
            w[1..]
                .split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        if word.starts_with('-') {
            old = start(word);
        } else if word.starts_with('+') {
            new = start(word);
        }
    }
    (old, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/src/lib.rs b/src/lib.rs\nindex 1..2 100644\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,4 @@ fn top\n fn a() {}\n-fn b() {}\n+fn b() { 1 }\n+// new\n fn c() {}\n@@ -10 +11 @@\n-x\n+y\n\\ No newline at end of file\n";

    fn file(path: &str, patch: &str) -> FileDiff {
        FileDiff {
            path: path.into(),
            old_path: None,
            change: FileChange::Modified,
            patch: patch.into(),
            binary: false,
            truncated: false,
        }
    }

    #[test]
    fn hunks_carry_kinds_and_line_numbers() {
        let hunks = parse_patch(PATCH, None);
        assert_eq!(hunks.len(), 2);
        assert_eq!(hunks[0].header, "@@ -1,3 +1,4 @@ fn top");
        let numbered: Vec<_> = hunks[0]
            .lines
            .iter()
            .map(|l| (l.kind, l.old_number, l.new_number, l.text.as_str()))
            .collect();
        assert_eq!(
            numbered,
            [
                (LineKind::Context, Some(1), Some(1), "fn a() {}"),
                (LineKind::Removed, Some(2), None, "fn b() {}"),
                (LineKind::Added, None, Some(2), "fn b() { 1 }"),
                (LineKind::Added, None, Some(3), "// new"),
                (LineKind::Context, Some(3), Some(4), "fn c() {}"),
            ]
        );
        let second = &hunks[1].lines;
        assert_eq!(
            (second[0].old_number, second[1].new_number),
            (Some(10), Some(11))
        );
        assert_eq!(second[2].kind, LineKind::Note);
    }

    #[test]
    fn lines_are_coloured_by_the_files_extension() {
        let model = DiffModel::new(DiffView {
            base_branch: "main".into(),
            merge_base: None,
            files: vec![file("src/lib.rs", PATCH), file("notes.unknown", PATCH)],
            files_omitted: 0,
        });
        let rust = &model.files[0].hunks[0].lines[0].html;
        assert!(rust.contains("<span class=\"hl-kw\">fn</span>"), "{rust}");
        assert_eq!(model.files[1].hunks[0].lines[0].html, "fn a() {}");
        assert_eq!((model.files[0].additions, model.files[0].deletions), (3, 2));
    }

    #[test]
    fn markup_in_a_patch_stays_text() {
        let patch = "@@ -0,0 +1 @@\n+<img src=x onerror=alert(1)>\n";
        let hunks = parse_patch(patch, Language::from_path("page.html"));
        let html = &hunks[0].lines[0].html;
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;"), "{html}");
        let plain = parse_patch(patch, None);
        assert_eq!(plain[0].lines[0].html, "&lt;img src=x onerror=alert(1)&gt;");
    }

    #[test]
    fn garbage_is_kept_not_lost() {
        for patch in [
            "",
            "no hunks here",
            "@@ nonsense\n+a",
            "@@ -x,y +z @@\n?odd\n\n+b",
        ] {
            let hunks = parse_patch(patch, None);
            let lines: usize = hunks.iter().map(|h| h.lines.len()).sum();
            let expected = patch.lines().skip_while(|l| !l.starts_with("@@")).count();
            assert_eq!(lines + hunks.len(), expected, "{patch:?}");
        }
        let hunks = parse_patch("@@ -x +y @@\n a\n", None);
        assert_eq!(hunks[0].lines[0].old_number, Some(0));
    }

    #[test]
    fn files_collapse_and_large_ones_start_collapsed() {
        let big: String = std::iter::once("@@ -0,0 +1,500 @@\n".to_owned())
            .chain((0..500).map(|i| format!("+line {i}\n")))
            .collect();
        let mut model = DiffModel::new(DiffView {
            base_branch: "main".into(),
            merge_base: None,
            files: vec![file("a.rs", PATCH), file("big.txt", &big)],
            files_omitted: 2,
        });
        assert!(model.files[0].expanded);
        assert!(!model.files[1].expanded);
        model.toggle(0);
        model.toggle(9);
        assert!(!model.files[0].expanded);
        model.set_all_expanded(true);
        assert!(model.files.iter().all(|f| f.expanded));
    }
}
