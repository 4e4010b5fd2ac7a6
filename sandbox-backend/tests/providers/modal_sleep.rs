//! Sleep and wake on the `modal` provider, through the fake Modal control plane
//! (`tests/fakes/modal`, held to Modal's official `api.proto`): a sleep keeps the
//! whole filesystem as an image (`SandboxSnapshotFs`) and terminates the Modal
//! sandbox; a wake creates a new Modal sandbox from that image for the same backend
//! id; an image is deleted (`ImageDelete`) once nothing needs it; and a failure at
//! any step leaves the sandbox to be tried again or destroyed.

use nightshift_protocol::sandbox::{SandboxSnapshot, SandboxStatus};
use serde_json::{Value, json};

use super::modal::modal_env;
use crate::conformance::Client;
use crate::conformance::client::Answer;
use crate::fakes::backend::{Backend, TOKEN};
use crate::fakes::modal::{FakeModal, TOKEN_SECRET, generic_status};

struct Setup {
    fake: FakeModal,
    backend: Backend,
    client: Client,
}

async fn setup(test: &str) -> Option<Setup> {
    let fake = FakeModal::start(test).await?;
    let backend = Backend::start("modal", modal_env(&fake, TOKEN_SECRET)).await;
    let client = Client::new(backend.base_url(), TOKEN.into());
    Some(Setup {
        fake,
        backend,
        client,
    })
}

/// One Modal sandbox the fake holds for a backend sandbox.
#[derive(Debug)]
struct ModalSandbox {
    id: String,
    ended: Option<i32>,
    image_id: String,
}

/// Every Modal sandbox tagged with backend sandbox `id`, ended or not.
async fn modal_sandboxes(fake: &FakeModal, id: &str) -> Vec<ModalSandbox> {
    fake.state
        .sandboxes
        .lock()
        .await
        .iter()
        .filter(|(_, sandbox)| {
            sandbox
                .tags
                .iter()
                .any(|(name, value)| name == "nightshift.sandbox" && value == id)
        })
        .map(|(modal_id, sandbox)| ModalSandbox {
            id: modal_id.clone(),
            ended: sandbox.ended,
            image_id: sandbox.image_id.clone(),
        })
        .collect()
}

async fn running(fake: &FakeModal, id: &str) -> Vec<ModalSandbox> {
    let mut all = modal_sandboxes(fake, id).await;
    all.retain(|sandbox| sandbox.ended.is_none());
    all
}

/// The image the backend's own record keeps for the sandbox (never the caller's).
fn kept_image(backend: &Backend, id: &str) -> String {
    let path = backend
        .data_dir()
        .join("sandboxes")
        .join(id)
        .join("sandbox.json");
    let record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record["handle"]["image_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no image kept in the record: {record}"))
        .to_string()
}

async fn post(client: &Client, id: &str, action: &str, body: Option<Value>) -> Answer {
    client
        .call("POST", &format!("/v1/sandboxes/{id}/{action}"), body)
        .await
}

async fn sleep(client: &Client, id: &str) -> SandboxSnapshot {
    let answer = post(client, id, "sleep", None).await;
    assert_eq!(answer.status, 200, "sleep: {}", answer.text());
    serde_json::from_slice(&answer.body).unwrap()
}

