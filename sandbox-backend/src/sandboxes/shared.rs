//! Sandboxes of a sharing provider (see [`Provider::shares_sandboxes`]) are served by
//! every backend configured with it, so two backends behind one address stand in
//! for each other: what one backend needs to serve a sandbox another created is the
//! [`SharedRecord`], kept with the provider's resources, and the provider's handle,
//! rebuilt by the provider from its own state.
//!
//! A backend adopts such a sandbox the first time a request names it
//! ([`Sandboxes::adopt`]) or a listing shows it ([`Sandboxes::refresh_shared`]), and
//! from then on keeps it like one it created (its record on disk, reattached after a
//! restart). A listing also forgets a sandbox that the provider no longer runs (another
//! backend destroyed it).
//!
//! Idle timeouts hold across backends: each backend sees only its own traffic, so it
//! publishes the latest activity it saw to the provider (at most every quarter of the
//! timeout, from the idle reaper), and a backend about to reap an idle sandbox first
//! asks the provider whether another backend saw activity since.
//!
//! Not shared, on purpose: the environment (it may hold secrets, and the provider
//! already gives it to every command through the sandbox's own environment), the
//! gateway's key, the runner (it lives and dies with the backend that started it) and
//! the template (templates are built per backend).
//!
//! [`Provider::shares_sandboxes`]: crate::providers::Provider::shares_sandboxes

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use nightshift_protocol::sandbox::{NetworkMode, SandboxStatus};
use serde::{Deserialize, Serialize};

use super::Sandboxes;
use super::entry::SandboxEntry;
use super::record::SandboxRecord;
use crate::providers::{FoundSandbox, Provider};

/// What another backend needs to serve a sandbox, as stored with the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRecord {
    pub id: String,
    pub network: NetworkMode,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub default_timeout_ms: Option<u64>,
    #[serde(default)]
    pub idle_timeout_minutes: Option<u32>,
    pub created_at: i64,
    #[serde(default)]
    pub forked_from: Option<String>,
}

impl SharedRecord {
    pub fn of(record: &SandboxRecord) -> SharedRecord {
        SharedRecord {
            id: record.id.clone(),
            network: record.network,
            labels: record.labels.clone(),
            default_timeout_ms: record.default_timeout_ms,
            idle_timeout_minutes: record.idle_timeout_minutes,
            created_at: record.created_at,
            forked_from: record.forked_from.clone(),
        }
    }

    /// The text kept with the provider.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a shared record serializes")
    }

    /// A ready sandbox of `provider` from a found one; `None` when its record is not
    /// one this backend can read (written by another version, or not a backend's).
    pub fn adopt(provider: &str, found: &FoundSandbox) -> Option<SandboxRecord> {
        let shared: SharedRecord = serde_json::from_str(&found.shared_record).ok()?;
        if !super::validation::is_sandbox_id(&shared.id) {
            return None;
        }
        Some(SandboxRecord {
            id: shared.id,
            provider: provider.to_string(),
            status: SandboxStatus::Ready,
            network: shared.network,
            labels: shared.labels,
            default_timeout_ms: shared.default_timeout_ms,
            idle_timeout_minutes: shared.idle_timeout_minutes,
            created_at: shared.created_at,
            forked_from: shared.forked_from,
            handle: found.handle.clone(),
            ..SandboxRecord::blank()
        })
    }
}

impl Sandboxes {
    /// The shared record of a sandbox whose provider shares its sandboxes.
    pub(super) fn shared_record(&self, record: &SandboxRecord) -> Option<String> {
        self.sharing_provider_of(record)
            .map(|_| SharedRecord::of(record).encode())
    }

    /// The provider of a sandbox, when it shares its sandboxes.
    fn sharing_provider_of(&self, record: &SandboxRecord) -> Option<Arc<dyn Provider>> {
        self.providers
            .get(&record.provider)
            .filter(|provider| provider.shares_sandboxes())
            .cloned()
    }

    /// Publishes the latest activity this backend saw in a sandbox of a sharing
    /// provider, when it is a quarter of the idle `limit` newer than the last one
    /// published (the idle reaper calls it for busy sandboxes).
    pub(super) async fn share_activity(
        &self,
        entry: &SandboxEntry,
        record: &SandboxRecord,
        limit: Duration,
    ) {
        let Some(provider) = self.sharing_provider_of(record) else {
            return;
        };
        let idle = i64::try_from(entry.idle_for().as_millis()).unwrap_or(i64::MAX);
        let at = super::now_millis().saturating_sub(idle);
        let step = i64::try_from((limit / 4).as_millis()).unwrap_or(i64::MAX);
        let due = self
            .published()
            .get(&record.id)
            .is_none_or(|last| at.saturating_sub(*last) >= step);
        if !due {
            return;
        }
        match provider.publish_activity(&self.spec(record), at).await {
            Ok(()) => {
                self.published().insert(record.id.clone(), at);
            }
            Err(error) => {
                tracing::warn!(sandbox = %record.id, %error, "cannot publish the sandbox's activity");
            }
        }
    }

    /// Whether another backend saw activity in a sandbox of a sharing provider within
    /// the idle `limit`. When the provider cannot tell, the sandbox is kept: a reap
    /// can wait for the next round, a wrong one cannot be undone.
    pub(super) async fn active_elsewhere(&self, record: &SandboxRecord, limit: Duration) -> bool {
        let Some(provider) = self.sharing_provider_of(record) else {
            return false;
        };
        match provider.shared_activity(&self.spec(record)).await {
            Ok(Some(at)) => {
                let limit = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
                super::now_millis().saturating_sub(at) < limit
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(sandbox = %record.id, %error, "cannot read the sandbox's shared activity; not reaping it now");
                true
            }
        }
    }

