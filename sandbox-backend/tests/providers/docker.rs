//! The conformance suite against the `docker` provider, through a fake Docker Engine
//! that speaks the Engine HTTP API on a unix socket and runs commands for real
//! (`tests/fakes`). No Docker daemon is involved.

use std::time::Duration;

use crate::conformance::Harness;
use crate::fakes::backend::{Backend, IDLE_MINUTE_MS, TOKEN};
use crate::fakes::docker::FakeDocker;
use async_trait::async_trait;

struct DockerHarness {
    backend: Backend,
    fake: FakeDocker,
}

fn docker_env(fake: &FakeDocker) -> Vec<(String, String)> {
    vec![
        ("DOCKER_HOST".into(), fake.host.clone()),
        ("SANDBOX_DOCKER_IMAGE".into(), "debian:bookworm-slim".into()),
    ]
}

#[async_trait]
impl Harness for DockerHarness {
    fn base_url(&self) -> String {
        self.backend.base_url()
    }
    fn token(&self) -> String {
        TOKEN.into()
    }
    fn provider(&self) -> String {
        "docker".into()
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
async fn docker_provider_conforms() {
    let fake = FakeDocker::start().await;
    let backend = Backend::start("docker", docker_env(&fake)).await;
    let harness = DockerHarness { backend, fake };
    let only = crate::fakes::backend::only();
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    crate::conformance::run_selected(&harness, &only).await;
    if !only.is_empty() {
        return;
    }
    let calls = harness.fake.state.calls.lock().await.clone();
    for call in ["/containers/create", "/exec/", "/commit"] {
        assert!(
            calls.iter().any(|c| c.contains(call)),
            "{call} was never called"
        );
    }
}

/// The provider's own paths through the fake, independent of the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_round_trip_through_the_fake() {
    let fake = FakeDocker::start().await;
    let backend = Backend::start("docker", docker_env(&fake)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    crate::fakes::round_trip(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_unreachable_daemon_is_a_clear_error() {
    let backend = Backend::start(
        "docker",
        vec![
            (
                "DOCKER_HOST".into(),
                "unix:///nonexistent/docker.sock".into(),
            ),
            ("SANDBOX_DOCKER_IMAGE".into(), "debian:bookworm-slim".into()),
        ],
    )
    .await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let answer = client
        .call("POST", "/v1/sandboxes", Some(serde_json::json!({})))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.text().contains("Docker daemon"), "{}", answer.text());
}

/// A remote sandbox cannot host a session's runner (the runner runs on the backend's
/// host), so such a request is refused instead of running the runner's commands here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_sandboxes_refuse_a_session_runner() {
    let fake = FakeDocker::start().await;
    let backend = Backend::start("docker", docker_env(&fake)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let answer = client
        .call(
            "POST",
            "/v1/sandboxes",
            Some(serde_json::json!({"runner": {
                "worker_url": "http://127.0.0.1:1", "session_id": "s1", "token": "t"
            }})),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("runner"), "{}", answer.text());
    assert!(fake.state.containers.lock().await.is_empty());
}

/// A container is created as an unprivileged user without capabilities, within a
/// budget of processes, memory, CPU and `/tmp`, and the provider says which limits it
/// enforces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_containers_are_created_unprivileged_and_within_a_budget() {
    let fake = FakeDocker::start().await;
    let backend = Backend::start("docker", docker_env(&fake)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let sandbox = client
        .create(serde_json::json!({"network": "none"}))
        .await
        .unwrap();
    let bodies = fake.state.create_bodies.lock().await.clone();
    let body = bodies.last().expect("a container was created");
    assert_eq!(body["User"], "1000:1000");
    let host = &body["HostConfig"];
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(host["PidsLimit"], 1024);
    assert_eq!(host["Memory"], 4096i64 * 1024 * 1024);
    assert_eq!(host["MemorySwap"], host["Memory"]);
    assert_eq!(host["NanoCpus"], 2_000_000_000i64);
    assert_eq!(host["Tmpfs"]["/tmp"], "rw,nosuid,nodev,size=512m");
    assert_eq!(host["NetworkMode"], "none");
    assert_ne!(host["Privileged"], true);
    let providers = client.providers().await;
    let docker = providers
        .providers
        .iter()
        .find(|info| info.name == "docker")
        .unwrap();
    assert_eq!(
        docker.capabilities.enforced_limits,
        ["pids", "memory", "cpu", "tmp"]
    );
    assert_eq!(docker.capabilities.missing_limits, ["disk"]);
    client.destroy(&sandbox.id).await.unwrap();
}
