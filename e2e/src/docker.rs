//! The docker provider for the end-to-end tests and the benchmark: the real Docker
//! Engine `scripts/docker-engine.sh` runs (`make test-e2e` starts it), the sandbox
//! image built from this tree (`scripts/sandbox-image.sh`: offline, on the Engine's
//! local base image, once per change of its inputs), and the real sandbox backend
//! serving the docker provider with that image beside the local one.
//!
//! A run without an Engine fails saying so, unless it opts out with
//! `DOCKER_TESTS=skip`; it never passes silently.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::stack::{binary, free_port, repo_root};

/// Where `scripts/docker-engine.sh` runs its daemon, and its base image.
const DEFAULT_HOST: &str = "unix:///run/nightshift-docker/docker.sock";
const DEFAULT_BASE: &str = "nightshift-test-base:bookworm";

/// The Engine a test runs its containers on.
pub struct Engine {
    /// `unix:///...` for `DOCKER_HOST`.
    pub host: String,
    /// The local base image the sandbox image is built on.
    pub base: String,
}

impl Engine {
    /// The Engine, or `None` when the run opted out (`DOCKER_TESTS=skip`, printed);
    /// an error saying what to do when none answers.
    pub fn find(test: &str) -> anyhow::Result<Option<Engine>> {
        if std::env::var("DOCKER_TESTS").is_ok_and(|value| value == "skip") {
            eprintln!("{test}: SKIPPED (DOCKER_TESTS=skip: no real Docker Engine in this run)");
            return Ok(None);
        }
        let host = std::env::var("NIGHTSHIFT_TEST_DOCKER_HOST")
            .unwrap_or_else(|_| DEFAULT_HOST.to_string());
        let base = std::env::var("NIGHTSHIFT_TEST_DOCKER_IMAGE")
            .unwrap_or_else(|_| DEFAULT_BASE.to_string());
        let engine = Engine { host, base };
        let answer = engine.docker(&["image", "inspect", "--format", "{{.Id}}", &engine.base])?;
        if !answer.status.success() {
            bail!(
                "{test}: no Docker Engine with the image {} answers at {} ({}): start one with \
                 `bash scripts/docker-engine.sh up` (make test-e2e does), or opt out with \
                 DOCKER_TESTS=skip",
                engine.base,
                engine.host,
                String::from_utf8_lossy(&answer.stderr).trim()
            );
        }
        Ok(Some(engine))
    }

    /// The Docker CLI against this Engine (Debian's client, which builds with
    /// BuildKit without a buildx plugin).
    pub fn docker(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let cli = if std::path::Path::new("/usr/bin/docker").is_file() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        Command::new(cli)
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running the docker CLI")
    }

    /// The sandbox image of this tree's binaries (those the harness runs), built when
    /// its inputs changed since the last build; its tag.
    pub fn sandbox_image(&self) -> anyhow::Result<String> {
        let runner = binary("runner");
        let bin_dir = runner.parent().context("the binaries' directory")?;
        let profile = bin_dir
            .file_name()
            .and_then(|name| name.to_str())
            .context("the binaries' profile")?;
        let target_dir = bin_dir.parent().context("the target directory")?;
        let built = Command::new("bash")
            .arg(repo_root().join("scripts/sandbox-image.sh"))
            .env("DOCKER_HOST", &self.host)
            .env("BASE_IMAGE", &self.base)
            .env("PROFILE", profile)
            .env("CARGO_TARGET_DIR", target_dir)
            .stdin(Stdio::null())
            .output()
            .context("running scripts/sandbox-image.sh")?;
        if !built.status.success() {
            bail!(
                "the sandbox image did not build:\n{}",
                String::from_utf8_lossy(&built.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&built.stdout).trim().to_string())
    }

    /// The image's size in bytes, as the Engine reports it.
    pub fn image_size(&self, image: &str) -> anyhow::Result<u64> {
        let answer = self.docker(&["image", "inspect", "--format", "{{.Size}}", image])?;
        String::from_utf8_lossy(&answer.stdout)
            .trim()
            .parse()
            .with_context(|| format!("the size of {image}"))
    }
}

/// The real `sandbox-backend` with the docker provider (the sandbox image) beside
/// the local one; killed when dropped.
pub struct DockerBackend {
    pub url: String,
    pub token: String,
    child: Child,
    log: PathBuf,
    /// What the backend was started with, to start it again the same way.
    command: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl DockerBackend {
    pub async fn start(engine: &Engine, image: &str) -> anyhow::Result<DockerBackend> {
        DockerBackend::start_with(engine, image, &[]).await
    }

    /// [`DockerBackend::start`] with more settings (e.g. `SANDBOX_DOCKER_ISOLATED`).
    pub async fn start_with(
        engine: &Engine,
        image: &str,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<DockerBackend> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let token = format!("docker-e2e-{}", uuid::Uuid::new_v4().simple());
        let log = dir.path().join("backend.log");
        let mut command: Vec<(String, String)> = [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("SANDBOX_BACKEND_TOKEN", token.clone()),
            ("SANDBOX_BACKEND_LISTEN", format!("127.0.0.1:{port}")),
            (
                "NIGHTSHIFT_DATA_DIR",
                dir.path().join("data").display().to_string(),
            ),
            ("RUNNER_BIN", binary("runner").display().to_string()),
            (
                "GATEWAY_BIN",
                binary("nightshift-gateway").display().to_string(),
            ),
            ("SANDBOX_WARM_POOL", "0".into()),
            ("SANDBOX_ALLOW_UNLIMITED", "true".into()),
            ("DOCKER_HOST", engine.host.clone()),
            ("SANDBOX_DOCKER_IMAGE", image.into()),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        command.extend(
            settings
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        let child = spawn(&command, &log)?;
        let backend = DockerBackend {
            url: format!("http://127.0.0.1:{port}"),
            token,
            child,
            log,
            command,
            _dir: dir,
        };
        backend.wait_healthy().await?;
        Ok(backend)
    }

    /// Kills the backend and starts it again on the same data directory and port
    /// (its containers live on and are found again).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.command, &self.log)?;
        self.wait_healthy().await
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + crate::WAIT;
        while reqwest::get(format!("{}/v1/health", self.url))
            .await
            .map(|answer| !answer.status().is_success())
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                bail!("the backend did not come up:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// A request to the backend's API with its bearer.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(120))
    }

    /// Runs `script` with bash in the sandbox through the exec API, `input` on its
    /// stdin: exit code and output (stdout then stderr).
    pub async fn sh(&self, id: &str, script: &str, input: &str) -> anyhow::Result<(i64, String)> {
        let answer: serde_json::Value = self
            .request(
                reqwest::Method::POST,
                &format!("/v1/sandboxes/{id}/exec?stream=false"),
            )
            .json(&serde_json::json!({
                "command": "bash", "args": ["-c", script], "timeout_ms": 30000, "stdin": input,
            }))
            .send()
            .await?
            .json()
            .await?;
        let output = format!(
            "{}{}",
            answer["stdout"].as_str().unwrap_or_default(),
            answer["stderr"].as_str().unwrap_or_default()
        );
        Ok((answer["exit"]["code"].as_i64().unwrap_or(-1), output))
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn spawn(command: &[(String, String)], log: &std::path::Path) -> anyhow::Result<Child> {
    Command::new(binary("sandbox-backend"))
        .env_clear()
        .envs(command.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(log)?,
        )
        .stderr(std::fs::File::options().append(true).open(log)?)
        .spawn()
        .context("starting the sandbox backend")
}

impl Drop for DockerBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
