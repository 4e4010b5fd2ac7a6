//! The search tools: `list` (files by glob) and `grep` (lines by regex). Both walk the
//! workspace honouring `.gitignore` files (also outside a git repository), skip the
//! `.git` directory, and stop at a cap so one call cannot flood the conversation.
//! Ignore files above the workspace are not read: the host's rules are not the
//! workspace's. Synchronous; the tool set runs them off the async threads.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use ignore::WalkBuilder;
use regex::RegexBuilder;
use serde::Deserialize;

use super::ToolOutput;
use super::paths::Workspace;

const MAX_LIST_ENTRIES: usize = 500;
const MAX_GREP_MATCHES: usize = 200;
const MAX_GREP_LINE_CHARS: usize = 300;
/// Files larger than this are not searched.
const MAX_GREP_FILE_BYTES: u64 = 5 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrepArgs {
    pub pattern: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub glob: Option<String>,
}

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| format!("invalid glob {pattern:?}: {error}"))
}

/// Walks the workspace from its root, so `.gitignore` files between the root and
/// `base` apply, but only descends into `base` and its ancestors.
fn walk(workspace: &Workspace, base: &Path) -> ignore::Walk {
    let base = base.to_path_buf();
    WalkBuilder::new(workspace.root())
        .hidden(false)
        .parents(false)
        .require_git(false)
        .git_global(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| {
            let path = entry.path();
            entry.file_name() != ".git" && (path.starts_with(&base) || base.starts_with(path))
        })
        .build()
}

fn resolve_base(workspace: &Workspace, path: Option<&str>) -> Result<PathBuf, ToolOutput> {
    let base = workspace
        .resolve(path.unwrap_or("."))
        .map_err(|error| ToolOutput::error(error.to_string()))?;
    if !base.exists() {
        return Err(ToolOutput::error(format!(
            "{} does not exist",
            path.unwrap_or(".")
        )));
    }
    Ok(base)
}

pub fn list(workspace: &Workspace, args: ListArgs) -> ToolOutput {
    let pattern = args.pattern.as_deref().unwrap_or("**/*");
    let matcher = match glob(pattern) {
        Ok(matcher) => matcher,
        Err(message) => return ToolOutput::error(message),
    };
    let base = match resolve_base(workspace, args.path.as_deref()) {
        Ok(base) => base,
        Err(output) => return output,
    };
    let mut entries = Vec::new();
    let mut more = false;
    for entry in walk(workspace, &base).flatten() {
        let Ok(relative) = entry.path().strip_prefix(&base) else {
            continue;
        };
        if relative.as_os_str().is_empty() || !matcher.is_match(relative) {
            continue;
        }
        if entries.len() == MAX_LIST_ENTRIES {
            more = true;
            break;
        }
        let is_dir = entry.file_type().is_some_and(|kind| kind.is_dir());
        let shown = workspace.display(entry.path());
        entries.push(if is_dir { format!("{shown}/") } else { shown });
    }
    if entries.is_empty() {
        return ToolOutput::ok(format!("no entries match {pattern:?}"));
    }
    let mut text = entries.join("\n");
    if more {
        text.push_str(&format!(
            "\n[stopped at {MAX_LIST_ENTRIES} entries; narrow the pattern or the path]"
        ));
    }
    ToolOutput::ok(text)
}

pub fn grep(workspace: &Workspace, args: GrepArgs) -> ToolOutput {
    let regex = match RegexBuilder::new(&args.pattern).size_limit(1 << 22).build() {
        Ok(regex) => regex,
        Err(error) => return ToolOutput::error(format!("invalid regex: {error}")),
    };
    let matcher = match args.glob.as_deref().map(glob).transpose() {
        Ok(matcher) => matcher,
        Err(message) => return ToolOutput::error(message),
    };
    let base = match resolve_base(workspace, args.path.as_deref()) {
        Ok(base) => base,
        Err(output) => return output,
    };
    let mut matches = Vec::new();
    let mut more = false;
    'files: for entry in walk(workspace, &base).flatten() {
        if !entry.file_type().is_some_and(|kind| kind.is_file()) || !entry.path().starts_with(&base)
        {
            continue;
        }
        if let Some(matcher) = &matcher {
            let relative = entry.path().strip_prefix(&base).unwrap_or(entry.path());
            // A pattern without a slash matches the file name at any depth, as in
            // ripgrep's `--glob`.
            let name_only = !args.glob.as_deref().unwrap_or_default().contains('/');
            let candidate = if name_only {
                Path::new(entry.file_name())
            } else {
                relative
            };
            if !matcher.is_match(candidate) {
                continue;
            }
        }
        let Some(text) = read_text(entry.path()) else {
            continue;
        };
        let shown = workspace.display(entry.path());
        for (number, line) in text.lines().enumerate() {
            if regex.is_match(line) {
                if matches.len() == MAX_GREP_MATCHES {
                    more = true;
                    break 'files;
                }
                let line: String = if line.chars().count() > MAX_GREP_LINE_CHARS {
                    line.chars()
                        .take(MAX_GREP_LINE_CHARS)
                        .chain("...".chars())
                        .collect()
                } else {
                    line.to_string()
                };
                matches.push(format!("{shown}:{}: {line}", number + 1));
            }
        }
    }
    if matches.is_empty() {
        return ToolOutput::ok(format!("no matches for {:?}", args.pattern));
    }
    let mut text = matches.join("\n");
    if more {
        text.push_str(&format!(
            "\n[stopped at {MAX_GREP_MATCHES} matches; narrow the pattern, path or glob]"
        ));
    }
    ToolOutput::ok(text)
}

