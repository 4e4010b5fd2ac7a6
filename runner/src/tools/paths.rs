//! Path confinement: every path a tool touches is inside the workspace, and stays
//! inside while the tool uses it.
//!
//! The model names paths relative to the workspace, or absolute as commands inside
//! the sandbox see them (under `sandbox_workspace_dir`, for example `/workspace/a.txt`);
//! both map onto the runner's `workspace_dir`. Commands in the sandbox can change the
//! workspace at any moment (swap a directory for a symlink between a check and an
//! open, or plant a named pipe), so a path is never checked and then opened as a host
//! path string. Instead [`Workspace`] holds a handle on the workspace directory (a
//! `cap-std` [`Dir`], whose operations all stay beneath it) and walks a path one
//! component at a time from that handle: each directory on the way is opened without
//! following symlinks, and a symlink met on the way is read and its target walked in
//! turn, so one that leads outside (through `..`, or an absolute target that is not the
//! workspace) is refused rather than followed. The walk ends in a [`Location`]: a handle
//! on the directory holding the entry, and the entry's name there. Entries are opened
//! without following symlinks and without blocking, and anything but a regular file (or
//! a directory where one is wanted) is refused. Writes go to a temporary file beside the
//! entry, which is then renamed over it.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};
use nix::libc;

/// Symlinks one path may go through, as Linux allows.
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{0} is outside the workspace")]
    Outside(String),
    #[error("{0} climbs out of the workspace with `..`")]
    Escapes(String),
    #[error("{path} cannot be resolved: {cause}")]
    Unresolvable { path: String, cause: io::Error },
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} is a directory")]
    IsADirectory(String),
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error(
        "{0} is not a regular file (it is a pipe, socket or device); the file tools only read and write regular files"
    )]
    NotAFile(String),
    #[error("{0} goes through more than {MAX_SYMLINKS} symlinks")]
    SymlinkLoop(String),
    #[error("{0} changed while it was being opened; try again")]
    Changed(String),
    #[error("cannot access {path}: {cause}")]
    Io { path: String, cause: io::Error },
}

#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace as the runner sees it, canonical (symlinks resolved).
    root: PathBuf,
    /// `workspace_dir` as configured, in case the model repeats it literally.
    configured_root: PathBuf,
    /// The workspace as commands inside the sandbox see it.
    sandbox_root: PathBuf,
    /// A handle on the workspace directory, opened once: every entry the tools touch
    /// is reached from it.
    dir: Arc<Dir>,
}

/// One step of a walk: into an entry, or back to the directory above.
enum Step {
    Name(OsString),
    Parent,
}

/// Where a path leads inside the workspace: a handle on the directory that holds the
/// entry and the entry's name there. The entry, and directories between, may not
/// exist yet (a file about to be written).
#[derive(Debug)]
pub struct Location {
    /// The path as the model gave it, for messages.
    input: String,
    /// The deepest existing directory on the way to the entry.
    parent: Dir,
    /// Where `parent` is, relative to the workspace, through no symlink.
    parent_path: PathBuf,
    /// Directories that do not exist yet between `parent` and the entry, outermost
    /// first.
    missing: Vec<OsString>,
    /// The entry's name; `None` when the location is `parent` itself.
    name: Option<OsString>,
}

/// What opening an entry for reading found.
#[derive(Debug)]
pub enum Opened {
    File(fs::File),
    Directory,
    /// A pipe, socket or device: never read.
    Other,
}

