//! Per-sandbox resource-control groups, on cgroup v1 and v2: each sandbox gets its
//! own groups with a cap on its processes (a fork bomb stays inside its sandbox), its
//! memory (page cache and `/tmp` included) and its CPU (a weight under contention and
//! a quota), from [`super::budget::Budget`].
//!
//! Each limit goes to the hierarchy that has its controller: a v1 mount
//! (`/sys/fs/cgroup/<controller>`) when the controller is bound there, else the v2
//! hierarchy (`/sys/fs/cgroup` on a pure v2 host, `/sys/fs/cgroup/unified` on a hybrid
//! one), where the backend enables the controller in `cgroup.subtree_control` of its
//! own group and of the sandboxes' parent. A limit no hierarchy can take is reported
//! as missing ([`Cgroups::enforced`]), and the backend refuses to start without it
//! unless told otherwise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::budget::{Budget, Limit};

/// Where one limit is written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    limit: Limit,
    version: Version,
    /// The parent directory of the sandboxes' groups.
    parent: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

#[derive(Debug, Clone)]
pub struct Cgroups {
    places: Vec<Place>,
    budget: Budget,
}

/// Where the hierarchies are mounted and where this process sits in them.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// `(controller, mount point, this process's path)` for v1 controllers.
    pub v1: Vec<(String, PathBuf, String)>,
    /// `(mount point, this process's path)` of the v2 hierarchy.
    pub v2: Option<(PathBuf, String)>,
}

impl Host {
    /// Reads `/proc/self/cgroup` and `/proc/self/mountinfo`.
    pub fn detect() -> Host {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut host = Host::default();
        for line in mountinfo.lines() {
            // `... <mount point> ... - <fstype> <source> <super options>`
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|field| *field == "-") else {
                continue;
            };
            let (Some(mount), Some(fstype)) = (fields.get(4), fields.get(dash + 1)) else {
                continue;
            };
            let options = fields.get(dash + 3).copied().unwrap_or_default();
            match *fstype {
                "cgroup2" => {
                    let path = own
                        .lines()
                        .find_map(|line| line.strip_prefix("0::"))
                        .unwrap_or("/");
                    host.v2 = Some((PathBuf::from(mount), path.to_string()));
                }
                "cgroup" => {
                    for controller in options.split(',') {
                        if !["pids", "memory", "cpu"].contains(&controller) {
                            continue;
                        }
                        let path = own.lines().find_map(|line| {
                            let mut parts = line.splitn(3, ':');
                            let (_, controllers, path) =
                                (parts.next()?, parts.next()?, parts.next()?);
                            controllers
                                .split(',')
                                .any(|c| c == controller)
                                .then(|| path.to_string())
                        });
                        if let Some(path) = path {
                            host.v1
                                .push((controller.to_string(), PathBuf::from(mount), path));
                        }
                    }
                }
                _ => {}
            }
        }
        host
    }
}

fn controller_of(limit: Limit) -> Option<&'static str> {
    match limit {
        Limit::Pids => Some("pids"),
        Limit::Memory => Some("memory"),
        Limit::Cpu => Some("cpu"),
        Limit::Tmp | Limit::Disk => None,
    }
}

impl Cgroups {
    /// Finds, for each cgroup limit, a hierarchy this process may create groups in,
    /// under a parent named `name` (unique per data directory). `None` when there is
    /// none at all.
    pub fn detect(name: &str, budget: Budget) -> Option<Cgroups> {
        Cgroups::detect_on(&Host::detect(), name, budget)
    }

    pub fn detect_on(host: &Host, name: &str, budget: Budget) -> Option<Cgroups> {
        let mut places = Vec::new();
        let mut v2_parent: Option<Option<(PathBuf, BTreeSet<String>)>> = None;
        for limit in [Limit::Pids, Limit::Memory, Limit::Cpu] {
            let Some(controller) = controller_of(limit) else {
                continue;
            };
            let v1 =
                host.v1
                    .iter()
                    .find(|(c, _, _)| c == controller)
                    .and_then(|(_, mount, path)| {
                        let parent = mount.join(path.trim_start_matches('/')).join(name);
                        (std::fs::create_dir_all(&parent).is_ok()
                            && parent.join("cgroup.procs").exists())
                        .then_some(parent)
                    });
            if let Some(parent) = v1 {
                places.push(Place {
                    limit,
                    version: Version::V1,
                    parent,
                });
                continue;
            }
            let v2 = v2_parent.get_or_insert_with(|| {
                let (mount, path) = host.v2.as_ref()?;
                v2_prepare(mount, path, name)
            });
            if let Some((parent, controllers)) = v2
                && controllers.contains(controller)
            {
                places.push(Place {
                    limit,
                    version: Version::V2,
                    parent: parent.clone(),
                });
            }
        }
        (!places.is_empty()).then_some(Cgroups { places, budget })
    }

