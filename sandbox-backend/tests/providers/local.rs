//! The conformance suite against the `local` provider, for real: the
//! `sandbox-backend` binary on a TCP port, bubblewrap sandboxes, a restart of the
//! binary for reattach.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use crate::conformance::Harness;
use async_trait::async_trait;

const TOKEN: &str = "conformance-token";
const IDLE_MINUTE_MS: u64 = 1000;

struct LocalHarness {
    data_dir: PathBuf,
    port: u16,
    child: Mutex<Option<std::process::Child>>,
    _temp: tempfile::TempDir,
}

impl LocalHarness {
    async fn start() -> LocalHarness {
        let temp = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let harness = LocalHarness {
            data_dir: temp.path().join("data"),
            port,
            child: Mutex::new(None),
            _temp: temp,
        };
        harness.boot().await;
        harness
    }

    async fn boot(&self) {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox-backend"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SANDBOX_BACKEND_TOKEN", TOKEN)
            .env("SANDBOX_BACKEND_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("NIGHTSHIFT_DATA_DIR", &self.data_dir)
            .env("SANDBOX_IDLE_MINUTE_MS", IDLE_MINUTE_MS.to_string())
            .env("SANDBOX_ISOLATED_ALLOW", "127.0.0.2")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        *self.child.lock().unwrap() = Some(child);
        let url = format!("{}/v1/health", self.base_url());
        for _ in 0..200 {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the backend did not come up");
    }

    fn terminate(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }
}

impl Drop for LocalHarness {
    fn drop(&mut self) {
        self.terminate();
    }
}

#[async_trait]
impl Harness for LocalHarness {
    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn token(&self) -> String {
        TOKEN.into()
    }
    fn provider(&self) -> String {
        "local".into()
    }
    async fn restart_backend(&self) -> bool {
        self.terminate();
        self.boot().await;
        true
    }
    fn idle_minute(&self) -> Duration {
        Duration::from_millis(IDLE_MINUTE_MS)
    }
    fn shares_host_loopback(&self) -> bool {
        true
    }
    fn runs_real_commands(&self) -> bool {
        true
    }
    fn isolated_allowed_address(&self) -> Option<String> {
        Some("127.0.0.2".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_provider_conforms() {
    let harness = LocalHarness::start().await;
    let only: Vec<String> = std::env::var("CONFORMANCE_ONLY")
        .map(|list| list.split(',').map(String::from).collect())
        .unwrap_or_default();
    let only: Vec<&str> = only.iter().map(String::as_str).collect();
    crate::conformance::run_selected(&harness, &only).await;
}
