//! The conformance suite against the `modal` provider, through a fake Modal control
//! plane that speaks gRPC over HTTP/2 and runs commands for real (`tests/fakes`).
//! Modal itself is not reached from here.

use std::time::Duration;

use crate::conformance::Harness;
use crate::fakes::backend::{Backend, IDLE_MINUTE_MS, TOKEN};
use crate::fakes::modal::{FakeModal, TOKEN_ID, TOKEN_SECRET};
use async_trait::async_trait;

struct ModalHarness {
    backend: Backend,
    _fake: FakeModal,
}

pub fn modal_env(fake: &FakeModal, secret: &str) -> Vec<(String, String)> {
    [
        ("MODAL_SERVER_URL", fake.url.as_str()),
        ("MODAL_TOKEN_ID", TOKEN_ID),
        ("MODAL_TOKEN_SECRET", secret),
        ("MODAL_PORTS", "9000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[async_trait]
impl Harness for ModalHarness {
    fn base_url(&self) -> String {
        self.backend.base_url()
    }
    fn token(&self) -> String {
        TOKEN.into()
    }
    fn provider(&self) -> String {
        "modal".into()
    }
    fn skipped(&self) -> Vec<(&'static str, &'static str)> {
        crate::fakes::unconfined_skips()
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
async fn modal_provider_conforms() {
    let Some(fake) = FakeModal::start("modal_provider_conforms").await else {
        return;
    };
    let backend = Backend::start("modal", modal_env(&fake, TOKEN_SECRET)).await;
    let harness = ModalHarness {
        backend,
        _fake: fake,
    };
    let only = crate::fakes::backend::only();
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    crate::conformance::run_selected(&harness, &only).await;
    if !only.is_empty() {
        return;
    }
    let calls = harness._fake.state.calls.lock().await.clone();
    for method in [
        "SandboxCreate",
        "ContainerExec",
        "ContainerExecGetOutput",
        "SandboxSnapshotFs",
        "SandboxTerminate",
    ] {
        assert!(
            calls.iter().any(|call| call == method),
            "{method} was never called"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modal_rejects_bad_credentials_with_a_clear_error() {
    let Some(fake) = FakeModal::start("modal_rejects_bad_credentials_with_a_clear_error").await
    else {
        return;
    };
    let backend = Backend::start("modal", modal_env(&fake, "wrong-secret")).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let answer = client
        .call("POST", "/v1/sandboxes", Some(serde_json::json!({})))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(
        answer.text().contains("MODAL_TOKEN_ID"),
        "{}",
        answer.text()
    );
}

/// The provider's own paths through the fake, independent of the suite: create,
/// exec with env/cwd/stdin, a timeout, files, fork isolation, destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modal_round_trip_through_the_fake() {
    let Some(fake) = FakeModal::start("modal_round_trip_through_the_fake").await else {
        return;
    };
    let backend = Backend::start("modal", modal_env(&fake, TOKEN_SECRET)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    crate::fakes::round_trip(&client).await;
}
