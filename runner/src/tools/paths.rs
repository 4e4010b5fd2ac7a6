//! Path confinement: every path a tool touches must be inside the workspace.
//!
//! The model names paths relative to the workspace, or absolute as commands inside
//! the sandbox see them (under `sandbox_workspace_dir`, for example `/workspace/a.txt`);
//! both map onto the runner's `workspace_dir`. `..` that climbs above the workspace is
//! refused, and so is any path whose nearest existing ancestor resolves, through
//! symlinks, to somewhere outside it (a link planted by a command cannot be used to
//! read or write host files). Depends on the standard library only.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{0} is outside the workspace")]
    Outside(String),
    #[error("{0} climbs out of the workspace with `..`")]
    Escapes(String),
    #[error("{path} cannot be resolved: {cause}")]
    Unresolvable { path: String, cause: io::Error },
}

#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace as the runner sees it, canonical (symlinks resolved).
    root: PathBuf,
    /// `workspace_dir` as configured, in case the model repeats it literally.
    configured_root: PathBuf,
    /// The workspace as commands inside the sandbox see it.
    sandbox_root: PathBuf,
}

impl Workspace {
    /// `workspace_dir` must exist.
    pub fn new(workspace_dir: &Path, sandbox_workspace_dir: &Path) -> io::Result<Workspace> {
        Ok(Workspace {
            root: fs::canonicalize(workspace_dir)?,
            configured_root: workspace_dir.to_path_buf(),
            sandbox_root: sandbox_workspace_dir.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a path the model gave onto a path inside the workspace on this machine.
    /// The result may not exist yet (a file about to be written).
    pub fn resolve(&self, input: &str) -> Result<PathBuf, PathError> {
        let given = Path::new(input.trim());
        let relative = if given.is_absolute() {
            [&self.sandbox_root, &self.root, &self.configured_root]
                .iter()
                .find_map(|root| given.strip_prefix(root).ok())
                .ok_or_else(|| PathError::Outside(input.to_string()))?
        } else {
            given
        };

        let mut inside = Vec::new();
        for component in relative.components() {
            match component {
                Component::CurDir => {}
                Component::Normal(name) => inside.push(name),
                Component::ParentDir => {
                    if inside.pop().is_none() {
                        return Err(PathError::Escapes(input.to_string()));
                    }
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(PathError::Outside(input.to_string()));
                }
            }
        }
        let lexical: PathBuf = inside
            .iter()
            .fold(self.root.clone(), |path, name| path.join(name));

        // Find the nearest ancestor that exists (a symlink counts as existing even
        // when it dangles, so a dangling link cannot smuggle a write outside), and
        // resolve it for real.
        let mut existing = lexical.as_path();
        let mut missing = Vec::new();
        loop {
            match fs::symlink_metadata(existing) {
                Ok(_) => break,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    let (Some(parent), Some(name)) = (existing.parent(), existing.file_name())
                    else {
                        return Err(PathError::Unresolvable {
                            path: input.to_string(),
                            cause: error,
                        });
                    };
                    missing.push(name);
                    existing = parent;
                }
                Err(cause) => {
                    return Err(PathError::Unresolvable {
                        path: input.to_string(),
                        cause,
                    });
                }
            }
        }
        let resolved = match fs::canonicalize(existing) {
            Ok(resolved) => resolved,
            // A dangling symlink: where it points cannot be checked, so refuse it.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(PathError::Outside(input.to_string()));
            }
            Err(cause) => {
                return Err(PathError::Unresolvable {
                    path: input.to_string(),
                    cause,
                });
            }
        };
        if !resolved.starts_with(&self.root) {
            return Err(PathError::Outside(input.to_string()));
        }
        Ok(missing
            .iter()
            .rev()
            .fold(resolved, |path, name| path.join(name)))
    }

    /// How a path inside the workspace is shown to the model: relative to the
    /// workspace, `.` for the workspace itself.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(relative) if relative.as_os_str().is_empty() => ".".to_string(),
            Ok(relative) => relative.to_string_lossy().into_owned(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir, Workspace) {
        let workspace = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(workspace.path().join("src")).unwrap();
        fs::write(workspace.path().join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        let ws = Workspace::new(workspace.path(), Path::new("/workspace")).unwrap();
        (workspace, outside, ws)
    }

    #[test]
    fn relative_and_sandbox_absolute_paths_map_into_the_workspace() {
        let (_dir, _outside, ws) = setup();
        let expected = ws.root().join("src/main.rs");
        assert_eq!(ws.resolve("src/main.rs").unwrap(), expected);
        assert_eq!(ws.resolve("./src/../src/main.rs").unwrap(), expected);
        assert_eq!(ws.resolve("/workspace/src/main.rs").unwrap(), expected);
        assert_eq!(ws.resolve(&expected.to_string_lossy()).unwrap(), expected);
        assert_eq!(ws.resolve(".").unwrap(), ws.root());
        assert_eq!(ws.resolve("/workspace").unwrap(), ws.root());
        // Not-yet-existing paths resolve too (files about to be written).
        assert_eq!(
            ws.resolve("new/dir/file.txt").unwrap(),
            ws.root().join("new/dir/file.txt")
        );
        assert_eq!(ws.display(&expected), "src/main.rs");
        assert_eq!(ws.display(ws.root()), ".");
    }

    #[test]
    fn dot_dot_escapes_and_foreign_absolute_paths_are_refused() {
        let (_dir, _outside, ws) = setup();
        assert!(matches!(ws.resolve("../x"), Err(PathError::Escapes(_))));
        assert!(matches!(
            ws.resolve("src/../../x"),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(
            ws.resolve("/workspace/../etc/passwd"),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(
            ws.resolve("/etc/passwd"),
            Err(PathError::Outside(_))
        ));
        assert!(matches!(
            ws.resolve("/workspacefoo/a"),
            Err(PathError::Outside(_))
        ));
    }

    #[test]
    fn symlinks_resolving_outside_are_refused() {
        let (dir, outside, ws) = setup();
        symlink(outside.path(), dir.path().join("escape_dir")).unwrap();
        symlink(
            outside.path().join("secret.txt"),
            dir.path().join("escape_file"),
        )
        .unwrap();
        symlink(
            outside.path().join("missing.txt"),
            dir.path().join("dangling"),
        )
        .unwrap();
        for path in [
            "escape_dir/secret.txt",
            "escape_dir/new.txt",
            "escape_file",
            "dangling",
            "escape_dir",
        ] {
            assert!(
                matches!(ws.resolve(path), Err(PathError::Outside(_))),
                "{path} must be refused"
            );
        }
    }

    #[test]
    fn symlinks_staying_inside_are_fine() {
        let (dir, _outside, ws) = setup();
        symlink(dir.path().join("src"), dir.path().join("source")).unwrap();
        assert_eq!(
            ws.resolve("source/main.rs").unwrap(),
            ws.root().join("src/main.rs")
        );
    }
}
