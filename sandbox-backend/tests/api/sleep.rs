//! Sleep and wake on the local provider: the sandbox stops with its files kept, the
//! answer says what was kept, and waking starts the runner again with the new token
//! it is given (the one it slept with was retired), never another session's.

use std::time::Duration;

use axum::http::StatusCode;
use nightshift_protocol::sandbox::{RunnerBootConfig, Sandbox, SandboxSnapshot, SandboxStatus};
use serde_json::json;

use super::runner::{launch, runner_script, starts};
use super::support::{Backend, error_code, eventually, pid_alive};

#[tokio::test]
async fn a_sandbox_sleeps_with_its_files_and_wakes_with_a_new_runner_token() {
    let scripts = tempfile::tempdir().unwrap();
    let backend = Backend::with_runner(&runner_script(scripts.path(), "exec sleep 1000")).await;
    let sandbox = backend.create(launch()).await;
    let runner_dir = backend.runner_dir(&sandbox.id);
    assert!(eventually(Duration::from_secs(5), || starts(&runner_dir).len() == 1).await);
    let first_runner = starts(&runner_dir)[0];
    std::fs::write(backend.workspace(&sandbox.id).join("kept.txt"), "kept").unwrap();

    let (status, bytes) = backend
        .call("POST", &format!("/v1/sandboxes/{}/sleep", sandbox.id), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let snapshot: SandboxSnapshot = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (snapshot.sandbox_id.as_str(), snapshot.kind.as_str()),
        (sandbox.id.as_str(), "directory")
    );
    assert_eq!(snapshot.runner_version, nightshift_protocol::VERSION);
    assert!(
        snapshot.bytes.is_some_and(|bytes| bytes >= 4),
        "{snapshot:?}"
    );
    assert_eq!(
        backend.state.sandboxes().get(&sandbox.id).unwrap().status,
        SandboxStatus::Stopped
    );
    assert!(!pid_alive(first_runner), "the runner outlived the sleep");

    // Another session's launch is refused and changes nothing.
    let other = json!({"runner": {"worker_url": "http://127.0.0.1:8787", "session_id": "sess-2", "token": "other"}});
    let (status, bytes) = backend
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/wake", sandbox.id),
            Some(other),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&bytes), "invalid_request");
    assert_eq!(
        backend.state.sandboxes().get(&sandbox.id).unwrap().status,
        SandboxStatus::Stopped
    );

    let fresh = json!({"runner": {"worker_url": "http://127.0.0.1:8788", "session_id": "sess-1", "token": "fresh.token"}});
    let (status, bytes) = backend
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/wake", sandbox.id),
            Some(fresh),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let woken: Sandbox = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(woken.status, SandboxStatus::Ready);
    assert!(eventually(Duration::from_secs(5), || starts(&runner_dir).len() == 2).await);
    let config: RunnerBootConfig =
        serde_json::from_slice(&std::fs::read(runner_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (config.token.expose().as_str(), config.worker_url.as_str()),
        ("fresh.token", "http://127.0.0.1:8788")
    );
    assert_eq!(
        std::fs::read_to_string(backend.workspace(&sandbox.id).join("kept.txt")).unwrap(),
        "kept"
    );

    // Destroying it leaves no directory behind.
    let (status, _) = backend
        .call("DELETE", &format!("/v1/sandboxes/{}", sandbox.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !backend
            .data_dir
            .join("sandboxes")
            .join(&sandbox.id)
            .exists()
    );
}

#[tokio::test]
async fn sleeping_an_unknown_sandbox_is_not_found() {
    let backend = Backend::start().await;
    let (status, bytes) = backend
        .call("POST", "/v1/sandboxes/sbx_nope/sleep", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&bytes), "sandbox_not_found");
    let (status, _) = backend
        .call(
            "POST",
            "/v1/sandboxes/sbx_nope/wake",
            Some(json!({"surprise": 1})),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
}
