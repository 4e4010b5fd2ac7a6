//! A backend on a temporary data directory, and helpers to call it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use nightshift_protocol::ErrorBody;
use nightshift_protocol::sandbox::{ExecOutput, Sandbox};
use sandbox_backend::{AppState, Config, app};
use serde_json::Value;
use tower::ServiceExt;

pub const TOKEN: &str = "test-backend-token";

pub struct Backend {
    pub state: AppState,
    pub app: Router,
    pub data_dir: PathBuf,
    /// Kills stand-in runners even when a test fails halfway.
    pub _reaper: RunnerReaper,
    /// Keeps the data directory alive for the test.
    pub _temp: tempfile::TempDir,
}

/// On drop, kills every runner recorded in a data directory's `runner/starts` files
/// (the stand-in runners append their pid there), so a failing test leaks no process.
pub struct RunnerReaper(pub PathBuf);

impl Drop for RunnerReaper {
    fn drop(&mut self) {
        let Ok(sandboxes) = std::fs::read_dir(self.0.join("sandboxes")) else {
            return;
        };
        for sandbox in sandboxes.flatten() {
            let starts =
                std::fs::read_to_string(sandbox.path().join("runner/starts")).unwrap_or_default();
            for pid in starts
                .lines()
                .filter_map(|line| line.trim().parse::<u32>().ok())
            {
                sandbox_backend::process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

pub fn config(data_dir: &Path, runner_bin: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        runner_bin: runner_bin.to_path_buf(),
        agent_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_sandbox-backend"))),
        // A test's sandboxes end soon after the test (and its backend) do.
        orphan_grace: std::time::Duration::from_secs(5),
        // Sandboxes start cold here; the conformance suite covers the warm pool.
        warm_pool: 0,
        ..Config::new(TOKEN, data_dir)
    }
}

impl Backend {
    pub async fn start() -> Backend {
        Backend::with_runner(Path::new("/nonexistent/runner")).await
    }

    pub async fn with_runner(runner_bin: &Path) -> Backend {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().join("data");
        let state = AppState::start(&config(&data_dir, runner_bin))
            .await
            .unwrap();
        let data_dir = data_dir.canonicalize().unwrap();
        Backend {
            app: app(state.clone()),
            state,
            _reaper: RunnerReaper(data_dir.clone()),
            data_dir,
            _temp: temp,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> axum::response::Response {
        self.app.clone().oneshot(request).await.unwrap()
    }

    /// An authenticated request with an optional JSON body.
    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Bytes) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(
                body.map(|body| Body::from(body.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let response = self.send(request).await;
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    pub async fn create(&self, body: Value) -> Sandbox {
        let (status, bytes) = self.call("POST", "/v1/sandboxes", Some(body)).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Runs a command and returns every NDJSON line.
    pub async fn exec(&self, id: &str, body: Value) -> Vec<ExecOutput> {
        let (status, bytes) = self
            .call("POST", &format!("/v1/sandboxes/{id}/exec"), Some(body))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    pub fn workspace(&self, id: &str) -> PathBuf {
        self.data_dir.join("sandboxes").join(id).join("workspace")
    }

    pub fn runner_dir(&self, id: &str) -> PathBuf {
        self.data_dir.join("sandboxes").join(id).join("runner")
    }
}

/// The error code of an error answer.
pub fn error_code(bytes: &Bytes) -> String {
    let body: ErrorBody = serde_json::from_slice(bytes)
        .unwrap_or_else(|_| panic!("not an error envelope: {}", String::from_utf8_lossy(bytes)));
    body.error.code.as_str().to_string()
}

/// Standard output of an exec, its exit code last.
pub fn stdout_and_code(lines: &[ExecOutput]) -> (String, i32) {
    let mut stdout = String::new();
    let mut code = None;
    for line in lines {
        match line {
            ExecOutput::Stdout(text) => stdout.push_str(text),
            ExecOutput::Stderr(_) => {}
            ExecOutput::Exit(exit) => code = Some(exit.code),
        }
    }
    assert!(
        matches!(lines.last(), Some(ExecOutput::Exit(_))),
        "the exit line is not last: {lines:?}"
    );
    (stdout, code.unwrap())
}

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether any process on the host has `needle` in its command line.
pub fn process_running_with(needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            return false;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        // Zombies have an empty command line; they are already dead.
        text.contains(needle)
    })
}

pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}
