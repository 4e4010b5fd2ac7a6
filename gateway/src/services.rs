//! The services the gateway supervises in its sandbox, and the status table behind
//! `GET /status`.
//!
//! What runs, in what order and how each is checked is [`spec`]; how one service is
//! kept alive (start, health check, restart with backoff) is [`supervisor`]. A
//! program that is not installed makes its service `unavailable` with the reason and
//! never stops the gateway: the panels say why instead of showing a blank frame.

pub mod backoff;
pub mod name;
pub mod spec;
pub mod supervisor;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use nightshift_protocol::gateway::{ServiceState, ServiceStatus};

pub use name::ServiceName;
pub use spec::{Health, ServiceSpec};

/// A service's state and, when it is not ready, why.
type Entry = (ServiceState, Option<String>);

/// The current state of every service, shared by the supervisors (which write it)
/// and the routes (which read it).
#[derive(Debug, Clone, Default)]
pub struct StatusTable {
    inner: Arc<Mutex<BTreeMap<ServiceName, Entry>>>,
}

impl StatusTable {
    pub fn set(&self, name: ServiceName, state: ServiceState, reason: Option<String>) {
        if let Ok(mut table) = self.inner.lock() {
            table.insert(name, (state, reason));
        }
    }

    pub fn get(&self, name: ServiceName) -> Entry {
        self.inner
            .lock()
            .ok()
            .and_then(|table| table.get(&name).cloned())
            .unwrap_or((ServiceState::Starting, None))
    }

    /// Why `name` cannot serve a request now, for a 503's message.
    pub fn why_not_ready(&self, name: ServiceName) -> String {
        match self.get(name) {
            (ServiceState::Ready, _) => format!("{} is not answering", name.as_str()),
            (ServiceState::Starting, _) => format!("{} is starting", name.as_str()),
            (ServiceState::Unavailable, reason) => format!(
                "{} is unavailable: {}",
                name.as_str(),
                reason.unwrap_or_else(|| "no reason given".into())
            ),
        }
    }

    /// Every service in start order.
    pub fn snapshot(&self) -> Vec<ServiceStatus> {
        ServiceName::ALL
            .iter()
            .map(|&name| {
                let (state, reason) = self.get(name);
                ServiceStatus {
                    name: name.as_str().to_owned(),
                    state,
                    reason,
                }
            })
            .collect()
    }
}
