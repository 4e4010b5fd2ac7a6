//! The search tools: `list` (files by glob) and `grep` (lines by regex). Both walk the
//! workspace honouring `.gitignore` and `.ignore` files and `.git/info/exclude` (also
//! outside a git repository), skip the `.git` directory, and stop at a cap so one call
//! cannot flood the conversation. Ignore files above the workspace are not read: the
//! host's rules are not the workspace's.
//!
//! The walk goes from the workspace handle (see [`paths`](super::paths)) down through
//! directory handles, each opened without following symlinks, and opens files (and
//! ignore files) from their directory's handle without following symlinks or blocking:
//! a directory swapped for a symlink mid-walk cannot lead it outside the workspace, and
//! a named pipe cannot hang it. Symlinks are listed but never followed or searched.
//! Synchronous; the tool set runs them off the async threads.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use globset::{GlobBuilder, GlobMatcher};
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use regex::RegexBuilder;
use serde::Deserialize;

use super::ToolOutput;
use super::paths::{Opened, Workspace, open_directory, open_for_reading};

const MAX_LIST_ENTRIES: usize = 500;
const MAX_GREP_MATCHES: usize = 200;
const MAX_GREP_LINE_CHARS: usize = 300;
/// Files larger than this are not searched.
const MAX_GREP_FILE_BYTES: u64 = 5 * 1024 * 1024;
/// Ignore files larger than this are not read.
const MAX_IGNORE_FILE_BYTES: u64 = 1024 * 1024;

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

/// What kind of entry the walk met, as the directory listing says (symlinks are not
/// followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Directory,
    File,
    Other,
}

/// One entry met by the walk.
struct Entry<'a> {
    /// The directory holding the entry.
    dir: &'a Dir,
    name: &'a OsStr,
    /// Where the entry is, relative to the workspace.
    path: &'a Path,
    kind: Kind,
}

/// The ignore rules of one directory. As in ripgrep, `.ignore` beats `.gitignore`,
/// which beats `.git/info/exclude`; within one kind the deepest directory decides.
#[derive(Default)]
struct Rules {
    ignore: Option<Gitignore>,
    gitignore: Option<Gitignore>,
    exclude: Option<Gitignore>,
}

/// Walks the workspace from its root, so ignore files between the root and `base`
/// apply, but only descends into `base` and its ancestors. Visits entries in name
/// order, each directory's entries right after it.
struct Walk<'a> {
    workspace: &'a Workspace,
    base: &'a Path,
    rules: Vec<Rules>,
}

impl Walk<'_> {
    fn run(
        workspace: &Workspace,
        base: &Path,
        visit: &mut dyn FnMut(&Entry) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut walk = Walk {
            workspace,
            base,
            rules: Vec::new(),
        };
        walk.directory(workspace.dir(), Path::new(""), visit)
    }

    fn directory(
        &mut self,
        dir: &Dir,
        relative: &Path,
        visit: &mut dyn FnMut(&Entry) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let Ok(listing) = dir.entries() else {
            return ControlFlow::Continue(());
        };
        let mut entries: Vec<(OsString, Kind)> = listing
            .flatten()
            .filter_map(|entry| {
                let kind = entry.file_type().ok()?;
                let kind = if kind.is_dir() {
                    Kind::Directory
                } else if kind.is_file() {
                    Kind::File
                } else {
                    Kind::Other
                };
                Some((entry.file_name(), kind))
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.rules.push(self.load_rules(dir, relative));
        let flow = self.entries(dir, relative, &entries, visit);
        self.rules.pop();
        flow
    }

    fn entries(
        &mut self,
        dir: &Dir,
        relative: &Path,
        entries: &[(OsString, Kind)],
        visit: &mut dyn FnMut(&Entry) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        for (name, kind) in entries {
            if name == ".git" {
                continue;
            }
            let path = relative.join(name);
            if !(path.starts_with(self.base) || self.base.starts_with(&path)) {
                continue;
            }
            if self.ignored(&path, *kind == Kind::Directory) {
                continue;
            }
            visit(&Entry {
                dir,
                name,
                path: &path,
                kind: *kind,
            })?;
            if *kind == Kind::Directory
                && let Ok(child) = open_directory(dir, name)
            {
                self.directory(&child, &path, visit)?;
            }
        }
        ControlFlow::Continue(())
    }

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let absolute = self.workspace.root().join(path);
        let kinds: [fn(&Rules) -> Option<&Gitignore>; 3] = [
            |rules| rules.ignore.as_ref(),
            |rules| rules.gitignore.as_ref(),
            |rules| rules.exclude.as_ref(),
        ];
        for kind in kinds {
            for rules in self.rules.iter().rev() {
                match kind(rules).map(|matcher| matcher.matched(&absolute, is_dir)) {
                    Some(Match::Ignore(_)) => return true,
                    Some(Match::Whitelist(_)) => return false,
                    _ => {}
                }
            }
        }
        false
    }

    /// The rules of the ignore files in `dir`, read through its handle. The rules
    /// match paths under the directory's place on this machine; matching is textual and
    /// never touches the file system.
    fn load_rules(&self, dir: &Dir, relative: &Path) -> Rules {
        let root = self.workspace.root().join(relative);
        let exclude = open_directory(dir, OsStr::new(".git"))
            .and_then(|git| open_directory(&git, OsStr::new("info")))
            .ok()
            .and_then(|info| rules_from(&info, ".git/info/exclude", "exclude", &root));
        Rules {
            ignore: rules_from(dir, ".ignore", ".ignore", &root),
            gitignore: rules_from(dir, ".gitignore", ".gitignore", &root),
            exclude,
        }
    }
}