impl Workspace {
    /// `workspace_dir` must exist.
    pub fn new(workspace_dir: &Path, sandbox_workspace_dir: &Path) -> io::Result<Workspace> {
        let root = fs::canonicalize(workspace_dir)?;
        let dir = Dir::open_ambient_dir(&root, ambient_authority())?;
        Ok(Workspace {
            root,
            configured_root: workspace_dir.to_path_buf(),
            sandbox_root: sandbox_workspace_dir.to_path_buf(),
            dir: Arc::new(dir),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The handle on the workspace directory.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Maps a path the model gave onto a path inside the workspace on this machine,
    /// following symlinks that stay inside. The result may not exist yet (a file about
    /// to be written). For showing only: the tools open what [`Workspace::locate`]
    /// returns, never a host path.
    pub fn resolve(&self, input: &str) -> Result<PathBuf, PathError> {
        Ok(self
            .locate(input)?
            .relative()
            .components()
            .fold(self.root.clone(), |path, part| path.join(part)))
    }

    /// Walks a path the model gave from the workspace handle, following symlinks that
    /// stay inside and refusing any that lead out.
    pub fn locate(&self, input: &str) -> Result<Location, PathError> {
        let mut pending: VecDeque<Step> = self.lexical(input)?.into_iter().collect();
        // The directories walked into, each opened from the one before without
        // following symlinks, with their names: `..` goes back up this stack and never
        // asks the file system, so it cannot leave the workspace.
        let mut dirs: Vec<(Dir, OsString)> = Vec::new();
        let mut missing: Vec<OsString> = Vec::new();
        let mut name = None;
        let mut links = 0;
        while let Some(step) = pending.pop_front() {
            let part = match step {
                Step::Parent => {
                    if missing.pop().is_none() && dirs.pop().is_none() {
                        return Err(PathError::Outside(input.to_string()));
                    }
                    continue;
                }
                Step::Name(part) => part,
            };
            if !missing.is_empty() {
                missing.push(part);
                continue;
            }
            let current = dirs.last().map_or(&*self.dir, |(dir, _)| dir);
            let metadata = match current.symlink_metadata(&part) {
                Ok(metadata) => metadata,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    missing.push(part);
                    continue;
                }
                Err(cause) => {
                    return Err(PathError::Unresolvable {
                        path: input.to_string(),
                        cause,
                    });
                }
            };
            if metadata.is_symlink() {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(PathError::SymlinkLoop(input.to_string()));
                }
                let target = current
                    .read_link_contents(&part)
                    .map_err(|_| PathError::Changed(input.to_string()))?;
                let Some(steps) = self.link_steps(&target) else {
                    return Err(PathError::Outside(input.to_string()));
                };
                if target.is_absolute() {
                    dirs.clear();
                }
                for step in steps.into_iter().rev() {
                    pending.push_front(step);
                }
                continue;
            }
            if metadata.is_dir() {
                let dir =
                    open_directory(current, &part).map_err(|error| match error.raw_os_error() {
                        // It was a directory a moment ago; a symlink or a file took its place.
                        Some(libc::ELOOP | libc::ENOTDIR) => PathError::Changed(input.to_string()),
                        _ => PathError::Unresolvable {
                            path: input.to_string(),
                            cause: error,
                        },
                    })?;
                dirs.push((dir, part));
                continue;
            }
            if !pending.is_empty() {
                return Err(PathError::NotADirectory(input.to_string()));
            }
            name = Some(part);
        }
        let name = name.or_else(|| missing.pop());
        let parent_path: PathBuf = dirs.iter().map(|(_, part)| part).collect();
        let parent = match dirs.pop() {
            Some((dir, _)) => dir,
            None => self.dir.try_clone().map_err(|cause| PathError::Io {
                path: input.to_string(),
                cause,
            })?,
        };
        Ok(Location {
            input: input.to_string(),
            parent,
            parent_path,
            missing,
            name,
        })
    }

    /// The path's names relative to the workspace, `..` worked out lexically.
    fn lexical(&self, input: &str) -> Result<Vec<Step>, PathError> {
        let given = Path::new(input.trim());
        let relative = if given.is_absolute() {
            self.strip_root(given)
                .ok_or_else(|| PathError::Outside(input.to_string()))?
        } else {
            given
        };

        let mut inside = Vec::new();
        for component in relative.components() {
            match component {
                Component::CurDir => {}
                Component::Normal(name) => inside.push(Step::Name(name.to_os_string())),
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
        Ok(inside)
    }

    /// An absolute path made relative to the workspace, if it names a place in it.
    fn strip_root<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        [&self.sandbox_root, &self.root, &self.configured_root]
            .iter()
            .find_map(|root| path.strip_prefix(root).ok())
    }

    /// The steps a symlink's target asks for: relative to the link's directory, or,
    /// for an absolute target, from the workspace root when the target names the
    /// workspace (as commands in the sandbox or on this machine see it). `None` for an
    /// absolute target elsewhere.
    fn link_steps(&self, target: &Path) -> Option<Vec<Step>> {
        let relative = if target.is_absolute() {
            self.strip_root(target)?
        } else {
            target
        };
        relative
            .components()
            .filter_map(|component| match component {
                Component::CurDir => None,
                Component::ParentDir => Some(Some(Step::Parent)),
                Component::Normal(name) => Some(Some(Step::Name(name.to_os_string()))),
                Component::RootDir | Component::Prefix(_) => Some(None),
            })
            .collect()
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

impl Location {
    /// Where the entry is, relative to the workspace.
    pub fn relative(&self) -> PathBuf {
        let mut path = self.parent_path.clone();
        path.extend(&self.missing);
        path.extend(&self.name);
        path
    }

    /// How the entry is shown to the model: relative to the workspace, `.` for the
    /// workspace itself.
    pub fn display(&self) -> String {
        let relative = self.relative();
        if relative.as_os_str().is_empty() {
            ".".to_string()
        } else {
            relative.to_string_lossy().into_owned()
        }
    }

    pub fn exists(&self) -> bool {
        self.missing.is_empty()
            && self
                .name
                .as_ref()
                .is_none_or(|name| self.parent.symlink_metadata(name).is_ok())
    }

    /// Opens the entry for reading. A pipe, socket or device is refused without
    /// waiting for a writer, and so is a directory.
    pub fn open_file(&self) -> Result<fs::File, PathError> {
        let name = self.existing_name()?;
        match open_for_reading(&self.parent, name).map_err(|error| self.error(error))? {
            Opened::File(file) => Ok(file),
            Opened::Directory => Err(PathError::IsADirectory(self.input.clone())),
            Opened::Other => Err(PathError::NotAFile(self.input.clone())),
        }
    }

    /// A handle on the directory at this location.
    pub fn open_dir(&self) -> Result<Dir, PathError> {
        if !self.missing.is_empty() {
            return Err(PathError::NotFound(self.input.clone()));
        }
        match &self.name {
            None => self.parent.try_clone(),
            Some(name) => open_directory(&self.parent, name),
        }
        .map_err(|error| self.error(error))
    }

    /// The directory holding the entry, and the entry's name there, for an entry that
    /// exists; `None` for the name when the location is that directory itself.
    pub fn parts(&self) -> Result<(&Dir, Option<&OsStr>), PathError> {
        if !self.missing.is_empty() {
            return Err(PathError::NotFound(self.input.clone()));
        }
        Ok((&self.parent, self.name.as_deref()))
    }

    /// Creates or replaces the entry with `contents`, creating missing directories.
    /// The bytes go to a temporary file in the entry's directory, which is then renamed
    /// over the entry: readers see the old file or the new one, never a part of one, and
    /// a symlink swapped in meanwhile is replaced rather than followed. A file that is
    /// replaced keeps its permissions (and, where the runner may, its owner).
    pub fn write(&self, contents: &[u8]) -> Result<(), PathError> {
        let Some(name) = &self.name else {
            return Err(PathError::IsADirectory(self.input.clone()));
        };
        let mut created: Option<Dir> = None;
        for part in &self.missing {
            let current = created.as_ref().unwrap_or(&self.parent);
            match current.create_dir(part) {
                Ok(()) => {}
                // Something made it meanwhile; opening it below checks it is a directory.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(self.error(error)),
            }
            let next = open_directory(current, part).map_err(|error| self.error(error))?;
            created = Some(next);
        }
        let dir = created.as_ref().unwrap_or(&self.parent);

        let existing = match dir.symlink_metadata(name) {
            Ok(metadata) if metadata.is_dir() => {
                return Err(PathError::IsADirectory(self.input.clone()));
            }
            Ok(metadata) if metadata.is_file() => Some(metadata),
            Ok(metadata) if !metadata.is_symlink() => {
                return Err(PathError::NotAFile(self.input.clone()));
            }
            _ => None,
        };

        let temporary = temporary_name();
        let mut options = OpenOptions::new();
        options
            .write(true)
            .create_new(true)
            .mode(0o666)
            .custom_flags(libc::O_NOFOLLOW);
        let mut file = dir
            .open_with(&temporary, &options)
            .map_err(|error| self.error(error))?
            .into_std();
        let written = (|| {
            if let Some(existing) = &existing {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(fs::Permissions::from_mode(existing.mode() & 0o7777))?;
                // Only a privileged runner may give the file back to its owner; otherwise
                // it stays the runner's, as a newly written file would be.
                let _ =
                    std::os::unix::fs::fchown(&file, Some(existing.uid()), Some(existing.gid()));
            }
            file.write_all(contents)?;
            drop(file);
            dir.rename(&temporary, dir, name)
        })();
        written.map_err(|error| {
            let _ = dir.remove_file(&temporary);
            self.error(error)
        })
    }

    fn existing_name(&self) -> Result<&OsStr, PathError> {
        if !self.missing.is_empty() {
            return Err(PathError::NotFound(self.input.clone()));
        }
        self.name
            .as_deref()
            .ok_or_else(|| PathError::IsADirectory(self.input.clone()))
    }

    /// Maps an I/O error on the entry to what the model should hear.
    fn error(&self, error: io::Error) -> PathError {
        let path = self.input.clone();
        match error.raw_os_error() {
            Some(libc::ENOENT) => PathError::NotFound(path),
            Some(libc::EISDIR) => PathError::IsADirectory(path),
            Some(libc::ENOTDIR) => PathError::NotADirectory(path),
            // The walk resolved every symlink; one here was swapped in since.
            Some(libc::ELOOP) => PathError::Changed(path),
            Some(libc::ENXIO) => PathError::NotAFile(path),
            _ => PathError::Io { path, cause: error },
        }
    }
}

/// Opens the entry `name` of `dir` for reading, without following a symlink and
/// without blocking, and says what it is.
pub fn open_for_reading(dir: &Dir, name: &OsStr) -> io::Result<Opened> {
    let mut options = OpenOptions::new();
    // O_NONBLOCK: opening a named pipe would otherwise wait for a writer (regular
    // files ignore the flag). O_NOCTTY: a terminal device must never become the
    // runner's. O_NOFOLLOW: the entry was found not to be a symlink, so one now is a
    // swap and is not followed.
    options
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW);
    let file = dir.open_with(name, &options)?.into_std();
    let kind = file.metadata()?.file_type();
    Ok(if kind.is_file() {
        Opened::File(file)
    } else if kind.is_dir() {
        Opened::Directory
    } else {
        Opened::Other
    })
}

/// Opens the directory `name` of `dir`, refusing a symlink in its place.
pub fn open_directory(dir: &Dir, name: &OsStr) -> io::Result<Dir> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW);
    Ok(Dir::from_std_file(
        dir.open_with(name, &options)?.into_std(),
    ))
}

/// A fresh name for the temporary file of a write; hidden, and unlikely to meet
/// anything a command made.
fn temporary_name() -> String {
    format!(".nightshift-write-{}.tmp", uuid::Uuid::new_v4().simple())
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

    #[test]
    fn absolute_symlinks_naming_the_workspace_as_the_sandbox_sees_it_stay_inside() {
        let (dir, _outside, ws) = setup();
        symlink("/workspace/src", dir.path().join("linked")).unwrap();
        assert_eq!(
            ws.resolve("linked/main.rs").unwrap(),
            ws.root().join("src/main.rs")
        );
        symlink("/workspace/../etc", dir.path().join("climbing")).unwrap();
        assert!(matches!(
            ws.resolve("climbing/passwd"),
            Err(PathError::Outside(_))
        ));
    }

    #[test]
    fn symlink_loops_are_refused() {
        let (dir, _outside, ws) = setup();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        assert!(matches!(ws.resolve("a/x"), Err(PathError::SymlinkLoop(_))));
    }

    #[test]
    fn writes_replace_the_target_of_an_inside_symlink_keeping_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, _outside, ws) = setup();
        fs::set_permissions(
            dir.path().join("src/main.rs"),
            fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        symlink("src/main.rs", dir.path().join("alias")).unwrap();
        ws.locate("alias")
            .unwrap()
            .write(b"fn main() { run() }")
            .unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("src/main.rs")).unwrap(),
            "fn main() { run() }"
        );
        assert!(
            fs::symlink_metadata(dir.path().join("alias"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let metadata = fs::metadata(dir.path().join("src/main.rs")).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o750);
        // The temporary file was renamed away, not left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("src"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["main.rs"]);
    }

    #[test]
    fn writes_never_create_directories_through_an_outward_symlink() {
        let (dir, outside, ws) = setup();
        symlink(outside.path(), dir.path().join("escape_dir")).unwrap();
        symlink("../", dir.path().join("up")).unwrap();
        for path in ["escape_dir/new/file.txt", "up/new/file.txt"] {
            assert!(ws.locate(path).is_err(), "{path} must be refused");
        }
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
    }
}
