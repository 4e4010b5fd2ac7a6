//! Runner supervision, with small shell scripts standing in for the runner. Each
//! script appends its pid to `starts` next to its config file, so the tests can see
//! every start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nightshift_protocol::sandbox::{RunnerBootConfig, SandboxStatus};
use sandbox_backend::AppState;
use serde_json::json;

use super::support::{Backend, RunnerReaper, config, eventually, pid_alive};

/// A runner script: records its start, then does `behaviour`.
pub fn runner_script(dir: &Path, behaviour: &str) -> PathBuf {
    let path = dir.join("runner.sh");
    let script = format!(
        "#!/bin/sh\n\
         dir=$(dirname \"$2\")\n\
         echo $$ >> \"$dir/starts\"\n\
         env > \"$dir/env\"\n\
         starts=$(wc -l < \"$dir/starts\")\n\
         {behaviour}\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub fn launch() -> serde_json::Value {
    json!({"runner": {"worker_url": "http://127.0.0.1:8787", "session_id": "sess-1", "token": "tok.en"}})
}

pub fn starts(backend_runner_dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(backend_runner_dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

#[tokio::test]
async fn the_runner_gets_a_private_config_and_a_clean_environment() {
    let scripts = tempfile::tempdir().unwrap();
    let backend = Backend::with_runner(&runner_script(scripts.path(), "exec sleep 1000")).await;
    let sandbox = backend.create(launch()).await;
    let runner_dir = backend.runner_dir(&sandbox.id);
    assert!(eventually(Duration::from_secs(5), || starts(&runner_dir).len() == 1).await);

    let config_path = runner_dir.join("config.json");
    let mode = std::fs::metadata(&config_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let config: RunnerBootConfig =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(
        (config.session_id.as_str(), config.token.expose().as_str()),
        ("sess-1", "tok.en")
    );
    assert_eq!(config.worker_url, "http://127.0.0.1:8787");
    assert_eq!(
        Path::new(&config.workspace_dir),
        backend.workspace(&sandbox.id)
    );
    assert_eq!(config.sandbox_workspace_dir, "/workspace");

    // The command wrapper really runs a command in the sandbox.
    let mut argv = config.command_wrapper.clone();
    argv.extend([
        "bash".into(),
        "-lc".into(),
        "pwd; test -e /work || echo no-work; touch from-runner".into(),
    ]);
    let output = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "/workspace\nno-work\n",
        "{output:?}"
    );
    assert!(backend.workspace(&sandbox.id).join("from-runner").is_file());

    // Only PATH, HOME and RUST_LOG come from the backend (the shell adds a few of its own).
    let env = std::fs::read_to_string(runner_dir.join("env")).unwrap();
    for line in env.lines() {
        let name = line.split('=').next().unwrap();
        assert!(
            ["PATH", "HOME", "RUST_LOG", "PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
            "leaked {line}"
        );
    }
    let (status, _) = backend
        .call("DELETE", &format!("/v1/sandboxes/{}", sandbox.id), None)
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
}

#[tokio::test]
async fn a_root_backends_runner_runs_as_the_sandbox_user_and_shares_files_with_the_sandbox() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    let scripts = tempfile::tempdir().unwrap();
    // The runner notes who it is, writes into the workspace, and tries to list the
    // backend's sandboxes directory.
    let runner = runner_script(
        scripts.path(),
        "id -u > \"$dir/uid\"\n\
         echo runner > \"$dir/../workspace/by-runner\"\n\
         ls \"$dir/../..\" > /dev/null 2>&1 || echo refused > \"$dir/list\"\n\
         exec sleep 1000",
    );
    let backend = Backend::with_runner(&runner).await;
    let sandbox = backend.create(launch()).await;
    let runner_dir = backend.runner_dir(&sandbox.id);
    assert!(eventually(Duration::from_secs(5), || runner_dir.join("list").is_file()).await);
    assert_eq!(
        std::fs::read_to_string(runner_dir.join("uid"))
            .unwrap()
            .trim(),
        "100000"
    );
    let config_path = runner_dir.join("config.json");
    let metadata = std::fs::metadata(&config_path).unwrap();
    assert_eq!((metadata.uid(), metadata.mode() & 0o777), (100_000, 0o600));
    assert_eq!(
        std::fs::read_to_string(runner_dir.join("list"))
            .unwrap()
            .trim(),
        "refused"
    );
    // The sandbox edits the runner's file...
    let output = backend
        .exec(
            &sandbox.id,
            json!({"command": "sh", "args": ["-c", "echo sandbox >> by-runner && echo made > by-sandbox"]}),
        )
        .await;
    assert!(format!("{output:?}").contains("code: 0"), "{output:?}");
    // ...and the runner's command wrapper, run as the runner's user, edits the
    // sandbox's.
    let config: RunnerBootConfig =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    let mut argv = config.command_wrapper.clone();
    argv.extend(["sh".into(), "-c".into(), "echo runner >> by-sandbox".into()]);
    let wrapped = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .uid(100_000)
        .gid(100_000)
        .output()
        .unwrap();
    assert!(wrapped.status.success(), "{wrapped:?}");
    let workspace = backend.workspace(&sandbox.id);
    assert_eq!(
        std::fs::read_to_string(workspace.join("by-runner")).unwrap(),
        "runner\nsandbox\n"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("by-sandbox")).unwrap(),
        "made\nrunner\n"
    );
    let (status, _) = backend
        .call("DELETE", &format!("/v1/sandboxes/{}", sandbox.id), None)
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
}

#[tokio::test]
async fn a_crashed_runner_is_restarted_quickly_and_killed_on_delete() {
    let scripts = tempfile::tempdir().unwrap();
    // The first start crashes; later ones stay up.
    let runner = runner_script(
        scripts.path(),
        "if [ \"$starts\" -le 1 ]; then exit 1; fi\nexec sleep 1000",
    );
    let backend = Backend::with_runner(&runner).await;
    let sandbox = backend.create(launch()).await;
    let runner_dir = backend.runner_dir(&sandbox.id);
    let created = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || starts(&runner_dir).len() >= 2).await,
        "no restart"
    );
    assert!(
        created.elapsed() < Duration::from_millis(2500),
        "restart took {:?}",
        created.elapsed()
    );
    let pid = starts(&runner_dir)[1];
    assert!(pid_alive(pid));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        starts(&runner_dir).len(),
        2,
        "a healthy runner was restarted"
    );

    let (status, _) = backend
        .call("DELETE", &format!("/v1/sandboxes/{}", sandbox.id), None)
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert!(!pid_alive(pid), "the runner outlived its sandbox");
}

