//! The conformance suite against a real service, for operators checking their account
//! before deploying: `make smoke-provider PROVIDER=modal|railway|docker` runs this
//! ignored test with the provider's settings from `.env` (`scripts/smoke-provider.sh`
//! refuses first when they are missing). It creates real sandboxes, which may cost
//! money, and destroys every one after each case. Never run in CI.

use std::time::Duration;

use async_trait::async_trait;

use crate::conformance::Harness;
use crate::fakes::backend::{Backend, IDLE_MINUTE_MS, TOKEN};

/// Variables passed to the backend: every setting of the remote providers.
const PASSED_PREFIXES: &[&str] = &["MODAL_", "RAILWAY_", "SANDBOX_DOCKER_", "DOCKER_HOST"];

struct LiveHarness {
    backend: Backend,
    provider: String,
}

#[async_trait]
impl Harness for LiveHarness {
    fn base_url(&self) -> String {
        self.backend.base_url()
    }
    fn token(&self) -> String {
        TOKEN.into()
    }
    fn provider(&self) -> String {
        self.provider.clone()
    }
    async fn restart_backend(&self) -> bool {
        self.backend.terminate();
        self.backend.boot().await;
        true
    }
    fn idle_minute(&self) -> Duration {
        Duration::from_millis(IDLE_MINUTE_MS)
    }
    fn runs_real_commands(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "reaches a real service with real credentials: make smoke-provider PROVIDER=..."]
async fn live_provider_conforms() {
    let provider = std::env::var("SMOKE_PROVIDER")
        .expect("SMOKE_PROVIDER names the provider to check (make smoke-provider PROVIDER=...)");
    assert!(
        ["modal", "railway", "docker"].contains(&provider.as_str()),
        "SMOKE_PROVIDER={provider} is not modal, railway or docker"
    );
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| {
            PASSED_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
        })
        .collect();
    let backend = Backend::start(&provider, env).await;
    let harness = LiveHarness { backend, provider };
    let only = crate::fakes::backend::only();
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    crate::conformance::run_selected(&harness, &only).await;
}
