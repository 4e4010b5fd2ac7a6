//! Checkpoints through the API on real bubblewrap sandboxes: a restore brings back
//! exactly the checkpoint's files (a nested git repository and a link to a host path
//! included) and restarts the sandbox, a new sandbox starts from another's
//! checkpoint, and destroying a sandbox removes its checkpoints.

use axum::http::StatusCode;
use nightshift_protocol::checkpoints::{CheckpointList, CheckpointRestored, CheckpointTaken};
use nightshift_protocol::sandbox::Sandbox;
use serde_json::json;

use super::support::{Backend, error_code, stdout_and_code};

async fn shell(backend: &Backend, id: &str, script: &str) -> String {
    let lines = backend
        .exec(id, json!({"command": "sh", "args": ["-c", script]}))
        .await;
    let (stdout, code) = stdout_and_code(&lines);
    assert_eq!(code, 0, "{script}: {lines:?}");
    stdout
}

async fn take(backend: &Backend, id: &str) -> CheckpointTaken {
    let (status, bytes) = backend
        .call("POST", &format!("/v1/sandboxes/{id}/checkpoints"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
}

const FIRST_TURN: &str = "echo first > notes.txt && mkdir -p repo && cd repo && git init -q \
    && echo tracked > a.txt && git add a.txt \
    && git -c user.name=t -c user.email=t@example.com commit -qm one && cd .. \
    && ln -s /etc/passwd host-link";

const AFTER_RESTORE: &str = "cat notes.txt; test -e second.txt && echo second-still-there; \
    git -C repo log --format=%s; readlink host-link; test -L host-link && echo is-link";

#[tokio::test]
async fn a_restore_brings_back_the_checkpoints_files_and_restarts_the_sandbox() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let id = sandbox.id.as_str();
    shell(&backend, id, FIRST_TURN).await;
    let first = take(&backend, id).await;
    assert!(first.bytes_added > 0);

    shell(
        &backend,
        id,
        "echo second > second.txt && echo changed > notes.txt && rm -rf repo",
    )
    .await;
    let second = take(&backend, id).await;
    assert!(
        second.bytes_added < first.bytes_added,
        "only new bytes are stored"
    );

    let (status, bytes) = backend
        .call("GET", &format!("/v1/sandboxes/{id}/checkpoints"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let list: CheckpointList = serde_json::from_slice(&bytes).unwrap();
    let ids: Vec<&str> = list
        .checkpoints
        .iter()
        .map(|info| info.id.as_str())
        .collect();
    assert_eq!(ids, [first.id.as_str(), second.id.as_str()]);

    let (status, bytes) = backend
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/checkpoints/{}/restore", first.id),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let restored: CheckpointRestored = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(restored.files, first.files);
    let (_, bytes) = backend
        .call("GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    let after: Sandbox = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        after.status,
        nightshift_protocol::sandbox::SandboxStatus::Ready
    );
    assert_eq!(
        shell(&backend, id, AFTER_RESTORE).await,
        "first\none\n/etc/passwd\nis-link\n"
    );
}

#[tokio::test]
async fn a_sandbox_made_from_a_checkpoint_diverges_and_destroy_removes_checkpoints() {
    let backend = Backend::start().await;
    let parent = backend.create(json!({})).await;
    shell(&backend, &parent.id, FIRST_TURN).await;
    let first = take(&backend, &parent.id).await;
    shell(&backend, &parent.id, "echo second > second.txt").await;

    let fork = backend
        .create(json!({"from_checkpoint": {"sandbox": parent.id, "checkpoint": first.id}}))
        .await;
    assert_eq!(
        shell(&backend, &fork.id, AFTER_RESTORE).await,
        "first\none\n/etc/passwd\nis-link\n"
    );
    shell(&backend, &fork.id, "echo fork > fork-only.txt").await;
    assert_eq!(
        shell(&backend, &parent.id, "ls").await,
        "host-link\nnotes.txt\nrepo\nsecond.txt\n"
    );

    let (status, _) = backend
        .call("DELETE", &format!("/v1/sandboxes/{}", parent.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!backend.data_dir.join("sandboxes").join(&parent.id).exists());
    let (status, bytes) = backend
        .call(
            "GET",
            &format!("/v1/sandboxes/{}/checkpoints", parent.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&bytes), "sandbox_not_found");
    // The fork is its own: its files outlive the parent.
    assert_eq!(
        shell(&backend, &fork.id, "cat fork-only.txt").await,
        "fork\n"
    );
}

#[tokio::test]
async fn unknown_checkpoints_are_not_found_and_nothing_is_created() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    for checkpoint in ["cp_00000000000000000000000000000000", "not-an-id"] {
        let (status, bytes) = backend
            .call(
                "POST",
                &format!(
                    "/v1/sandboxes/{}/checkpoints/{checkpoint}/restore",
                    sandbox.id
                ),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error_code(&bytes), "not_found");
        let (status, bytes) = backend
            .call(
                "POST",
                "/v1/sandboxes",
                Some(json!({"from_checkpoint": {"sandbox": sandbox.id, "checkpoint": checkpoint}})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error_code(&bytes), "not_found");
    }
    let (status, bytes) = backend
        .call("POST", "/v1/sandboxes/sbx_missing/checkpoints", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&bytes), "sandbox_not_found");
    let (_, bytes) = backend.call("GET", "/v1/sandboxes", None).await;
    let list: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(list["sandboxes"].as_array().unwrap().len(), 1);
}