/// The rules of the ignore file `name` in `dir`, if it is a regular file; lines that
/// are not valid globs are skipped.
fn rules_from(dir: &Dir, shown: &str, name: &str, root: &Path) -> Option<Gitignore> {
    let text = read_regular(dir, OsStr::new(name), MAX_IGNORE_FILE_BYTES)?;
    let mut builder = GitignoreBuilder::new(root);
    let from = Some(root.join(shown));
    for line in text.lines() {
        let _ = builder.add_line(from.clone(), line);
    }
    builder.build().ok()
}

/// The text of the regular file `name` in `dir`, or `None` for anything else, files
/// larger than `max` and binary files.
fn read_regular(dir: &Dir, name: &OsStr, max: u64) -> Option<String> {
    let Ok(Opened::File(file)) = open_for_reading(dir, name) else {
        return None;
    };
    if file.metadata().ok()?.len() > max {
        return None;
    }
    let mut bytes = Vec::new();
    // The file may grow while it is read; never take more than the limit.
    file.take(max).read_to_end(&mut bytes).ok()?;
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return None;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The path to search or list, relative to the workspace, which must exist.
fn resolve_base(workspace: &Workspace, path: Option<&str>) -> Result<PathBuf, ToolOutput> {
    let shown = path.unwrap_or(".");
    let base = workspace
        .locate(shown)
        .map_err(|error| ToolOutput::error(error.to_string()))?;
    if !base.exists() {
        return Err(ToolOutput::error(format!("{shown} does not exist")));
    }
    Ok(base.relative())
}

/// How a path relative to the workspace is shown.
fn shown(path: &Path) -> String {
    path.to_string_lossy().into_owned()
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
    let _ = Walk::run(workspace, &base, &mut |entry| {
        let Ok(relative) = entry.path.strip_prefix(&base) else {
            return ControlFlow::Continue(());
        };
        if relative.as_os_str().is_empty() || !matcher.is_match(relative) {
            return ControlFlow::Continue(());
        }
        if entries.len() == MAX_LIST_ENTRIES {
            more = true;
            return ControlFlow::Break(());
        }
        let name = shown(entry.path);
        entries.push(if entry.kind == Kind::Directory {
            format!("{name}/")
        } else {
            name
        });
        ControlFlow::Continue(())
    });
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
    // A pattern without a slash matches the file name at any depth, as in ripgrep's
    // `--glob`.
    let name_only = !args.glob.as_deref().unwrap_or_default().contains('/');
    let mut matches = Vec::new();
    let mut more = false;
    let _ = Walk::run(workspace, &base, &mut |entry| {
        if entry.kind != Kind::File || !entry.path.starts_with(&base) {
            return ControlFlow::Continue(());
        }
        if let Some(matcher) = &matcher {
            let relative = entry.path.strip_prefix(&base).unwrap_or(entry.path);
            let candidate = if name_only {
                Path::new(entry.name)
            } else {
                relative
            };
            if !matcher.is_match(candidate) {
                return ControlFlow::Continue(());
            }
        }
        let Some(text) = read_regular(entry.dir, entry.name, MAX_GREP_FILE_BYTES) else {
            return ControlFlow::Continue(());
        };
        let name = shown(entry.path);
        for (number, line) in text.lines().enumerate() {
            if regex.is_match(line) {
                if matches.len() == MAX_GREP_MATCHES {
                    more = true;
                    return ControlFlow::Break(());
                }
                let line: String = if line.chars().count() > MAX_GREP_LINE_CHARS {
                    line.chars()
                        .take(MAX_GREP_LINE_CHARS)
                        .chain("...".chars())
                        .collect()
                } else {
                    line.to_string()
                };
                matches.push(format!("{name}:{}: {line}", number + 1));
            }
        }
        ControlFlow::Continue(())
    });
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

#[cfg(test)]
mod tests {
    use std::fs;

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
