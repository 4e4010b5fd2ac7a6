//! Sleep and wake on the `railway` provider, through the fake Railway (held to the
//! operations of Railway's own SDK): a sleep keeps the disk as a checkpoint
//! (`sandboxCheckpointCreate`) and destroys the Railway sandbox; a wake boots a new
//! one from the checkpoint for the same backend id; a checkpoint is deleted
//! (`sandboxCheckpointDelete`) once nothing needs it.

use nightshift_protocol::sandbox::{SandboxSnapshot, SandboxStatus};
use serde_json::{Value, json};

use super::railway::railway_env;
use crate::conformance::Client;
use crate::fakes::backend::{Backend, TOKEN};
use crate::fakes::railway::{FakeRailway, PROJECT_TOKEN};

/// The Railway sandboxes that run, with the checkpoint each booted from.
async fn running(fake: &FakeRailway) -> Vec<(String, Option<String>)> {
    fake.state
        .sandboxes
        .lock()
        .await
        .iter()
        .filter(|(_, sandbox)| sandbox.status == "RUNNING")
        .map(|(id, sandbox)| (id.clone(), sandbox.checkpoint.clone()))
        .collect()
}

/// The checkpoint the backend's own record keeps for the sandbox.
fn kept_checkpoint(backend: &Backend, id: &str) -> String {
    let path = backend
        .data_dir()
        .join("sandboxes")
        .join(id)
        .join("sandbox.json");
    let record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record["handle"]["checkpoint"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no checkpoint kept in the record: {record}"))
        .to_string()
}

async fn sleep(client: &Client, id: &str) -> SandboxSnapshot {
    let answer = client
        .call("POST", &format!("/v1/sandboxes/{id}/sleep"), None)
        .await;
    assert_eq!(answer.status, 200, "sleep: {}", answer.text());
    serde_json::from_slice(&answer.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_railway_sandbox_sleeps_into_a_checkpoint_and_wakes_from_it_with_its_files() {
    let Some(fake) = FakeRailway::start(
        "a_railway_sandbox_sleeps_into_a_checkpoint_and_wakes_from_it_with_its_files",
    )
    .await
    else {
        return;
    };
    let backend = Backend::start(
        "railway",
        railway_env(&fake, "RAILWAY_TOKEN", PROJECT_TOKEN),
    )
    .await;
    let client = Client::new(backend.base_url(), TOKEN.into());
    let railway = client
        .providers()
        .await
        .providers
        .into_iter()
        .find(|provider| provider.name == "railway")
        .unwrap();
    assert!(
        railway.capabilities.sleep && !railway.capabilities.restart,
        "{railway:?}"
    );

    let id = client.create(json!({})).await.unwrap().id;
    let wrote = client.sh(&id, "echo kept > kept.txt").await.unwrap();
    assert_eq!(wrote.exit.code, 0, "{wrote:?}");
    let first = running(&fake).await;
    assert_eq!(first.len(), 1, "{first:?}");

    let snapshot = sleep(&client, &id).await;
    assert_eq!(
        (snapshot.sandbox_id.as_str(), snapshot.kind.as_str()),
        (id.as_str(), "checkpoint")
    );
    assert_eq!(
        client.get(&id).await.unwrap().status,
        SandboxStatus::Stopped
    );
    let checkpoint = kept_checkpoint(&backend, &id);
    assert!(fake.state.has_checkpoint(&checkpoint).await);
    assert!(
        running(&fake).await.is_empty(),
        "a Railway sandbox runs while asleep"
    );

    let woke = client
        .call("POST", &format!("/v1/sandboxes/{id}/wake"), Some(json!({})))
        .await;
    assert_eq!(woke.status, 200, "wake: {}", woke.text());
    let woken = running(&fake).await;
    assert_eq!(woken.len(), 1, "{woken:?}");
    assert_ne!(
        woken[0].0, first[0].0,
        "a new Railway sandbox serves the wake"
    );
    assert_eq!(woken[0].1.as_deref(), Some(checkpoint.as_str()));
    let read = client.sh(&id, "cat kept.txt").await.unwrap();
    assert_eq!(read.stdout, "kept\n", "{read:?}");

    // A second sleep keeps a newer checkpoint and deletes the first.
    sleep(&client, &id).await;
    let second = kept_checkpoint(&backend, &id);
    assert_ne!(second, checkpoint);
    assert!(fake.state.has_checkpoint(&second).await);
    assert!(
        !fake.state.has_checkpoint(&checkpoint).await,
        "the first sleep's checkpoint outlived the second sleep"
    );

    // Destroyed while asleep: nothing of it is left at Railway.
    client.destroy(&id).await.unwrap();
    assert!(
        !fake.state.has_checkpoint(&second).await,
        "the checkpoint of a destroyed sandbox was kept"
    );
    assert!(running(&fake).await.is_empty());
    let operations = fake.state.operations.lock().await.clone();
    assert!(
        operations
            .iter()
            .any(|operation| operation.contains("sandboxCheckpointDelete")),
        "{operations:?}"
    );
}