async fn wake(client: &Client, id: &str) {
    let answer = post(client, id, "wake", Some(json!({}))).await;
    assert_eq!(answer.status, 200, "wake: {}", answer.text());
    assert_eq!(answer.json()["status"], "ready", "{}", answer.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modal_sandbox_sleeps_into_an_image_and_wakes_from_it_with_its_files() {
    let Some(Setup {
        fake,
        backend,
        client,
    }) = setup("a_modal_sandbox_sleeps_into_an_image_and_wakes_from_it_with_its_files").await
    else {
        return;
    };
    let modal = client
        .providers()
        .await
        .providers
        .into_iter()
        .find(|provider| provider.name == "modal")
        .unwrap();
    assert!(
        modal.capabilities.sleep && !modal.capabilities.restart,
        "{modal:?}"
    );

    let id = client.create(json!({})).await.unwrap().id;
    let wrote = client
        .sh(
            &id,
            "echo kept > kept.txt && mkdir -p \"$HOME/.config\" && echo home > \"$HOME/.config/kept\"",
        )
        .await
        .unwrap();
    assert_eq!(wrote.exit.code, 0, "{wrote:?}");
    let first = running(&fake, &id).await;
    assert_eq!(first.len(), 1, "{first:?}");

    let calls_before = fake.state.calls.lock().await.len();
    let snapshot = sleep(&client, &id).await;
    assert_eq!(
        (snapshot.sandbox_id.as_str(), snapshot.kind.as_str()),
        (id.as_str(), "filesystem_image")
    );
    assert_eq!(snapshot.runner_version, nightshift_protocol::VERSION);
    assert_eq!(
        client.get(&id).await.unwrap().status,
        SandboxStatus::Stopped
    );
    let image = kept_image(&backend, &id);
    assert!(fake.state.has_image(&image).await);
    // Nothing runs (or is billed) at Modal while it sleeps, and the snapshot was
    // taken before the sandbox was ended.
    let after = modal_sandboxes(&fake, &id).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        after[0].ended,
        Some(generic_status("GENERIC_STATUS_TERMINATED"))
    );
    let calls = fake.state.calls.lock().await[calls_before..].to_vec();
    let snapshot_at = calls.iter().position(|call| call == "SandboxSnapshotFs");
    let terminate_at = calls.iter().position(|call| call == "SandboxTerminate");
    assert!(
        snapshot_at.is_some() && terminate_at.is_some() && snapshot_at < terminate_at,
        "{calls:?}"
    );

    // Asleep: no commands, and the files API says so instead of reaching for a
    // sandbox that is gone.
    let exec = post(&client, &id, "exec", Some(json!({"command": "true"}))).await;
    assert_eq!(exec.status, 409, "{}", exec.text());
    let read = client
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files?path=kept.txt"),
            None,
        )
        .await;
    assert_eq!((read.status, read.code().as_str()), (409, "conflict"));

    // A runner launch for a sandbox created without a runner is refused and changes
    // nothing.
    let launch = json!({"runner": {"worker_url": "http://127.0.0.1:8787", "session_id": "sess-1", "token": "t"}});
    let refused = post(&client, &id, "wake", Some(launch)).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (400, "invalid_request"),
        "{}",
        refused.text()
    );
    assert_eq!(
        client.get(&id).await.unwrap().status,
        SandboxStatus::Stopped
    );

    // The sleep outlives a restart of the backend: its record names the image.
    backend.terminate();
    backend.boot().await;
    assert_eq!(
        client.get(&id).await.unwrap().status,
        SandboxStatus::Stopped
    );
    assert_eq!(kept_image(&backend, &id), image);

    wake(&client, &id).await;
    let woken = running(&fake, &id).await;
    assert_eq!(woken.len(), 1, "{woken:?}");
    assert_ne!(
        woken[0].id, first[0].id,
        "a new Modal sandbox serves the wake"
    );
    assert_eq!(woken[0].image_id, image, "woken from the sleep's image");
    let read = client
        .sh(&id, "cat kept.txt \"$HOME/.config/kept\"")
        .await
        .unwrap();
    assert_eq!(read.stdout, "kept\nhome\n", "{read:?}");
    let file = client
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files?path=kept.txt"),
            None,
        )
        .await;
    assert_eq!(file.body, b"kept\n", "{}", file.text());

    // A second sleep keeps a newer image; the first, which no sandbox needs any
    // more, is deleted.
    sleep(&client, &id).await;
    let second = kept_image(&backend, &id);
    assert_ne!(second, image);
    assert!(fake.state.has_image(&second).await);
    assert!(
        !fake.state.has_image(&image).await,
        "the first sleep's image outlived the second sleep"
    );

    // Destroyed while asleep: nothing of it is left at Modal.
    client.destroy(&id).await.unwrap();
    assert!(
        !fake.state.has_image(&second).await,
        "the image of a destroyed sandbox was kept"
    );
    assert!(running(&fake, &id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_modal_sleep_or_wake_can_be_tried_again_or_destroyed() {
    let Some(Setup {
        fake,
        backend,
        client,
    }) = setup("a_failed_modal_sleep_or_wake_can_be_tried_again_or_destroyed").await
    else {
        return;
    };
    let id = client.create(json!({})).await.unwrap().id;
    client.sh(&id, "echo kept > kept.txt").await.unwrap();

    // The snapshot fails: the sandbox was not touched and stays ready.
    fake.state
        .snapshot_failures
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let failed = post(&client, &id, "sleep", None).await;
    assert_eq!(
        (failed.status, failed.code().as_str()),
        (503, "sandbox_unavailable"),
        "{}",
        failed.text()
    );
    assert_eq!(client.get(&id).await.unwrap().status, SandboxStatus::Ready);
    assert_eq!(running(&fake, &id).await.len(), 1);
    let still = client.sh(&id, "cat kept.txt").await.unwrap();
    assert_eq!(still.stdout, "kept\n");

    sleep(&client, &id).await;
    let image = kept_image(&backend, &id);

    // The new sandbox cannot be created: it stays asleep with its image, and says why.
    fake.state
        .create_failures
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let failed = post(&client, &id, "wake", Some(json!({}))).await;
    assert_eq!(failed.status, 503, "{}", failed.text());
    let asleep = client.get(&id).await.unwrap();
    assert_eq!(asleep.status, SandboxStatus::Stopped);
    assert!(
        asleep
            .status_reason
            .as_deref()
            .is_some_and(|reason| reason.contains("waking failed")),
        "{asleep:?}"
    );
    assert_eq!(kept_image(&backend, &id), image);
    assert!(fake.state.has_image(&image).await);
    assert!(running(&fake, &id).await.is_empty());

    wake(&client, &id).await;
    let read = client.sh(&id, "cat kept.txt").await.unwrap();
    assert_eq!(read.stdout, "kept\n", "{read:?}");
    assert_eq!(client.get(&id).await.unwrap().status_reason, None);

    // Destroyed awake: the image it was woken from goes with it.
    client.destroy(&id).await.unwrap();
    assert!(!fake.state.has_image(&image).await);
    assert!(running(&fake, &id).await.is_empty());

    // Stopped without a sleep, a Modal sandbox kept nothing: neither a sleep nor a
    // wake pretends otherwise.
    let other = client.create(json!({})).await.unwrap().id;
    client.stop(&other).await.unwrap();
    let wake = post(&client, &other, "wake", Some(json!({}))).await;
    assert_eq!(
        (wake.status, wake.code().as_str()),
        (400, "invalid_request"),
        "{}",
        wake.text()
    );
    let sleep = post(&client, &other, "sleep", None).await;
    assert_eq!(
        (sleep.status, sleep.code().as_str()),
        (409, "conflict"),
        "{}",
        sleep.text()
    );
    client.destroy(&other).await.unwrap();
}
