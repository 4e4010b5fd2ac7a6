//! The conformance suite against the `railway` provider, through a fake Railway that
//! speaks GraphQL over HTTP and the exec WebSocket and runs commands for real
//! (`tests/fakes`). Railway itself is not reached from here.

use std::time::Duration;

use crate::conformance::Harness;
use crate::fakes::backend::{Backend, IDLE_MINUTE_MS, TOKEN};
use crate::fakes::railway::{ACCOUNT_TOKEN, ENVIRONMENT_ID, FakeRailway, PROJECT_TOKEN};
use async_trait::async_trait;

struct RailwayHarness {
    backend: Backend,
    fake: FakeRailway,
}

/// The settings for `fake`, with `token` in `variable` (`RAILWAY_TOKEN` for a
/// project token, `RAILWAY_API_TOKEN` for an account token).
pub fn railway_env(fake: &FakeRailway, variable: &str, token: &str) -> Vec<(String, String)> {
    vec![
        (variable.into(), token.into()),
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
    let Some(fake) = FakeRailway::start("railway_provider_conforms").await else {
        return;
    };
    let backend = Backend::start(
        "railway",
        railway_env(&fake, "RAILWAY_TOKEN", PROJECT_TOKEN),
    )
    .await;
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
    let Some(fake) = FakeRailway::start("railway_round_trip_through_the_fake").await else {
        return;
    };
    let backend = Backend::start(
        "railway",
        railway_env(&fake, "RAILWAY_TOKEN", PROJECT_TOKEN),
    )
    .await;
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
    let Some(fake) = FakeRailway::start("railway_rejects_a_bad_token_with_a_clear_error").await
    else {
        return;
    };
    let backend = Backend::start(
        "railway",
        railway_env(&fake, "RAILWAY_TOKEN", "wrong-token"),
    )
    .await;
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
    let Some(fake) = FakeRailway::start("the_exec_bridge_refuses_an_unknown_shell_token").await
    else {
        return;
    };
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

/// The fake takes each kind of token only where Railway takes it: a project token as
/// a bearer token, or an account token in `project-access-token`, is not authorized.
#[tokio::test]
async fn each_kind_of_token_is_accepted_only_in_its_own_header() {
    let Some(fake) =
        FakeRailway::start("each_kind_of_token_is_accepted_only_in_its_own_header").await
    else {
        return;
    };
    let http = reqwest::Client::new();
    let ask = |header: &'static str, value: String| {
        http.post(&fake.graphql_url)
            .header(header, value)
            .json(&serde_json::json!({
                "query": "query Sandbox($environmentId: String!, $id: String!) { sandbox(environmentId: $environmentId, id: $id) { id status } }",
                "variables": {"environmentId": ENVIRONMENT_ID, "id": "sbx-none"},
            }))
            .send()
    };
    for (header, value, authorized) in [
        ("project-access-token", PROJECT_TOKEN.to_string(), true),
        ("authorization", format!("Bearer {ACCOUNT_TOKEN}"), true),
        ("authorization", format!("Bearer {PROJECT_TOKEN}"), false),
        ("project-access-token", ACCOUNT_TOKEN.to_string(), false),
    ] {
        let body: serde_json::Value = ask(header, value.clone())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert_eq!(
            message == "Not Authorized",
            !authorized,
            "{header}: {value}: {body}"
        );
    }
}

/// An account token (`RAILWAY_API_TOKEN`) works as the CLI's does, and a sandbox that
/// takes seconds to start is polled with the SDK's backoff (0.5 s, 1 s, 2 s...), not
/// every 250 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_token_works_and_status_polls_back_off() {
    let Some(fake) = FakeRailway::start("an_account_token_works_and_status_polls_back_off").await
    else {
        return;
    };
    *fake.state.boot_time.lock().await = Duration::from_secs(3);
    let backend = Backend::start(
        "railway",
        railway_env(&fake, "RAILWAY_API_TOKEN", ACCOUNT_TOKEN),
    )
    .await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let sandbox = client.create(serde_json::json!({})).await.unwrap();
    let result = client.sh(&sandbox.id, "echo ready").await.unwrap();
    assert_eq!(result.stdout, "ready\n");
    let polls = fake
        .state
        .operations
        .lock()
        .await
        .iter()
        .filter(|operation| *operation == "sandbox")
        .count();
    // 0.5 + 1 + 2 s reach the third second: three polls (twelve at 250 ms).
    assert!(
        (2..=4).contains(&polls),
        "{polls} status polls for a 3 s start"
    );
}

/// The fake refuses, as Railway's GraphQL validation would, an operation that differs
/// from Railway's own SDK: a field the SDK never selects, a variable of another type,
/// a root field it has no operation for. The provider's own operations pass (the
/// conformance suite runs them all).
#[tokio::test]
async fn operations_that_differ_from_railways_sdk_are_refused() {
    let Some(fake) =
        FakeRailway::start("operations_that_differ_from_railways_sdk_are_refused").await
    else {
        return;
    };
    let http = reqwest::Client::new();
    for (query, expected) in [
        (
            "query Sandbox($environmentId: String!, $id: ID!) { sandbox(environmentId: $environmentId, id: $id) { id status } }",
            "Variable \"$id\" of type \"ID!\" used in position expecting type \"String!\"",
        ),
        (
            "query Sandbox($environmentId: String!, $id: String!) { sandbox(environmentId: $environmentId, id: $id) { id state } }",
            "Cannot query field \"state\"",
        ),
        (
            "mutation SandboxStart($id: String!) { sandboxStart(id: $id) { id } }",
            "Cannot query field \"sandboxStart\"",
        ),
        (
            "mutation SandboxDestroy($sandboxId: String!, $environmentId: String!) { sandboxDestroy(sandboxId: $sandboxId, environmentId: $environmentId) { id } }",
            "Unknown argument \"sandboxId\"",
        ),
    ] {
        let body: serde_json::Value = http
            .post(&fake.graphql_url)
            .header("project-access-token", PROJECT_TOKEN)
            .json(&serde_json::json!({"query": query, "variables": {"environmentId": ENVIRONMENT_ID}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{query}: {body}");
    }
}
