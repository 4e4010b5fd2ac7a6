//! The unprivileged host user sandboxes run as when the backend runs as root.
//!
//! A user namespace maps the sandbox's uid 1000 to whoever starts bubblewrap: started
//! by root, uid 1000 inside *is* host root outside (its files are root's, a process
//! escaping the namespaces is root, and `RLIMIT_NPROC` does not apply to root). So a
//! root backend never starts a sandbox as root: `sandbox-backend __launch` drops to
//! this user (`SANDBOX_HOST_UID` / `SANDBOX_HOST_GID`, default 100000, a uid no
//! account on the host should use) before it becomes bubblewrap, and the runner of a
//! sandbox runs as the same user, so that files the sandbox creates and files the
//! runner's tools create stay editable by both. The backend itself writes into a
//! workspace with this user's file-system identity ([`HostUser::act_as`]), so a file
//! written through the API belongs to the sandbox too and a symlink planted by the
//! sandbox cannot make root write where the sandbox could not.
//!
//! A backend that does not run as root changes nothing: everything runs as its user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{Gid, Uid};

/// The uid (and gid) sandboxes run as under a root backend, unless configured.
pub const DEFAULT_HOST_UID: u32 = 100_000;

/// An unprivileged host uid and gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostUser {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum HostUserError {
    #[error("{name}={value:?} is not a uid/gid number")]
    NotANumber { name: &'static str, value: String },
    #[error("{name} must not be 0: sandboxes must never run as root")]
    Root { name: &'static str },
}

impl HostUser {
    /// The user sandboxes run as: `None` when the backend is not root (they run as the
    /// backend's own user), else `SANDBOX_HOST_UID` / `SANDBOX_HOST_GID` (the gid
    /// defaults to the uid).
    pub fn from_env() -> Result<Option<HostUser>, HostUserError> {
        if !Uid::effective().is_root() {
            return Ok(None);
        }
        let read = |name: &'static str, default: u32| match std::env::var(name) {
            Err(_) => Ok(default),
            Ok(value) if value.trim().is_empty() => Ok(default),
            Ok(value) => match value.trim().parse::<u32>() {
                Ok(0) => Err(HostUserError::Root { name }),
                Ok(id) => Ok(id),
                Err(_) => Err(HostUserError::NotANumber { name, value }),
            },
        };
        let uid = read("SANDBOX_HOST_UID", DEFAULT_HOST_UID)?;
        let gid = read("SANDBOX_HOST_GID", uid)?;
        Ok(Some(HostUser { uid, gid }))
    }

    /// `uid:gid`, as `__launch --user` takes it.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }

    /// Parses [`HostUser::spec`].
    pub fn parse(text: &str) -> Option<HostUser> {
        let (uid, gid) = text.split_once(':')?;
        Some(HostUser {
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        })
    }

    /// Gives `path` (a directory or file this backend just created, not a symlink) to
    /// this user.
    pub fn give(&self, path: &Path) -> std::io::Result<()> {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(std::io::Error::from)
    }

    /// Lets this user reach `path` by name: every directory from `/` down to `path`
    /// that it could not search gets the search bit for others (never the read bit,
    /// so nothing becomes listable). Returns the directories changed.
    pub fn make_reachable(&self, path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        let mut changed = Vec::new();
        for dir in path.ancestors().collect::<Vec<_>>().into_iter().rev() {
            let metadata = std::fs::metadata(dir)?;
            if !metadata.is_dir() || self.can_search(&metadata) {
                continue;
            }
            let mode = metadata.mode() & 0o7777;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001))?;
            changed.push(dir.to_path_buf());
        }
        Ok(changed)
    }

    fn can_search(&self, metadata: &std::fs::Metadata) -> bool {
        let mode = metadata.mode();
        if metadata.uid() == self.uid {
            mode & 0o100 != 0
        } else if metadata.gid() == self.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    }

    /// Runs `work` on this thread with this user's file-system identity (`setfsuid`
    /// and `setfsgid` are per thread): files it creates belong to the user, and the
    /// kernel checks its accesses as the user's. Use from a blocking thread.
    pub fn act_as<T>(&self, work: impl FnOnce() -> T) -> T {
        struct Restore(Uid, Gid);
        impl Drop for Restore {
            fn drop(&mut self) {
                nix::unistd::setfsgid(self.1);
                nix::unistd::setfsuid(self.0);
            }
        }
        let old_gid = nix::unistd::setfsgid(Gid::from_raw(self.gid));
        let old_uid = nix::unistd::setfsuid(Uid::from_raw(self.uid));
        let _restore = Restore(old_uid, old_gid);
        work()
    }

    /// Becomes this user for good (groups, gid, then uid) and checks that root cannot
    /// be regained. For `__launch`, just before it execs bubblewrap.
    pub fn become_for_good(&self) -> Result<(), String> {
        let (uid, gid) = (Uid::from_raw(self.uid), Gid::from_raw(self.gid));
        nix::unistd::setgroups(&[]).map_err(|error| format!("setgroups: {error}"))?;
        nix::unistd::setresgid(gid, gid, gid).map_err(|error| format!("setgid: {error}"))?;
        nix::unistd::setresuid(uid, uid, uid).map_err(|error| format!("setuid: {error}"))?;
        if nix::unistd::setuid(Uid::from_raw(0)).is_ok()
            || nix::unistd::setgid(Gid::from_raw(0)).is_ok()
            || Uid::current().is_root()
            || Uid::effective().is_root()
        {
            return Err("root privileges could be regained after dropping them".into());
        }
        Ok(())
    }
}

/// Whether `path`'s owner is `user` (tests and checks).
pub fn owned_by(path: &Path, user: &HostUser) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.uid() == user.uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_spec_round_trips() {
        let user = HostUser {
            uid: 100_000,
            gid: 100_001,
        };
        assert_eq!(HostUser::parse(&user.spec()), Some(user));
        assert_eq!(HostUser::parse("x:1"), None);
    }

    #[test]
    fn files_written_while_acting_as_the_user_belong_to_it() {
        if !Uid::effective().is_root() {
            return;
        }
        let user = HostUser {
            uid: DEFAULT_HOST_UID,
            gid: DEFAULT_HOST_UID,
        };
        let dir = tempfile::tempdir().unwrap();
        user.give(dir.path()).unwrap();
        let file = dir.path().join("f");
        user.act_as(|| std::fs::write(&file, "x")).unwrap();
        assert!(owned_by(&file, &user));
        // Root's own files stay out of reach while acting as the user.
        let secret = tempfile::tempdir().unwrap();
        std::fs::set_permissions(secret.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let denied = user.act_as(|| std::fs::write(secret.path().join("g"), "x"));
        assert!(denied.is_err());
        // And the thread is root again afterwards.
        std::fs::write(secret.path().join("h"), "x").unwrap();
    }

    #[test]
    fn reachability_adds_only_the_search_bit() {
        if !Uid::effective().is_root() {
            return;
        }
        let user = HostUser {
            uid: DEFAULT_HOST_UID,
            gid: DEFAULT_HOST_UID,
        };
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("a");
        std::fs::create_dir(&inner).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
        let changed = user.make_reachable(&inner).unwrap();
        assert!(changed.contains(&inner));
        let mode = std::fs::metadata(&inner).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o701);
    }
}
