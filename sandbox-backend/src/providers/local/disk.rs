//! The disk budget of a sandbox: the blocks its workspace and home use, measured
//! periodically by the backend (no quota file system is needed, and nothing needs
//! privileges). A measurement walks both trees without following symbolic links,
//! counts allocated blocks (so sparse files cost what they really use, and hard links
//! are counted once), and stops as soon as the budget is passed or after
//! [`MAX_ENTRIES`] entries, so a sandbox cannot make the walk itself expensive. Each
//! single file is also capped by `RLIMIT_FSIZE` (set by `__launch`), which stops a
//! writer at once between two measurements.
//!
//! Over budget, every command running in the sandbox is killed (its result says
//! "disk budget exceeded") and new commands are refused with the same words, except
//! `rm`, until usage is back under the budget.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::host_user::HostUser;

/// Entries one measurement looks at, at most; a tree with more counts as over budget
/// (millions of files is itself a way to exhaust the host's disk).
pub const MAX_ENTRIES: usize = 2_000_000;

/// What a measurement found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    /// Whether the walk stopped early (over the budget or too many entries).
    pub cut_short: bool,
}

/// Measures the blocks used under `dirs`, stopping once over `budget` bytes.
pub fn measure(dirs: &[PathBuf], budget: u64, max_entries: usize) -> Usage {
    let mut bytes = 0u64;
    let mut entries = 0usize;
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut pending: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = pending.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in listing.flatten() {
            entries += 1;
            if entries > max_entries {
                return Usage {
                    bytes: bytes.max(budget.saturating_add(1)),
                    cut_short: true,
                };
            }
            // `symlink_metadata`: a symbolic link is counted as itself, never followed.
            let Ok(metadata) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if metadata.nlink() > 1
                && !metadata.is_dir()
                && !seen.insert((metadata.dev(), metadata.ino()))
            {
                continue;
            }
            bytes = bytes.saturating_add(metadata.blocks().saturating_mul(512));
            if bytes > budget {
                return Usage {
                    bytes,
                    cut_short: true,
                };
            }
            if metadata.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Usage {
        bytes,
        cut_short: false,
    }
}

/// One running sandbox's disk state, shared by its watcher and its exec calls.
#[derive(Debug, Default)]
pub struct DiskState {
    over: AtomicBool,
    used: AtomicU64,
    /// Bumped each time the watcher kills the sandbox's commands.
    kills: AtomicU64,
}

impl DiskState {
    pub fn over(&self) -> bool {
        self.over.load(Ordering::SeqCst)
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    pub fn kills(&self) -> u64 {
        self.kills.load(Ordering::SeqCst)
    }

    /// Records a measurement; `true` when the sandbox has just gone over budget.
    pub fn record(&self, usage: Usage, budget: u64) -> bool {
        self.used.store(usage.bytes, Ordering::SeqCst);
        let over = usage.bytes > budget;
        let was = self.over.swap(over, Ordering::SeqCst);
        over && !was
    }

    pub fn note_kill(&self) {
        self.kills.fetch_add(1, Ordering::SeqCst);
    }
}

/// The message of a refused or killed command.
pub fn exceeded_message(used: u64, budget: u64) -> String {
    format!(
        "disk budget exceeded: the sandbox's /workspace and /home/sandbox use {} MiB of its {} MiB \
         (SANDBOX_DISK_MAX); its commands were stopped and new ones are refused, except rm, until \
         files are deleted",
        used.div_ceil(1024 * 1024),
        budget / (1024 * 1024)
    )
}

/// Measures as `user` when there is one (the walk then reads only what the sandbox
/// itself could).
pub fn measure_as(user: Option<HostUser>, dirs: &[PathBuf], budget: u64) -> Usage {
    match user {
        Some(user) => user.act_as(|| measure(dirs, budget, MAX_ENTRIES)),
        None => measure(dirs, budget, MAX_ENTRIES),
    }
}

/// Kills every process of the sandbox whose bubblewrap runs as host pid `bwrap`,
/// except its init and its agent (the agent reports the commands' deaths). Returns
/// how many were signalled.
pub fn kill_commands(bwrap: u32) -> usize {
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect()
    };
    let Some(init) = children(bwrap).into_iter().next() else {
        return 0;
    };
    let Some(agent) = children(init).into_iter().next() else {
        return 0;
    };
    let namespace = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(sandbox) = namespace(agent) else {
        return 0;
    };
    let mut killed = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == init || pid == agent || namespace(pid).as_ref() != Some(&sandbox) {
            continue;
        }
        if let Ok(raw) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(raw),
                nix::sys::signal::Signal::SIGKILL,
            );
            killed += 1;
        }
    }
    killed
}

/// The directories a sandbox's disk budget covers.
pub fn covered(dir: &Path) -> Vec<PathBuf> {
    vec![dir.join("workspace"), dir.join("home")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_blocks_not_apparent_sizes_and_never_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a"), vec![1u8; 1024 * 1024]).unwrap();
        // A sparse file of 1 GiB uses (almost) nothing.
        let sparse = std::fs::File::create(root.join("sparse")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        // A link to a big tree outside is not followed.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("big"), vec![1u8; 4 * 1024 * 1024]).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let usage = measure(std::slice::from_ref(&root), u64::MAX, MAX_ENTRIES);
        assert!(
            usage.bytes >= 1024 * 1024 && usage.bytes < 2 * 1024 * 1024,
            "{usage:?}"
        );
        assert!(!usage.cut_short);
    }

    #[test]
    fn the_walk_stops_once_over_budget_or_past_its_entry_bound() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..50 {
            std::fs::write(dir.path().join(index.to_string()), vec![1u8; 8192]).unwrap();
        }
        let over = measure(&[dir.path().to_path_buf()], 16 * 1024, MAX_ENTRIES);
        assert!(over.cut_short && over.bytes > 16 * 1024);
        let many = measure(&[dir.path().to_path_buf()], u64::MAX, 10);
        assert!(many.cut_short);
    }

    #[test]
    fn going_over_is_reported_once_and_coming_back_clears_it() {
        let state = DiskState::default();
        let usage = |bytes| Usage {
            bytes,
            cut_short: false,
        };
        assert!(!state.record(usage(10), 100));
        assert!(state.record(usage(200), 100));
        assert!(!state.record(usage(300), 100));
        assert!(state.over());
        assert!(!state.record(usage(50), 100));
        assert!(!state.over());
        assert!(exceeded_message(200 << 20, 100 << 20).contains("disk budget exceeded"));
    }
}
