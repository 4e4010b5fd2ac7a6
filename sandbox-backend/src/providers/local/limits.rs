//! Resource limits for every command the local provider runs, applied by starting the
//! command under util-linux `prlimit` (the workspace forbids the `unsafe` a
//! `setrlimit` in `pre_exec` would need, and a prefix also reaches the commands the
//! runner starts through its `command_wrapper`).
//!
//! The limits are per process (and, for processes, per user): they stop fork bombs,
//! runaway CPU loops and unbounded memory reservations, not a determined attacker.

use std::path::{Path, PathBuf};

use nix::sys::resource::{Resource, getrlimit};

/// The limits applied to each command. Defaults are generous enough for builds and
/// test suites; they become configurable with per-sandbox templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Processes (and threads) of the user (`RLIMIT_NPROC`).
    pub processes: u64,
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Address space per process, in bytes (`RLIMIT_AS`). Large, because runtimes such
    /// as V8 and WebAssembly engines reserve far more virtual memory than they use:
    /// Chromium (the desktop's browser) reserves its V8 sandbox of 1 TiB per process
    /// and dies with SIGTRAP under 32 GiB. Memory actually used is bounded by the
    /// cgroup (`SANDBOX_MEMORY_MAX`), not by this.
    pub address_space_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
}

impl Default for ResourceLimits {
    fn default() -> ResourceLimits {
        ResourceLimits {
            processes: 4096,
            cpu_seconds: 2 * 60 * 60,
            address_space_bytes: 4 * 1024 * 1024 * 1024 * 1024,
            open_files: 8192,
        }
    }
}

impl ResourceLimits {
    /// Lowers each limit to the backend's own hard limit: raising a hard limit needs
    /// privileges, and `prlimit` would then fail every command.
    pub fn clamped_to_own_limits(self) -> ResourceLimits {
        let clamp = |resource: Resource, wanted: u64| match getrlimit(resource) {
            Ok((_, hard)) => wanted.min(hard),
            Err(_) => wanted,
        };
        ResourceLimits {
            processes: clamp(Resource::RLIMIT_NPROC, self.processes),
            cpu_seconds: clamp(Resource::RLIMIT_CPU, self.cpu_seconds),
            address_space_bytes: clamp(Resource::RLIMIT_AS, self.address_space_bytes),
            open_files: clamp(Resource::RLIMIT_NOFILE, self.open_files),
        }
    }

    /// The `prlimit ... --` argv prefix setting these limits (soft and hard alike).
    pub fn prlimit_prefix(&self, prlimit: &Path) -> Vec<String> {
        vec![
            prlimit.display().to_string(),
            format!("--nproc={}", self.processes),
            format!("--cpu={}", self.cpu_seconds),
            format!("--as={}", self.address_space_bytes),
            format!("--nofile={}", self.open_files),
            "--".into(),
        ]
    }
}

impl ResourceLimits {
    /// The `--rlimit` options of `sandbox-backend __launch` setting these limits.
    pub fn launch_options(&self) -> Vec<String> {
        [
            ("nproc", self.processes),
            ("cpu", self.cpu_seconds),
            ("as", self.address_space_bytes),
            ("nofile", self.open_files),
        ]
        .into_iter()
        .flat_map(|(name, value)| ["--rlimit".to_string(), format!("{name}={value}")])
        .collect()
    }
}

/// Finds `prlimit` on the usual system paths.
pub fn find_prlimit() -> Option<PathBuf> {
    ["/usr/bin/prlimit", "/bin/prlimit", "/usr/local/bin/prlimit"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_sets_every_limit_and_ends_the_options() {
        let limits = ResourceLimits {
            processes: 10,
            cpu_seconds: 20,
            address_space_bytes: 30,
            open_files: 40,
        };
        let prefix = limits.prlimit_prefix(Path::new("/usr/bin/prlimit"));
        assert_eq!(
            prefix,
            [
                "/usr/bin/prlimit",
                "--nproc=10",
                "--cpu=20",
                "--as=30",
                "--nofile=40",
                "--"
            ]
        );
    }

    #[test]
    fn clamping_never_raises_a_limit() {
        let limits = ResourceLimits::default();
        let clamped = limits.clamped_to_own_limits();
        assert!(clamped.open_files <= limits.open_files);
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(clamped.open_files <= hard);
    }

    #[test]
    fn prlimit_applies_the_limits() {
        let prlimit = find_prlimit().expect("util-linux prlimit is installed");
        let limits = ResourceLimits {
            open_files: 123,
            ..ResourceLimits::default()
        }
        .clamped_to_own_limits();
        let mut argv = limits.prlimit_prefix(&prlimit);
        argv.extend(["sh".into(), "-c".into(), "ulimit -n".into()]);
        let output = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "123");
    }
}
