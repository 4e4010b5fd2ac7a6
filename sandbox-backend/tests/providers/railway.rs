//! The conformance suite against the `railway` provider, through a fake Railway that
//! speaks GraphQL over HTTP and the exec WebSocket and runs commands for real
//! (`tests/fakes`). Railway itself is not reached from here.

use std::time::Duration;

use crate::conformance::Harness;
use crate::fakes::backend::{Backend, IDLE_MINUTE_MS, TOKEN};
use crate::fakes::railway::{ENVIRONMENT_ID, FakeRailway};
use async_trait::async_trait;

struct RailwayHarness {
    backend: Backend,
    fake: FakeRailway,
}

fn railway_env(fake: &FakeRailway, token: &str) -> Vec<(String, String)> {
    vec![
        ("RAILWAY_TOKEN".into(), token.into()),
        ("RAILWAY_ENVIRONMENT_ID".into(), ENVIRONMENT_ID.into()),
        ("RAILWAY_GRAPHQL_URL".into(), fake.graphql_url.clone()),
        (
            "RAILWAY_TCP_PROXY_WS_ENDPOINT".into(),
            fake.exec_url.clone(),
        ),
    ]
}

#[async_trait]
impl Harness for RailwayHarness {
    fn base_url(&self) -> String {
        self.backend.base_url()
    }
    fn token(&self) -> String {
        TOKEN.into()
    }
    fn provider(&self) -> String {
        "railway".into()
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
async fn railway_provider_conforms() {
    let fake = FakeRailway::start().await;
    let backend = Backend::start("railway", railway_env(&fake, crate::fakes::railway::TOKEN)).await;
    let harness = RailwayHarness { backend, fake };
    let only = crate::fakes::backend::only();
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    crate::conformance::run_selected(&harness, &only).await;
    if !only.is_empty() {
        return;
    }
    let operations = harness.fake.state.operations.lock().await.clone();
    for operation in ["sandboxCreate", "generateShellToken", "sandboxDestroy"] {
        assert!(
            operations.iter().any(|o| o == operation),
            "{operation} was never called"
        );
    }
}

/// The provider's own paths through the fake, independent of the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn railway_round_trip_through_the_fake() {
    let fake = FakeRailway::start().await;
    let backend = Backend::start("railway", railway_env(&fake, crate::fakes::railway::TOKEN)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    crate::fakes::round_trip(&client).await;
    // Railway was asked for sandboxes on an isolated network, never the private one.
    let networks: Vec<String> = fake
        .state
        .sandboxes
        .lock()
        .await
        .values()
        .map(|sandbox| sandbox.network.clone())
        .collect();
    assert!(!networks.is_empty(), "the round trip created a sandbox");
    assert!(
        networks.iter().all(|network| network == "ISOLATED"),
        "{networks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn railway_rejects_a_bad_token_with_a_clear_error() {
    let fake = FakeRailway::start().await;
    let backend = Backend::start("railway", railway_env(&fake, "wrong-token")).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let answer = client
        .call("POST", "/v1/sandboxes", Some(serde_json::json!({})))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.text().contains("RAILWAY_TOKEN"), "{}", answer.text());
}

/// The fake's exec bridge, like Railway's, only opens for a shell token it issued.
#[tokio::test]
async fn the_exec_bridge_refuses_an_unknown_shell_token() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let fake = FakeRailway::start().await;
    for protocols in [
        "railway-shell, jwt.forged",
        "railway-shell",
        "other, jwt.forged",
    ] {
        let mut request = fake.exec_url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocols.parse().unwrap());
        let result = tokio_tungstenite::connect_async(request).await;
        assert!(result.is_err(), "{protocols}: the bridge opened");
    }
}