#[tokio::test]
async fn a_runner_whose_token_was_rejected_stays_down() {
    let scripts = tempfile::tempdir().unwrap();
    let backend = Backend::with_runner(&runner_script(scripts.path(), "exit 3")).await;
    let sandbox = backend.create(launch()).await;
    let runner_dir = backend.runner_dir(&sandbox.id);
    assert!(eventually(Duration::from_secs(5), || starts(&runner_dir).len() == 1).await);
    let told = eventually(Duration::from_secs(5), || {
        backend
            .state
            .sandboxes()
            .get(&sandbox.id)
            .unwrap()
            .error
            .is_some_and(|error| error.contains("token"))
    })
    .await;
    assert!(told, "the sandbox does not say why its runner is down");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(starts(&runner_dir).len(), 1, "restarted after exit code 3");
    let sandbox = backend.state.sandboxes().get(&sandbox.id).unwrap();
    assert_eq!(
        sandbox.status,
        SandboxStatus::Ready,
        "the sandbox itself still works"
    );
}

#[tokio::test]
async fn a_stop_of_the_backend_stops_runners_and_the_next_start_restarts_them() {
    let scripts = tempfile::tempdir().unwrap();
    let runner = runner_script(scripts.path(), "exec sleep 1000");
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let _reaper = RunnerReaper(data_dir.clone());
    let first = AppState::start(&config(&data_dir, &runner)).await.unwrap();
    let created = first
        .sandboxes()
        .create(serde_json::from_value(launch()).unwrap())
        .await
        .unwrap();
    let runner_dir = data_dir.join("sandboxes").join(&created.id).join("runner");
    assert!(eventually(Duration::from_secs(5), || starts(&runner_dir).len() == 1).await);
    let first_pid = starts(&runner_dir)[0];
    first.shutdown().await;
    assert!(!pid_alive(first_pid), "shutdown left the runner running");
    drop(first);

    let second = AppState::start(&config(&data_dir, &runner)).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || starts(&runner_dir).len() == 2).await,
        "not restarted"
    );
    let second_pid = starts(&runner_dir)[1];
    assert!(pid_alive(second_pid));
    second.sandboxes().destroy(&created.id).await.unwrap();
    assert!(!pid_alive(second_pid));
}

#[test]
fn a_runner_left_over_from_a_crashed_backend_is_replaced() {
    let scripts = tempfile::tempdir().unwrap();
    let runner = runner_script(scripts.path(), "exec sleep 1000");
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let _reaper = RunnerReaper(data_dir.clone());

    // The first backend lives in a runtime that is dropped without any shutdown, as
    // if the process had been killed: its runner keeps running.
    let crashed = tokio::runtime::Runtime::new().unwrap();
    let (id, orphan) = crashed.block_on(async {
        let state = AppState::start(&config(&data_dir, &runner)).await.unwrap();
        let created = state
            .sandboxes()
            .create(serde_json::from_value(launch()).unwrap())
            .await
            .unwrap();
        let runner_dir = data_dir.join("sandboxes").join(&created.id).join("runner");
        assert!(eventually(Duration::from_secs(5), || starts(&runner_dir).len() == 1).await);
        // Let the supervisor record the pid before the "crash".
        tokio::time::sleep(Duration::from_millis(200)).await;
        (created.id, starts(&runner_dir)[0])
    });
    crashed.shutdown_timeout(Duration::from_millis(100));
    assert!(
        pid_alive(orphan),
        "the runner should have survived the crash"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let state = AppState::start(&config(&data_dir, &runner)).await.unwrap();
        assert!(!pid_alive(orphan), "the leftover runner was not stopped");
        let runner_dir = data_dir.join("sandboxes").join(&id).join("runner");
        assert!(eventually(Duration::from_secs(5), || starts(&runner_dir).len() == 2).await);
        let replacement = starts(&runner_dir)[1];
        assert!(pid_alive(replacement));
        state.sandboxes().destroy(&id).await.unwrap();
        assert!(!pid_alive(replacement));
    });
}
