//! The `docker` provider against a real Docker Engine (`docker_engine.rs`; Debian's
//! Engine 20.10 here, API 1.41): the whole conformance suite, and the sandbox's
//! posture read from inside its container (not root, no capabilities,
//! `no-new-privileges`, the pids, memory and CPU budget, no route out), with an
//! undefended container proving that the probe notices each defence missing.
//!
//! The fake Engine (`tests/fakes/docker.rs`) stays for what the real one here cannot
//! show: an Engine of another API range (it answers as Engine 29, 1.44 to 1.52, and
//! refuses other versions as the real one does) and pulls from a registry (none is
//! reachable here), including references by digest.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::conformance::Harness;
use crate::fakes::backend::{Backend, IDLE_MINUTE_MS, TOKEN};
use crate::fakes::docker::FakeDocker;
use async_trait::async_trait;
use serde_json::json;

use super::docker_engine::RealEngine;

/// The budget the tests give containers: small, so an attack stays cheap for the host.
const PIDS_LIMIT: &str = "128";
const MEMORY_MB: &str = "256";
const CPUS: &str = "0.5";

struct DockerHarness {
    backend: Backend,
}

fn engine_env(engine: &RealEngine) -> Vec<(String, String)> {
    [
        ("DOCKER_HOST", engine.host.as_str()),
        ("SANDBOX_DOCKER_IMAGE", engine.image.as_str()),
        ("SANDBOX_DOCKER_PIDS_LIMIT", PIDS_LIMIT),
        ("SANDBOX_DOCKER_MEMORY_MB", MEMORY_MB),
        ("SANDBOX_DOCKER_CPUS", CPUS),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

fn fake_env(fake: &FakeDocker) -> Vec<(String, String)> {
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
async fn docker_provider_conforms_on_a_real_engine() {
    let Some(engine) = RealEngine::find("docker_provider_conforms_on_a_real_engine").await else {
        return;
    };
    let images = engine.sandbox_images().await;
    let backend = Backend::start("docker", engine_env(&engine)).await;
    let harness = DockerHarness { backend };
    let only = crate::fakes::backend::only();
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    let outcome = std::panic::AssertUnwindSafe(crate::conformance::run_selected(&harness, &only));
    let outcome = futures::FutureExt::catch_unwind(outcome).await;
    engine.remove_images_since(&images).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// What a sandbox sees of its own confinement, one `name=value` per line.
const POSTURE_PROBE: &str = r#"
echo "uid=$(id -u)"
for field in CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs; do
  echo "$field=$(awk -v f="$field:" '$1 == f { print $2 }' /proc/self/status)"
done
for file in /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max; do
  [ -r "$file" ] && echo "pids=$(cat "$file")"
done
for file in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
  [ -r "$file" ] && echo "memory=$(cat "$file")"
done
if [ -r /sys/fs/cgroup/cpu.max ]; then
  echo "cpu=$(tr ' ' / < /sys/fs/cgroup/cpu.max)"
elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
  echo "cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)/$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
fi
echo "interfaces=$(ls /sys/class/net | tr '\n' ' ')"
echo "routes=$(tail -n +2 /proc/net/route | wc -l)"
true
"#;

fn parse_posture(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect()
}

/// Every defence the probe finds missing, as a sentence.
fn missing_defences(posture: &BTreeMap<String, String>) -> Vec<String> {
    let get = |name: &str| posture.get(name).map(String::as_str).unwrap_or("");
    let mut missing = Vec::new();
    if get("uid").is_empty() || get("uid") == "0" {
        missing.push(format!("runs as root (uid {:?})", get("uid")));
    }
    for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let value = get(field);
        if value.is_empty() || value.bytes().any(|digit| digit != b'0') {
            missing.push(format!("holds capabilities ({field} {value})"));
        }
    }
    if get("NoNewPrivs") != "1" {
        missing.push("may gain privileges (NoNewPrivs is not 1)".into());
    }
    if get("pids") != PIDS_LIMIT {
        missing.push(format!("pids limit is {:?}", get("pids")));
    }
    let memory: u64 = MEMORY_MB.parse::<u64>().unwrap() * 1024 * 1024;
    if get("memory") != memory.to_string() {
        missing.push(format!("memory limit is {:?}", get("memory")));
    }
    if get("cpu") != "50000/100000" {
        missing.push(format!("CPU quota is {:?}", get("cpu")));
    }
    if get("interfaces") != "lo" || get("routes") != "0" {
        missing.push(format!(
            "has a network (interfaces {:?}, {} routes)",
            get("interfaces"),
            get("routes")
        ));
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_sandboxes_hold_the_posture_on_a_real_engine() {
    let Some(engine) = RealEngine::find("docker_sandboxes_hold_the_posture_on_a_real_engine").await
    else {
        return;
    };
    let backend = Backend::start("docker", engine_env(&engine)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let sandbox = client.create(json!({})).await.unwrap();
    let seen = client.sh(&sandbox.id, POSTURE_PROBE).await.unwrap();
    let posture = parse_posture(&seen.stdout);
    let missing = missing_defences(&posture);

    // An attack on the memory budget: one process holding more than the limit is
    // killed, and the sandbox serves on.
    let hog = client
        .exec_result(
            &sandbox.id,
            json!({"command": "sh", "args": ["-c", "head -c 400m /dev/zero | tail > /dev/null"],
                   "timeout_ms": 60000}),
        )
        .await
        .unwrap();
    let after = client.sh(&sandbox.id, "echo alive").await.unwrap();
    client.destroy(&sandbox.id).await.unwrap();

    assert!(missing.is_empty(), "{missing:?} in {posture:?}");
    assert!(
        hog.exit.code != 0 && !hog.exit.timed_out,
        "a process over the memory budget was not killed: {:?}",
        hog.exit
    );
    assert_eq!(after.stdout, "alive\n");
}

/// The probe above is only worth its verdict if it notices each defence missing:
/// in a container the Engine starts with none of them (root, every default
/// capability, no limits, the host's network), it must name every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_posture_probe_notices_an_undefended_container() {
    let Some(engine) = RealEngine::find("the_posture_probe_notices_an_undefended_container").await
    else {
        return;
    };
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("docker")
            .args([
                "-H",
                &engine.host,
                "run",
                "--rm",
                "--network",
                "host",
                "--user",
                "0",
            ])
            .args([&engine.image, "sh", "-c", POSTURE_PROBE])
            .output(),
    )
    .await
    .expect("docker run ends within 60 s")
    .expect("the docker CLI runs");
    assert!(output.status.success(), "{output:?}");
    let posture = parse_posture(&String::from_utf8_lossy(&output.stdout));
    let missing = missing_defences(&posture).join("\n");
    for defence in [
        "runs as root",
        "CapBnd",
        "may gain privileges",
        "pids limit",
        "memory limit",
        "CPU quota",
        "has a network",
    ] {
        assert!(
            missing.contains(defence),
            "the probe missed {defence:?}: {missing}"
        );
    }
}

/// A fork is a container from an image committed from its source; destroying the
/// fork removes that image too, so forks do not fill the Engine's disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_fork_leaves_no_image_behind() {
    let Some(engine) = RealEngine::find("a_destroyed_fork_leaves_no_image_behind").await else {
        return;
    };
    let before = engine.sandbox_images().await;
    let backend = Backend::start("docker", engine_env(&engine)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let source = client.create(json!({})).await.unwrap();
    client.sh(&source.id, "echo kept > file").await.unwrap();
    let fork = client
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/fork", source.id),
            Some(json!({})),
        )
        .await;
    assert!(fork.status < 300, "{}", fork.text());
    let fork_id = fork.json()["id"].as_str().unwrap().to_string();
    let copied = client.sh(&fork_id, "cat file").await.unwrap();
    let during = engine.sandbox_images().await;
    client.destroy(&fork_id).await.unwrap();
    client.destroy(&source.id).await.unwrap();
    let after = engine.sandbox_images().await;
    engine.remove_images_since(&before).await;
    assert_eq!(copied.stdout, "kept\n");
    assert!(
        during
            .difference(&before)
            .any(|tag| tag.starts_with("nightshift-fork:")),
        "the fork made no image: {during:?}"
    );
    assert_eq!(after, before, "the fork's image outlived it");
}

/// Engine 20.10 tops out at API 1.41, below the 1.43 this client once pinned: the
/// provider works there only because it agrees a version with the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_speaks_an_older_engines_api_version() {
    let Some(engine) = RealEngine::find("docker_speaks_an_older_engines_api_version").await else {
        return;
    };
    eprintln!(
        "the Engine here: {} (API {} to {})",
        engine.version["Version"], engine.version["MinAPIVersion"], engine.version["ApiVersion"]
    );
    let backend = Backend::start("docker", engine_env(&engine)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let sandbox = client.create(json!({})).await.unwrap();
    let result = client.sh(&sandbox.id, "echo hello").await.unwrap();
    client.destroy(&sandbox.id).await.unwrap();
    assert_eq!(result.stdout, "hello\n");
    let (status, _) = engine
        .get(&format!("/containers/nightshift-{}/json", sandbox.id))
        .await;
    assert_eq!(status, 404, "the destroyed sandbox's container is left");
}

/// The provider's paths through an Engine 29 (API 1.44 to 1.52, the fake): the
/// agreed version is above the old pin's, and the image is pulled (no registry is
/// reachable from the real Engine here), by digest too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_round_trip_through_an_engine_29() {
    let fake = FakeDocker::start().await;
    let backend = Backend::start("docker", fake_env(&fake)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    crate::fakes::round_trip(&client).await;
    let calls = fake.state.calls.lock().await.clone();
    assert!(
        calls
            .iter()
            .all(|call| !call.contains("/v1.4") || call.contains("/v1.52/")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|call| call.contains("/v1.52/containers/create"))
    );

    let digest = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
    let pinned = Backend::start(
        "docker",
        vec![
            ("DOCKER_HOST".into(), fake.host.clone()),
            (
                "SANDBOX_DOCKER_IMAGE".into(),
                format!("localhost:5000/sandbox@{digest}"),
            ),
        ],
    )
    .await;
    let client = crate::conformance::Client::new(pinned.base_url(), TOKEN.into());
    let sandbox = client.create(json!({})).await.unwrap();
    client.destroy(&sandbox.id).await.unwrap();
    let pulls = fake.state.pulls.lock().await.clone();
    assert!(
        pulls.contains(&format!("localhost:5000/sandbox@{digest}")),
        "{pulls:?}"
    );
}

/// An Engine whose oldest API is newer than anything the client speaks is refused
/// with both ranges named, before any container is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_refuses_an_engine_beyond_its_api_versions() {
    let fake = FakeDocker::start_accepting(60..=70).await;
    let backend = Backend::start("docker", fake_env(&fake)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let answer = client.call("POST", "/v1/sandboxes", Some(json!({}))).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.text().contains("1.60 to 1.70"), "{}", answer.text());
    assert!(fake.state.containers.lock().await.is_empty());
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
    let answer = client.call("POST", "/v1/sandboxes", Some(json!({}))).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.text().contains("Docker daemon"), "{}", answer.text());
}

/// A session's runner runs inside its docker sandbox and dials the Worker from there,
/// so a sandbox without a way out (network `none`, the default without
/// `SANDBOX_DOCKER_ISOLATED`) is refused one before anything is created. (A session
/// on the real Engine: `e2e/tests/docker_session.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_sandboxes_refuse_a_session_runner_without_a_way_out() {
    let fake = FakeDocker::start().await;
    let backend = Backend::start("docker", fake_env(&fake)).await;
    let client = crate::conformance::Client::new(backend.base_url(), TOKEN.into());
    let answer = client
        .call(
            "POST",
            "/v1/sandboxes",
            Some(json!({"runner": {
                "worker_url": "http://127.0.0.1:1", "session_id": "s1", "token": "t"
            }})),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("way out"), "{}", answer.text());
    assert!(fake.state.containers.lock().await.is_empty());
}