    fn published(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.published_activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sharing_providers(&self) -> Vec<Arc<dyn Provider>> {
        self.providers
            .all()
            .iter()
            .filter(|provider| provider.shares_sandboxes())
            .cloned()
            .collect()
    }

    /// Makes a sandbox that another backend created known here, when a sharing
    /// provider runs it. Does nothing for a known id, or one no provider runs (the
    /// request then answers 404 as before).
    pub async fn adopt(&self, id: &str) {
        if self.entries_ref().contains_key(id) || !super::validation::is_sandbox_id(id) {
            return;
        }
        for provider in self.sharing_providers() {
            match provider.find_sandbox(id).await {
                Ok(Some(found)) => {
                    self.insert_found(provider.name(), &found);
                    return;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(sandbox = %id, provider = provider.name(), %error, "cannot look the sandbox up with its provider");
                }
            }
        }
    }

    /// Brings the sandboxes of sharing providers up to date before a listing: those
    /// another backend created are adopted, ready ones the provider no longer runs
    /// are forgotten. A provider that cannot be reached leaves its sandboxes as they
    /// are.
    pub async fn refresh_shared(&self) {
        for provider in self.sharing_providers() {
            let found = match provider.list_sandboxes().await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(provider = provider.name(), %error, "cannot list the provider's sandboxes");
                    continue;
                }
            };
            let mut running = HashSet::new();
            for sandbox in &found {
                if let Some(id) = self.insert_found(provider.name(), sandbox) {
                    running.insert(id);
                }
            }
            self.forget_ended(provider.name(), &running);
        }
    }

    /// Adds a found sandbox unless it is known; returns its id.
    fn insert_found(&self, provider: &str, found: &FoundSandbox) -> Option<String> {
        let record = SharedRecord::adopt(provider, found)?;
        let id = record.id.clone();
        let mut entries = self.entries_mut();
        if entries.contains_key(&id) {
            return Some(id);
        }
        if let Err(error) = self
            .store
            .create_dirs(&id)
            .and_then(|()| self.store.save(&record))
        {
            tracing::warn!(sandbox = %id, %error, "cannot record an adopted sandbox");
            return None;
        }
        tracing::info!(sandbox = %id, provider, "serving a sandbox another backend created");
        entries.insert(id.clone(), Arc::new(SandboxEntry::new(record)));
        Some(id)
    }

    /// Forgets the sandboxes of `provider` recorded as ready (or in error, as a
    /// restart finds one that ended while the backend was down) that it no longer
    /// runs: another backend stopped or destroyed them. Sandboxes in the middle of an
    /// operation here (creating, stopping) are left alone, and so are those whose
    /// runner this backend supervises and those it put to sleep.
    fn forget_ended(&self, provider: &str, running: &HashSet<String>) {
        let ended: Vec<String> = self
            .entries_ref()
            .values()
            .map(|entry| entry.snapshot())
            .filter(|record| {
                record.provider == provider
                    && matches!(record.status, SandboxStatus::Ready | SandboxStatus::Error)
                    && record.runner.is_none()
                    // What its sleep kept is this backend's to wake or remove.
                    && !record.asleep
                    && !running.contains(&record.id)
            })
            .map(|record| record.id)
            .collect();
        for id in ended {
            tracing::info!(sandbox = %id, provider, "forgetting a sandbox its provider no longer runs");
            self.entries_mut().remove(&id);
            self.published().remove(&id);
            if let Err(error) = self.store.remove(&id) {
                tracing::warn!(sandbox = %id, %error, "cannot remove the sandbox's directory");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ProviderHandle;

    fn found(record: &str) -> FoundSandbox {
        FoundSandbox {
            shared_record: record.into(),
            handle: ProviderHandle(serde_json::json!({"sandbox_id": "sb-1"})),
        }
    }

    #[test]
    fn a_shared_record_round_trips_without_secrets() {
        let mut record = SandboxRecord {
            id: "sbx_0123456789abcdef0123456789abcdef".into(),
            provider: "modal".into(),
            status: SandboxStatus::Ready,
            network: NetworkMode::Isolated,
            created_at: 42,
            default_timeout_ms: Some(5000),
            ..SandboxRecord::blank()
        };
        record.labels.insert("team".into(), "a".into());
        record.env.insert("API_KEY".into(), "very-secret".into());
        let text = SharedRecord::of(&record).encode();
        assert!(!text.contains("very-secret"), "{text}");
        let adopted = SharedRecord::adopt("modal", &found(&text)).unwrap();
        assert_eq!(adopted.id, record.id);
        assert_eq!(adopted.network, NetworkMode::Isolated);
        assert_eq!(adopted.labels, record.labels);
        assert_eq!(adopted.default_timeout_ms, Some(5000));
        assert_eq!(adopted.created_at, 42);
        assert_eq!(adopted.status, SandboxStatus::Ready);
        assert_eq!(adopted.handle, found(&text).handle);
        assert!(adopted.env.is_empty() && adopted.runner.is_none());
    }

    #[test]
    fn unreadable_records_and_bad_ids_are_not_adopted() {
        assert!(SharedRecord::adopt("modal", &found("not json")).is_none());
        let traversal = r#"{"id":"../../etc","network":"isolated","created_at":1}"#;
        assert!(SharedRecord::adopt("modal", &found(traversal)).is_none());
    }
}
