//! Setting the local provider up: what the host gives (an unprivileged user under a
//! root backend, `prlimit`, bubblewrap that can create namespaces, cgroups, a
//! seccomp filter), and which limits can therefore be enforced. [`super::start`]
//! picks the provider from the probe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::bubblewrap::{Bubblewrap, GROUP, PASSWD};
use super::budget::{Budget, Limit};
use super::cgroups::Cgroups;
use super::disk_watch::DiskWatches;
use super::host_user::HostUser;
use super::launcher::Launcher;
use super::lifecycle::Tasks;
use super::limits::{ResourceLimits, find_prlimit};
use super::warm_pool::WarmPool;
use super::{LocalProvider, LocalProviderError, LocalSettings, seccomp};

/// What both local providers need to know about the host.
pub(super) struct Host {
    /// The unprivileged host user sandboxes and runners run as (root backends only).
    pub(super) user: Option<HostUser>,
    pub(super) budget: Budget,
    /// `prlimit ... --`, or empty when `prlimit` is missing.
    pub(super) limits_prefix: Vec<String>,
}

impl Host {
    pub(super) fn detect() -> Result<Host, LocalProviderError> {
        let user =
            HostUser::from_env().map_err(|error| LocalProviderError::Config(error.to_string()))?;
        let budget =
            Budget::from_env().map_err(|error| LocalProviderError::Config(error.to_string()))?;
        let limits_prefix = match find_prlimit() {
            Some(prlimit) => ResourceLimits::default()
                .clamped_to_own_limits()
                .prlimit_prefix(&prlimit),
            None => {
                tracing::warn!(
                    "util-linux `prlimit` not found: commands run without resource limits"
                );
                Vec::new()
            }
        };
        Ok(Host {
            user,
            budget,
            limits_prefix,
        })
    }

    /// Proves (in a scratch directory under the data directory) that bubblewrap can
    /// create namespaces here, running as sandboxes will; `Err` says why not.
    pub(super) async fn probe_bubblewrap(
        &self,
        settings: &LocalSettings,
    ) -> Result<Bubblewrap, String> {
        let Some(bubblewrap) = Bubblewrap::find() else {
            return Err("bubblewrap (`bwrap`) is not installed".to_string());
        };
        let scratch = settings.data_dir.join("probe");
        let created = std::fs::create_dir_all(&scratch).and_then(|()| match self.user {
            Some(user) => {
                user.make_reachable(&scratch)?;
                user.give(&scratch)
            }
            None => Ok(()),
        });
        // The probe runs as sandboxes will: as the unprivileged host user.
        let mut prefix = Vec::new();
        if let Some(user) = self.user {
            prefix.extend([
                settings.agent_bin.display().to_string(),
                "__launch".into(),
                "--user".into(),
                user.spec(),
                "--".into(),
            ]);
        }
        prefix.extend(self.limits_prefix.iter().cloned());
        let result = match created {
            Err(error) => Err(format!("cannot create {}: {error}", scratch.display())),
            Ok(()) => bubblewrap.probe(&scratch, &prefix).await,
        };
        let _ = std::fs::remove_dir_all(&scratch);
        result.map(|()| bubblewrap)
    }

    /// Says who sandboxes and runners run as.
    pub(super) fn log_user(&self) {
        match self.user {
            Some(user) => tracing::info!(
                uid = user.uid,
                gid = user.gid,
                "the backend runs as root: sandboxes and runners run as this unprivileged host user"
            ),
            None => tracing::info!("sandboxes and runners run as the backend's own user"),
        }
    }
}

/// Refuses to start without the `missing` per-sandbox limits unless `allowed`, and
/// says loudly that sandboxes run without them when it is.
pub(super) fn check_missing(missing: &[Limit], allowed: bool) -> Result<(), LocalProviderError> {
    if missing.is_empty() {
        return Ok(());
    }
    let names = missing
        .iter()
        .map(|limit| limit.name())
        .collect::<Vec<_>>()
        .join(", ");
    if !allowed {
        return Err(LocalProviderError::Unlimited { missing: names });
    }
    tracing::warn!(
        missing = %names,
        "SANDBOX_ALLOW_UNLIMITED=true: sandboxes run WITHOUT these per-sandbox limits"
    );
    Ok(())
}

impl LocalProvider {
    /// Sets the provider up over a probed `bubblewrap`: the `/etc` files sandboxes
    /// see, resource-control groups, the limits they enforce, and the warm pool.
    pub(super) async fn set_up(
        settings: LocalSettings,
        host: Host,
        bubblewrap: Bubblewrap,
    ) -> Result<LocalProvider, LocalProviderError> {
        let data_dir = settings.data_dir.as_path();
        let etc_dir = data_dir.join("sandbox-etc");
        let written = std::fs::create_dir_all(&etc_dir)
            .and_then(|()| std::fs::write(etc_dir.join("passwd"), PASSWD))
            .and_then(|()| std::fs::write(etc_dir.join("group"), GROUP));
        if let Err(error) = written {
            return Err(LocalProviderError::CannotIsolate {
                reason: format!("cannot write {}: {error}", etc_dir.display()),
            });
        }
        let cgroup_name = format!(
            "nightshift-{:016x}",
            fnv1a(data_dir.as_os_str().as_encoded_bytes())
        );
        let cgroups = Cgroups::detect(&cgroup_name, host.budget);
        let seccomp = seccomp::filter().is_some();
        let enforced: Vec<Limit> = Limit::ALL
            .into_iter()
            .filter(|limit| match limit {
                Limit::Tmp | Limit::Disk => true,
                _ => cgroups
                    .as_ref()
                    .is_some_and(|cgroups| cgroups.enforced().contains(limit)),
            })
            .collect();
        let missing: Vec<Limit> = Limit::ALL
            .into_iter()
            .filter(|limit| !enforced.contains(limit))
            .collect();
        check_missing(
            &missing,
            settings.allow_unlimited || settings.allow_unisolated,
        )?;
        if !seccomp {
            tracing::warn!(
                "no seccomp filter exists for this architecture: sandboxes run without one"
            );
        }
        host.log_user();
        let launcher = Arc::new(Launcher {
            bubblewrap,
            settings: settings.clone(),
            etc_dir,
            cgroups: cgroups.clone(),
            host_user: host.user,
            budget: host.budget,
            seccomp,
        });
        let warm = Arc::new(WarmPool::new(data_dir.join("warm"), settings.warm_pool).await);
        warm.refill(&launcher);
        match &cgroups {
            Some(cgroups) => {
                tracing::info!(groups = %cgroups.describe(), "each sandbox gets its own process, memory and CPU limits")
            }
            None => tracing::info!(
                "no writable cgroups: sandboxes are limited by per-process rlimits only"
            ),
        }
        Ok(LocalProvider {
            settings,
            launcher,
            warm,
            holds: Mutex::new(HashMap::new()),
            egress_pools: Tasks::default(),
            relays: Tasks::default(),
            gateways: Default::default(),
            host_user: host.user,
            enforced,
            missing,
            disks: DiskWatches::new(host.budget, host.user),
        })
    }
}

/// A stable 64-bit hash (FNV-1a) for naming things after a path.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
