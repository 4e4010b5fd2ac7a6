//! The `sandbox-backend` binary on a TCP port, configured with one remote provider
//! (pointed at a fake server) as its default, for the conformance suite.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

pub const TOKEN: &str = "conformance-token";
pub const IDLE_MINUTE_MS: u64 = 1000;

pub struct Backend {
    pub provider: String,
    env: Vec<(String, String)>,
    data_dir: PathBuf,
    pub port: u16,
    child: Mutex<Option<std::process::Child>>,
    _temp: tempfile::TempDir,
}

impl Backend {
    pub async fn start(provider: &str, env: Vec<(String, String)>) -> Backend {
        let temp = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let backend = Backend {
            provider: provider.to_string(),
            env,
            data_dir: temp.path().join("data"),
            port,
            child: Mutex::new(None),
            _temp: temp,
        };
        backend.boot().await;
        backend
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn boot(&self) {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox-backend"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SANDBOX_BACKEND_TOKEN", TOKEN)
            .env("SANDBOX_BACKEND_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("NIGHTSHIFT_DATA_DIR", &self.data_dir)
            .env("SANDBOX_IDLE_MINUTE_MS", IDLE_MINUTE_MS.to_string())
            .env("SANDBOX_DEFAULT_PROVIDER", &self.provider)
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        *self.child.lock().unwrap() = Some(child);
        let url = format!("{}/v1/health", self.base_url());
        for _ in 0..200 {
            if let Some(child) = self.child.lock().unwrap().as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("the backend exited at start: {status}");
            }
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

    /// Ends the backend at once (SIGKILL): no shutdown, as when its host dies.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn terminate(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Names of the cases to run (`CONFORMANCE_ONLY=a,b`), or all.
pub fn only() -> Vec<String> {
    std::env::var("CONFORMANCE_ONLY")
        .map(|list| list.split(',').map(String::from).collect())
        .unwrap_or_default()
}