/// A file's text, or `None` for files too large or binary.
fn read_text(path: &Path) -> Option<String> {
    let metadata = fs::metadata(path).ok()?;
    if metadata.len() > MAX_GREP_FILE_BYTES {
        return None;
    }
    let mut bytes = Vec::new();
    fs::File::open(path).ok()?.read_to_end(&mut bytes).ok()?;
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return None;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/deep")).unwrap();
        fs::create_dir_all(root.join("target/debug")).unwrap();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
        fs::write(
            root.join("src/main.rs"),
            "fn main() {\n    println!(\"hello\");\n}\n",
        )
        .unwrap();
        fs::write(root.join("src/deep/lib.rs"), "pub fn hello() {}\n").unwrap();
        fs::write(root.join("README.md"), "say hello\n").unwrap();
        fs::write(root.join("debug.log"), "hello from a log\n").unwrap();
        fs::write(root.join("target/debug/out.rs"), "hello\n").unwrap();
        fs::write(root.join(".git/config"), "hello\n").unwrap();
        fs::write(root.join("binary.bin"), b"hello\0world").unwrap();
        let ws = Workspace::new(root, Path::new("/workspace")).unwrap();
        (dir, ws)
    }

    #[test]
    fn list_honours_gitignore_and_globs() {
        let (_dir, ws) = workspace();
        let all = list(
            &ws,
            ListArgs {
                pattern: None,
                path: None,
            },
        );
        assert_eq!(
            all.text,
            [
                ".gitignore",
                "README.md",
                "binary.bin",
                "src/",
                "src/deep/",
                "src/deep/lib.rs",
                "src/main.rs"
            ]
            .join("\n")
        );
        let rust = list(
            &ws,
            ListArgs {
                pattern: Some("**/*.rs".into()),
                path: None,
            },
        );
        assert_eq!(rust.text, "src/deep/lib.rs\nsrc/main.rs");
        let under = list(
            &ws,
            ListArgs {
                pattern: Some("*.rs".into()),
                path: Some("src/deep".into()),
            },
        );
        assert_eq!(under.text, "src/deep/lib.rs");
    }

    #[test]
    fn grep_finds_lines_and_skips_ignored_and_binary_files() {
        let (_dir, ws) = workspace();
        let found = grep(
            &ws,
            GrepArgs {
                pattern: "hel+o".into(),
                path: None,
                glob: None,
            },
        );
        assert_eq!(
            found.text,
            [
                "README.md:1: say hello",
                "src/deep/lib.rs:1: pub fn hello() {}",
                "src/main.rs:2:     println!(\"hello\");"
            ]
            .join("\n")
        );
        let only_md = grep(
            &ws,
            GrepArgs {
                pattern: "hello".into(),
                path: None,
                glob: Some("*.md".into()),
            },
        );
        assert_eq!(only_md.text, "README.md:1: say hello");
        let in_dir = grep(
            &ws,
            GrepArgs {
                pattern: "hello".into(),
                path: Some("/workspace/src/deep".into()),
                glob: None,
            },
        );
        assert_eq!(in_dir.text, "src/deep/lib.rs:1: pub fn hello() {}");
    }

    #[test]
    fn bad_input_is_a_tool_error() {
        let (_dir, ws) = workspace();
        assert!(
            grep(
                &ws,
                GrepArgs {
                    pattern: "(".into(),
                    path: None,
                    glob: None
                }
            )
            .is_error
        );
        assert!(
            list(
                &ws,
                ListArgs {
                    pattern: Some("[".into()),
                    path: None
                }
            )
            .is_error
        );
        assert!(
            list(
                &ws,
                ListArgs {
                    pattern: None,
                    path: Some("../..".into())
                }
            )
            .is_error
        );
        assert!(
            list(
                &ws,
                ListArgs {
                    pattern: None,
                    path: Some("missing".into())
                }
            )
            .is_error
        );
    }
}
