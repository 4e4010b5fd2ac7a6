//! What one sandbox may use, configured per backend from the environment, and which
//! of those limits this host can enforce.
//!
//! | Variable | Default | Limit |
//! |---|---|---|
//! | `SANDBOX_PIDS_MAX` | 1024 | processes and threads (cgroup `pids.max`) |
//! | `SANDBOX_MEMORY_MAX` | 4 GiB | memory, page cache and `/tmp` included (cgroup) |
//! | `SANDBOX_CPU_WEIGHT` | 100 | CPU share under contention, 1 to 10000 (cgroup) |
//! | `SANDBOX_CPU_MAX` | 2 | CPU time as a number of cores, 0 for none (cgroup quota) |
//! | `SANDBOX_TMP_MAX` | 512 MiB | size of the sandbox's `/tmp` (tmpfs `size=`) |
//! | `SANDBOX_DISK_MAX` | 10 GiB | blocks used by its workspace and home (watched) |
//! | `SANDBOX_FILE_MAX` | `SANDBOX_DISK_MAX` | size of any one file (`RLIMIT_FSIZE`) |
//!
//! Sizes take a plain number of bytes or a `K`, `M`, `G` suffix (powers of 1024).

use std::time::Duration;

/// One sandbox's budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub pids: u64,
    pub memory_bytes: u64,
    /// 1 to 10000 (cgroup v2's scale; v1's `cpu.shares` is this times 1024 / 100).
    pub cpu_weight: u64,
    /// Cores' worth of CPU time; `None` leaves the sandbox unthrottled.
    pub cpu_cores: Option<f64>,
    pub tmp_bytes: u64,
    pub disk_bytes: u64,
    pub file_bytes: u64,
    /// How often the disk watcher measures a running sandbox.
    pub disk_check_interval: Duration,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            pids: 1024,
            memory_bytes: 4 * GIB,
            cpu_weight: 100,
            cpu_cores: Some(2.0),
            tmp_bytes: 512 * 1024 * 1024,
            disk_bytes: 10 * GIB,
            file_bytes: 10 * GIB,
            disk_check_interval: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?}: {problem}")]
pub struct BudgetError {
    name: &'static str,
    value: String,
    problem: &'static str,
}

impl Budget {
    /// The budget the environment configures (defaults for what it does not say).
    pub fn from_env() -> Result<Budget, BudgetError> {
        Budget::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Budget, BudgetError> {
        let mut budget = Budget::default();
        let get = |name: &'static str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
                .map(|value| (name, value))
        };
        let error = |name, value: &str, problem| BudgetError {
            name,
            value: value.to_string(),
            problem,
        };
        if let Some((name, value)) = get("SANDBOX_PIDS_MAX") {
            budget.pids = value
                .parse()
                .ok()
                .filter(|pids| *pids >= 8)
                .ok_or_else(|| error(name, &value, "must be a number of processes, at least 8"))?;
        }
        if let Some((name, value)) = get("SANDBOX_MEMORY_MAX") {
            budget.memory_bytes = parse_size(&value)
                .filter(|bytes| *bytes >= 16 * 1024 * 1024)
                .ok_or_else(|| error(name, &value, "must be a size of at least 16M"))?;
        }
        if let Some((name, value)) = get("SANDBOX_CPU_WEIGHT") {
            budget.cpu_weight = value
                .parse()
                .ok()
                .filter(|weight| (1..=10_000).contains(weight))
                .ok_or_else(|| error(name, &value, "must be a number from 1 to 10000"))?;
        }
        if let Some((name, value)) = get("SANDBOX_CPU_MAX") {
            let cores: f64 = value
                .parse()
                .ok()
                .filter(|cores: &f64| cores.is_finite() && *cores >= 0.0)
                .ok_or_else(|| error(name, &value, "must be a number of cores (0 for no cap)"))?;
            budget.cpu_cores = (cores > 0.0).then_some(cores.max(0.01));
        }
        if let Some((name, value)) = get("SANDBOX_TMP_MAX") {
            budget.tmp_bytes = parse_size(&value)
                .filter(|bytes| *bytes >= 1024 * 1024)
                .ok_or_else(|| error(name, &value, "must be a size of at least 1M"))?;
        }
        let mut file_set = false;
        if let Some((name, value)) = get("SANDBOX_DISK_MAX") {
            budget.disk_bytes = parse_size(&value)
                .filter(|bytes| *bytes >= 1024 * 1024)
                .ok_or_else(|| error(name, &value, "must be a size of at least 1M"))?;
        }
        if let Some((name, value)) = get("SANDBOX_FILE_MAX") {
            budget.file_bytes = parse_size(&value)
                .filter(|bytes| *bytes >= 1024 * 1024)
                .ok_or_else(|| error(name, &value, "must be a size of at least 1M"))?;
            file_set = true;
        }
        if !file_set {
            budget.file_bytes = budget.disk_bytes;
        }
        if let Some((name, value)) = get("SANDBOX_DISK_CHECK_MS") {
            let millis: u64 = value
                .parse()
                .ok()
                .filter(|millis| *millis >= 50)
                .ok_or_else(|| {
                    error(
                        name,
                        &value,
                        "must be a number of milliseconds, at least 50",
                    )
                })?;
            budget.disk_check_interval = Duration::from_millis(millis);
        }
        Ok(budget)
    }
}

/// `123`, `64K`, `512M`, `4G` (powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (at, 'k' | 'K') => (&text[..at], 1024),
        (at, 'm' | 'M') => (&text[..at], 1024 * 1024),
        (at, 'g' | 'G') => (&text[..at], GIB),
        _ => (text, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(unit)
}

/// One kind of limit, as `GET /v1/providers` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    Pids,
    Memory,
    Cpu,
    Tmp,
    Disk,
}

impl Limit {
    pub const ALL: [Limit; 5] = [
        Limit::Pids,
        Limit::Memory,
        Limit::Cpu,
        Limit::Tmp,
        Limit::Disk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Limit::Pids => "pids",
            Limit::Memory => "memory",
            Limit::Cpu => "cpu",
            Limit::Tmp => "tmp",
            Limit::Disk => "disk",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 * 1024));
        assert_eq!(parse_size("512m"), Some(512 * 1024 * 1024));
        assert_eq!(parse_size("4G"), Some(4 * GIB));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn the_environment_overrides_defaults_and_the_file_cap_follows_the_disk_cap() {
        let budget = Budget::from_lookup(|name| match name {
            "SANDBOX_PIDS_MAX" => Some("64".into()),
            "SANDBOX_DISK_MAX" => Some("20M".into()),
            "SANDBOX_CPU_MAX" => Some("0.5".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(budget.pids, 64);
        assert_eq!(budget.disk_bytes, 20 * 1024 * 1024);
        assert_eq!(budget.file_bytes, budget.disk_bytes);
        assert_eq!(budget.cpu_cores, Some(0.5));
        assert_eq!(budget.memory_bytes, Budget::default().memory_bytes);
        let none = Budget::from_lookup(|name| (name == "SANDBOX_CPU_MAX").then(|| "0".into()));
        assert_eq!(none.unwrap().cpu_cores, None);
    }

    #[test]
    fn nonsense_is_refused_with_the_variable_named() {
        let error = Budget::from_lookup(|name| (name == "SANDBOX_CPU_WEIGHT").then(|| "0".into()))
            .unwrap_err();
        assert!(error.to_string().contains("SANDBOX_CPU_WEIGHT"));
    }
}
