//! Per-sandbox resource-control groups, where the host lets the backend create them
//! (as root with cgroup v1 `pids` and `memory` controllers mounted, as on this
//! machine and in most containers): a cap on the number of processes of one sandbox
//! (a fork bomb stays inside its own sandbox) and on its memory. Where they cannot be
//! created, the per-process rlimits of [`super::limits`] are all there is.

use std::path::{Path, PathBuf};

/// Processes (and threads) one sandbox may have at once.
pub const PIDS_MAX: u64 = 1024;
/// Memory one sandbox may use.
pub const MEMORY_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Cgroups {
    /// `(controller, parent directory of the sandboxes' groups)`.
    parents: Vec<(Controller, PathBuf)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Pids,
    Memory,
}

impl Cgroups {
    /// Finds the controllers this process may create groups in, under a parent named
    /// `name` (unique per data directory). `None` when there are none.
    pub fn detect(name: &str) -> Option<Cgroups> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let mut parents = Vec::new();
        for (controller, mount) in [
            (Controller::Pids, "/sys/fs/cgroup/pids"),
            (Controller::Memory, "/sys/fs/cgroup/memory"),
        ] {
            let key = match controller {
                Controller::Pids => "pids",
                Controller::Memory => "memory",
            };
            let Some(path) = own.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == key)
                    .then(|| path.to_string())
            }) else {
                continue;
            };
            let parent = Path::new(mount)
                .join(path.trim_start_matches('/'))
                .join(name);
            if std::fs::create_dir_all(&parent).is_ok() && parent.join("cgroup.procs").exists() {
                parents.push((controller, parent));
            }
        }
        if parents.is_empty() {
            None
        } else {
            Some(Cgroups { parents })
        }
    }

    /// Creates the sandbox's groups with their limits; returns the `cgroup.procs`
    /// files a process joins.
    pub fn create(&self, id: &str) -> Vec<PathBuf> {
        let mut procs = Vec::new();
        for (controller, parent) in &self.parents {
            let dir = parent.join(id);
            if std::fs::create_dir_all(&dir).is_err() {
                continue;
            }
            let limited = match controller {
                Controller::Pids => std::fs::write(dir.join("pids.max"), PIDS_MAX.to_string()),
                Controller::Memory => std::fs::write(
                    dir.join("memory.limit_in_bytes"),
                    MEMORY_MAX_BYTES.to_string(),
                ),
            };
            if limited.is_ok() {
                procs.push(dir.join("cgroup.procs"));
            } else {
                let _ = std::fs::remove_dir(&dir);
            }
        }
        procs
    }

    /// Removes the sandbox's groups (they must be empty; a group still in use stays).
    pub fn remove(&self, id: &str) {
        for (_, parent) in &self.parents {
            let _ = std::fs::remove_dir(parent.join(id));
        }
    }

    /// Whether any process is still in the sandbox's groups.
    pub fn populated(&self, id: &str) -> bool {
        self.parents.iter().any(|(_, parent)| {
            std::fs::read_to_string(parent.join(id).join("cgroup.procs"))
                .is_ok_and(|procs| !procs.trim().is_empty())
        })
    }

    pub fn describe(&self) -> String {
        self.parents
            .iter()
            .map(|(_, parent)| parent.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