    /// The limits these groups enforce.
    pub fn enforced(&self) -> BTreeSet<Limit> {
        self.places.iter().map(|place| place.limit).collect()
    }

    /// Creates the sandbox's groups with their limits; returns the `cgroup.procs`
    /// files a process joins (one per group, whatever number of limits it holds).
    pub fn create(&self, id: &str) -> Vec<PathBuf> {
        let mut procs: Vec<PathBuf> = Vec::new();
        for place in &self.places {
            let dir = place.parent.join(id);
            if std::fs::create_dir_all(&dir).is_err() {
                continue;
            }
            let written = self.write_limit(place, &dir);
            match written {
                Ok(()) => {
                    let file = dir.join("cgroup.procs");
                    if !procs.contains(&file) {
                        procs.push(file);
                    }
                }
                Err(error) => {
                    tracing::warn!(group = %dir.display(), %error, "cannot write a sandbox limit");
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        procs
    }

    fn write_limit(&self, place: &Place, dir: &Path) -> std::io::Result<()> {
        let budget = &self.budget;
        let write = |file: &str, value: String| std::fs::write(dir.join(file), value);
        match (place.limit, place.version) {
            (Limit::Pids, _) => write("pids.max", budget.pids.to_string()),
            (Limit::Memory, Version::V1) => {
                write("memory.limit_in_bytes", budget.memory_bytes.to_string())?;
                // Swap counts too where the kernel accounts it (memsw), so a hog
                // cannot push its excess into swap.
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    let _ = write(
                        "memory.memsw.limit_in_bytes",
                        budget.memory_bytes.to_string(),
                    );
                }
                Ok(())
            }
            (Limit::Memory, Version::V2) => {
                write("memory.max", budget.memory_bytes.to_string())?;
                if dir.join("memory.swap.max").exists() {
                    let _ = write("memory.swap.max", "0".into());
                }
                Ok(())
            }
            (Limit::Cpu, Version::V1) => {
                write(
                    "cpu.shares",
                    (budget.cpu_weight * 1024 / 100).max(2).to_string(),
                )?;
                if let Some(cores) = budget.cpu_cores {
                    write("cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
                    write("cpu.cfs_quota_us", cpu_quota_us(cores).to_string())?;
                }
                Ok(())
            }
            (Limit::Cpu, Version::V2) => {
                write("cpu.weight", budget.cpu_weight.to_string())?;
                let max = match budget.cpu_cores {
                    Some(cores) => format!("{} {CPU_PERIOD_US}", cpu_quota_us(cores)),
                    None => format!("max {CPU_PERIOD_US}"),
                };
                write("cpu.max", max)
            }
            (Limit::Tmp | Limit::Disk, _) => Ok(()),
        }
    }

    /// Removes the sandbox's groups (they must be empty; a group still in use stays).
    pub fn remove(&self, id: &str) {
        for place in &self.places {
            let _ = std::fs::remove_dir(place.parent.join(id));
        }
    }

    /// Whether any process is still in the sandbox's groups.
    pub fn populated(&self, id: &str) -> bool {
        self.places.iter().any(|place| {
            std::fs::read_to_string(place.parent.join(id).join("cgroup.procs"))
                .is_ok_and(|procs| !procs.trim().is_empty())
        })
    }

    pub fn describe(&self) -> String {
        self.places
            .iter()
            .map(|place| {
                format!(
                    "{} ({:?}) at {}",
                    place.limit.name(),
                    place.version,
                    place.parent.display()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const CPU_PERIOD_US: u64 = 100_000;

fn cpu_quota_us(cores: f64) -> u64 {
    ((cores * CPU_PERIOD_US as f64) as u64).max(1000)
}

/// Creates the sandboxes' parent in the v2 hierarchy and hands it what controllers it
/// can; returns it with the controllers its children get.
fn v2_prepare(mount: &Path, own: &str, name: &str) -> Option<(PathBuf, BTreeSet<String>)> {
    let own_dir = mount.join(own.trim_start_matches('/'));
    let parent = own_dir.join(name);
    std::fs::create_dir_all(&parent).ok()?;
    if !parent.join("cgroup.procs").exists() {
        return None;
    }
    let available: BTreeSet<String> = std::fs::read_to_string(own_dir.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    // One controller at a time: the kernel refuses the whole write if any one fails.
    let mut enabled: BTreeSet<String> =
        std::fs::read_to_string(parent.join("cgroup.subtree_control"))
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
    for controller in ["pids", "memory", "cpu"] {
        if available.contains(controller) {
            let _ = std::fs::write(
                own_dir.join("cgroup.subtree_control"),
                format!("+{controller}"),
            );
            if std::fs::write(
                parent.join("cgroup.subtree_control"),
                format!("+{controller}"),
            )
            .is_ok()
            {
                enabled.insert(controller.to_string());
            }
        }
    }
    Some((parent, enabled))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake v2 hierarchy in `root`: what the kernel would show, with the given
    /// controllers available.
    fn fake_v2(root: &Path, controllers: &str) -> Host {
        std::fs::create_dir_all(root.join("backend.service/ns/")).unwrap();
        std::fs::write(root.join("backend.service/cgroup.controllers"), controllers).unwrap();
        std::fs::write(root.join("backend.service/ns/cgroup.procs"), "").unwrap();
        Host {
            v1: Vec::new(),
            v2: Some((root.to_path_buf(), "/backend.service".into())),
        }
    }

    #[test]
    fn a_v2_host_gets_pids_memory_and_cpu_written_in_v2_terms() {
        let root = tempfile::tempdir().unwrap();
        let host = fake_v2(root.path(), "cpu memory pids");
        let budget = Budget {
            cpu_cores: Some(0.5),
            ..Budget::default()
        };
        let cgroups = Cgroups::detect_on(&host, "ns", budget).unwrap();
        assert_eq!(
            cgroups.enforced(),
            [Limit::Pids, Limit::Memory, Limit::Cpu].into()
        );
        let procs = cgroups.create("s1");
        let group = root.path().join("backend.service/ns/s1");
        assert_eq!(procs, [group.join("cgroup.procs")]);
        let read = |file: &str| std::fs::read_to_string(group.join(file)).unwrap();
        assert_eq!(read("pids.max"), "1024");
        assert_eq!(read("memory.max"), (4u64 << 30).to_string());
        assert_eq!(read("cpu.weight"), "100");
        assert_eq!(read("cpu.max"), "50000 100000");
    }

    #[test]
    fn a_v2_host_without_a_controller_reports_that_limit_missing() {
        let root = tempfile::tempdir().unwrap();
        let host = fake_v2(root.path(), "pids");
        let cgroups = Cgroups::detect_on(&host, "ns", Budget::default()).unwrap();
        assert_eq!(cgroups.enforced(), [Limit::Pids].into());
    }

    #[test]
    fn this_machine_enforces_pids_memory_and_cpu_when_root() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let name = format!("nightshift-test-{}", std::process::id());
        let cgroups = Cgroups::detect(&name, Budget::default()).expect("cgroups here");
        assert_eq!(
            cgroups.enforced(),
            [Limit::Pids, Limit::Memory, Limit::Cpu].into(),
            "{}",
            cgroups.describe()
        );
        let procs = cgroups.create("s1");
        assert!(!procs.is_empty());
        cgroups.remove("s1");
        for place in &cgroups.places {
            let _ = std::fs::remove_dir(&place.parent);
        }
    }

    /// The v2 hierarchy of this machine (a hybrid one: the controllers are bound to
    /// v1, so v2 groups can be created and joined but hold no limits).
    #[test]
    fn a_real_v2_group_can_be_created_and_joined() {
        let host = Host::detect();
        let Some((mount, own)) = host.v2.clone() else {
            return;
        };
        let name = format!("nightshift-test-v2-{}", std::process::id());
        let Some((parent, _controllers)) = v2_prepare(&mount, &own, &name) else {
            // Not writable (not root): nothing to check on this machine.
            return;
        };
        let group = parent.join("s1");
        std::fs::create_dir(&group).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        std::fs::write(group.join("cgroup.procs"), child.id().to_string()).unwrap();
        let members = std::fs::read_to_string(group.join("cgroup.procs")).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(members.contains(&child.id().to_string()));
        for _ in 0..100 {
            if std::fs::remove_dir(&group).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::remove_dir(&parent).unwrap();
    }
}
