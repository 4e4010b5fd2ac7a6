//! Boots the real Nightshift stack for a test: `wrangler dev` (workerd with local D1,
//! R2 and Durable Objects) and the sandbox backend (which starts real runners under
//! bubblewrap), each on a free port with state in a temporary directory.
//!
//! Expects the parts to be built: `worker/build` (by `make build-worker`), and the
//! native `sandbox-backend`, `runner` and (for the CLI's tests) `nightshift` binaries
//! in `target/debug` (or the directory `NIGHTSHIFT_BIN_DIR` names). `make test`
//! builds them first.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::client::Api;

/// The repository root (the directory holding `wrangler.toml`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ sits in the repo root")
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    std::env::var_os("NIGHTSHIFT_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug"))
}

/// A binary of this workspace that the harness runs (the sandbox backend, the runner,
/// the `nightshift` CLI), from `target/debug` or `NIGHTSHIFT_BIN_DIR`.
pub fn binary(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// The OpenCode binary `npm ci` installed, for runners' OpenCode agent: named by
/// `NIGHTSHIFT_OPENCODE_BIN` and its directory bound read-only into sandboxes
/// (`SANDBOX_RO_BINDS`), unless the caller's environment already sets them.
fn opencode_env() -> Vec<(String, String)> {
    let Some(binary) = [
        "node_modules/opencode-linux-x64/bin/opencode",
        "node_modules/opencode-linux-arm64/bin/opencode",
    ]
    .into_iter()
    .map(|relative| repo_root().join(relative))
    .find(|path| path.is_file())
    .and_then(|path| std::fs::canonicalize(path).ok()) else {
        return Vec::new();
    };
    let mut env = Vec::new();
    if std::env::var_os("NIGHTSHIFT_OPENCODE_BIN").is_none() {
        env.push((
            "NIGHTSHIFT_OPENCODE_BIN".to_string(),
            binary.display().to_string(),
        ));
    }
    if std::env::var_os("SANDBOX_RO_BINDS").is_none()
        && let Some(dir) = binary.parent()
    {
        env.push(("SANDBOX_RO_BINDS".to_string(), dir.display().to_string()));
    }
    env
}

/// The port of `url` (`http://host:port/...`), which the harness's servers always
/// name.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').split('/').next())
        .and_then(|port| port.parse().ok())
        .expect("the URL has a port")
}

/// The lowest port of the kernel's ephemeral range (where outgoing connections take
/// their local ports), when the kernel says.
fn ephemeral_port_low() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A free TCP port on loopback, for a server the test starts next (bound and
/// released).
///
/// It is taken below the kernel's ephemeral range when there is room there: a port
/// from that range, once released, can be taken by any outgoing connection before
/// the server binds it (the suite opens many), and `wrangler dev` then exits with
/// "Address already in use". Ports are tried from a point that differs per process
/// and never handed out twice by one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    /// The ports below the ephemeral range this harness uses.
    const LOWEST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = ephemeral_port_low().unwrap_or(0);
    if ephemeral_low > LOWEST + 1_000 {
        let span = ephemeral_low - LOWEST;
        let start = std::process::id().wrapping_mul(7_919) % span;
        for _ in 0..span {
            let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            let Ok(port) = u16::try_from(LOWEST + offset) else {
                continue;
            };
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// How the stack is configured.
#[derive(Clone, Debug, Default)]
pub struct StackOptions {
    /// `LLM_BASE_URL`; `None` leaves the LLM unconfigured.
    pub llm_base_url: Option<String>,
    /// Extra Worker variables. `DEV_AUTH` is `true` unless set here (set it to
    /// `false` to boot like a deployed Worker, which refuses the development sign-in).
    pub worker_vars: Vec<(String, String)>,
}

/// SIGKILL to a process group. Group ids below 2 are refused: they would reach the
/// caller's own group or every process.
fn signal_group(group: u32) {
    if let Ok(raw) = i32::try_from(group)
        && raw > 1
    {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(raw),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A child process in its own process group, killed with the group on drop.
struct Process {
    child: Child,
    name: &'static str,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command, log: &Path) -> anyhow::Result<Process> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Process { child, name })
    }

    fn kill_group(&mut self) {
        if let Some(pid) = self.child.id() {
            // The whole group: wrangler starts workerd as a child.
            signal_group(pid);
        }
    }

    async fn stop(mut self) {
        self.kill_group();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_group();
        let _ = self.name;
    }
}

/// A running stack. Dropping it kills every process it started (runners included,
/// since they belong to the backend's process groups... see [`Stack::drop`]).
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub worker_port: u16,
    pub backend_port: u16,
    pub backend_token: String,
    options: StackOptions,
    /// Extra sandbox backend variables ([`Stack::start_with_backend`]).
    backend_vars: Vec<(String, String)>,
    worker: Option<Process>,
    backend: Option<Process>,
}

impl Stack {
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        Stack::start_with_backend(options, Vec::new()).await
    }

    /// [`Stack::start`] with extra sandbox backend variables (e.g.
    /// `SANDBOX_ISOLATED_ALLOW` for a test server on the host's loopback).
    pub async fn start_with_backend(
        options: StackOptions,
        backend_vars: Vec<(String, String)>,
    ) -> anyhow::Result<Stack> {
        Stack::start_on_port(options, backend_vars, free_port()).await
    }

    /// [`Stack::start_with_backend`] with the Worker on `worker_port`, for a backend
    /// whose settings name the Worker's address (a sandbox's way out that must allow
    /// it, `SANDBOX_ISOLATED_ALLOW`).
    pub async fn start_on_port(
        options: StackOptions,
        backend_vars: Vec<(String, String)>,
        worker_port: u16,
    ) -> anyhow::Result<Stack> {
        let dir = tempfile::Builder::new()
            .prefix("nightshift-e2e-")
            .tempdir()?;
        let mut stack = Stack {
            dir,
            worker_port,
            backend_port: free_port(),
            backend_token: format!("backend-{}", uuid::Uuid::new_v4().simple()),
            options,
            backend_vars,
            worker: None,
            backend: None,
        };
        stack.start_backend().await?;
        stack.migrate().await?;
        stack.start_worker().await?;
        Ok(stack)
    }

    /// An anonymous client.
    pub fn api(&self) -> Api {
        Api::new(&self.worker_url())
    }

    /// A client signed in as `email` through the development sign-in. On a fresh
    /// stack the first person to sign in becomes the team's admin; later people need
    /// an invite (see [`Stack::signed_in_member`]).
    pub async fn signed_in_api(&self, email: &str) -> anyhow::Result<Api> {
        let name = email.split('@').next().unwrap_or(email);
        self.api().dev_sign_in(email, name, None).await
    }

    /// Signs `email` in as a new team member, with an invite `admin` creates.
    pub async fn signed_in_member(&self, admin: &Api, email: &str) -> anyhow::Result<Api> {
        let body = serde_json::json!({"role": "member", "expires_in_hours": 1, "max_uses": 1});
        let invite: serde_json::Value = admin
            .expect(
                reqwest::Method::POST,
                "/api/admin/invites",
                Some(&body.to_string()),
                201,
            )
            .await?;
        let token = invite["token"].as_str().context("the invite has a token")?;
        let name = email.split('@').next().unwrap_or(email);
        self.api().dev_sign_in(email, name, Some(token)).await
    }

    pub fn worker_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.worker_port)
    }

    pub fn backend_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.backend_port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("backend-data")
    }

    /// The runner config of `session_id`'s sandbox, as someone who copied the file
    /// (or the runner itself) would have it; its `token` is the runner token.
    pub fn runner_config(&self, session_id: &str) -> anyhow::Result<serde_json::Value> {
        for entry in std::fs::read_dir(self.data_dir().join("sandboxes"))? {
            let path = entry?.path().join("runner").join("config.json");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let config: serde_json::Value = serde_json::from_str(&text)?;
            if config["session_id"] == session_id {
                return Ok(config);
            }
        }
        anyhow::bail!("no runner config for session {session_id}")
    }

    /// The runner token in that config.
    pub fn runner_token(&self, session_id: &str) -> anyhow::Result<String> {
        self.runner_config(session_id)?["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("the runner config has no token"))
    }

    /// The local state of the stack's `wrangler dev` (D1, R2, Durable Objects), for
    /// tools that write to it as `make db-*` does to `.wrangler/state`.
    pub fn persist_dir(&self) -> PathBuf {
        self.dir.path().join("wrangler-state")
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// The host path of a sandbox's workspace (local provider layout).
    pub fn workspace(&self, sandbox_id: &str) -> PathBuf {
        self.data_dir()
            .join("sandboxes")
            .join(sandbox_id)
            .join("workspace")
    }

    fn env_file(&self) -> anyhow::Result<PathBuf> {
        let mut lines = vec![
            format!("SANDBOX_BACKEND_URL={}", self.backend_url()),
            format!("SANDBOX_BACKEND_TOKEN={}", self.backend_token),
            format!("RUNNER_TOKEN_SECRET=e2e-secret-{}", self.worker_port),
            // Runners dial the Worker back here, whatever Host a request named.
            format!("WORKER_URL={}", self.worker_url()),
            // Keep tokens out of a developer's real keys and endpoints.
            "LLM_BASE_URL=".to_string(),
            "LLM_MODEL=".to_string(),
            "LLM_API_KEY=".to_string(),
            "ANTHROPIC_API_KEY=".to_string(),
            // Encrypts stored LLM keys (32 bytes, base64).
            "ENCRYPTION_KEY=ZTJlLXRlc3Qta2V5LW5vdC1zZWNyZXQtMzItYnl0ZXM=".to_string(),
        ];
        if !self
            .options
            .worker_vars
            .iter()
            .any(|(k, _)| k == "DEV_AUTH")
        {
            lines.push("DEV_AUTH=true".to_string());
        }
        // Each session's dev environment (code-server, Chromium, the desktop) costs
        // seconds of CPU to start: only the tests of the panels turn it on.
        if !self
            .options
            .worker_vars
            .iter()
            .any(|(k, _)| k == "WORKSPACE_PANELS")
        {
            lines.push("WORKSPACE_PANELS=false".to_string());
        }
        if let Some(url) = &self.options.llm_base_url {
            lines.retain(|l| !l.starts_with("LLM_"));
            lines.push(format!("LLM_BASE_URL={url}"));
            lines.push("LLM_MODEL=scripted-model".to_string());
            lines.push("LLM_API_KEY=scripted-key".to_string());
        }
        // The scripted LLM servers listen on loopback, which stored keys may otherwise
        // not point at.
        lines.push("LLM_BASE_URL_ALLOW=127.0.0.1".to_string());
        for (k, v) in &self.options.worker_vars {
            lines.push(format!("{k}={v}"));
        }
        let path = self.dir.path().join("worker.env");
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(path)
    }

    fn wrangler(&self) -> Command {
        // wrangler and workerd leave a `miniflare-*` directory in the temporary
        // directory on every run; inside the stack's own directory it goes with it.
        let tmp = self.dir.path().join("tmp");
        let _ = std::fs::create_dir_all(&tmp);
        let mut command = Command::new(repo_root().join("node_modules/.bin/wrangler"));
        command
            .current_dir(repo_root())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("NO_COLOR", "1")
            .env("TMPDIR", tmp);
        command
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let output = self
            .wrangler()
            .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
            .arg(self.persist_dir())
            .stdin(Stdio::null())
            .output()
            .await?;
        if !output.status.success() {
            bail!(
                "d1 migrations failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Runs SQL against the stack's local D1 (`wrangler d1 execute --local`) and
    /// answers the rows of its last statement. For tests that must see what is
    /// stored, or move a stored time into the past.
    pub async fn d1(&self, sql: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            self.wrangler()
                .args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
                .arg(self.persist_dir())
                .args(["--command", sql])
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .context("wrangler d1 execute timed out")??;
        if !output.status.success() {
            bail!(
                "d1 execute failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let results: serde_json::Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("d1 output {}", String::from_utf8_lossy(&output.stdout)))?;
        Ok(results
            .as_array()
            .and_then(|all| all.last())
            .and_then(|last| last["results"].as_array())
            .cloned()
            .unwrap_or_default())
    }

    /// Starts (or restarts) `wrangler dev` on the stack's port with its state dir.
    pub async fn start_worker(&mut self) -> anyhow::Result<()> {
        let mut command = self.wrangler();
        command
            .args([
                "dev",
                "--ip",
                "127.0.0.1",
                "--port",
                &self.worker_port.to_string(),
            ])
            .args(["--inspector-port", &free_port().to_string()])
            .args([
                "--show-interactive-dev-session=false",
                "--log-level",
                "warn",
                "--persist-to",
            ])
            .arg(self.persist_dir())
            .arg("--env-file")
            .arg(self.env_file()?);
        self.worker = Some(Process::spawn(
            "wrangler",
            command,
            &self.log_path("wrangler"),
        )?);
        let url = format!("{}/api/health", self.worker_url());
        self.wait_healthy("wrangler", &url).await
    }

    pub async fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop().await;
        }
    }

    pub async fn restart_worker(&mut self) -> anyhow::Result<()> {
        self.stop_worker().await;
        self.start_worker().await
    }

    /// Kills the sandbox backend and starts it again on the same data directory and
    /// port (what it finds there it serves again).
    pub async fn restart_backend(&mut self) -> anyhow::Result<()> {
        if let Some(backend) = self.backend.take() {
            backend.stop().await;
        }
        self.start_backend().await
    }

    async fn start_backend(&mut self) -> anyhow::Result<()> {
        let bin = bin_dir().join("sandbox-backend");
        if !bin.exists() {
            bail!("{} is missing: run `make build` first", bin.display());
        }
        let mut command = Command::new(bin);
        command
            .env(
                "SANDBOX_BACKEND_LISTEN",
                format!("127.0.0.1:{}", self.backend_port),
            )
            .env("SANDBOX_BACKEND_TOKEN", &self.backend_token)
            .env("NIGHTSHIFT_DATA_DIR", self.data_dir())
            .env("RUNNER_BIN", bin_dir().join("runner"))
            // Sandboxes outlive a killed test backend only briefly (the variable,
            // like SANDBOX_RO_BINDS, is passed through when the caller sets it).
            .env(
                "SANDBOX_ORPHAN_GRACE_SECS",
                std::env::var("SANDBOX_ORPHAN_GRACE_SECS").unwrap_or_else(|_| "30".into()),
            )
            .env("RUST_LOG", "info")
            .envs(opencode_env())
            .envs(self.backend_vars.clone());
        self.backend = Some(Process::spawn(
            "sandbox-backend",
            command,
            &self.log_path("backend"),
        )?);
        let url = format!("{}/v1/health", self.backend_url());
        self.wait_healthy("backend", &url).await
    }

    /// Waits for `url` to answer, while `name`'s process (`wrangler` or `backend`)
    /// runs: one that exits or never answers fails the start with the end of its log
    /// (the stack's directory goes with the failed start).
    async fn wait_healthy(&mut self, name: &str, url: &str) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(response) = http.get(url).timeout(Duration::from_secs(2)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            let process = match name {
                "wrangler" => self.worker.as_mut(),
                _ => self.backend.as_mut(),
            };
            let exited = process.and_then(|process| process.child.try_wait().ok().flatten());
            if let Some(status) = exited {
                bail!(
                    "{name} exited ({status}) before {url} answered; its log ends:\n{}",
                    self.log_tail(name, 40)
                );
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{url} never answered; {name}'s log ends:\n{}",
                    self.log_tail(name, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last `lines` lines of the stack's `name` log.
    fn log_tail(&self, name: &str, lines: usize) -> String {
        tail_of(&self.log_path(name), lines).unwrap_or_default()
    }

    /// Pids of the runners this stack's backend started.
    pub fn runner_pids(&self) -> Vec<u32> {
        let pattern = format!("runner --config {}", self.data_dir().display());
        let output = std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .output();
        match output {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Kills every runner of this stack with SIGKILL, as a crash would.
    pub fn kill_runners(&self) -> usize {
        self.signal_runners(nix::sys::signal::Signal::SIGKILL)
    }

    /// Sends `signal` to every runner process of the stack; answers how many.
    pub fn signal_runners(&self, signal: nix::sys::signal::Signal) -> usize {
        let pids = self.runner_pids();
        for pid in &pids {
            if let Ok(raw) = i32::try_from(*pid)
                && raw > 1
            {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), signal);
            }
        }
        pids.len()
    }

    /// The resident memory (`VmRSS`, bytes) of the `workerd` processes serving this
    /// stack's Worker and Durable Objects (children of its `wrangler dev`), summed;
    /// `None` when none is found.
    pub fn workerd_rss_bytes(&self) -> Option<u64> {
        let group = self.worker.as_ref()?.child.id()?;
        let mut total = None;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let comm = head.split_once('(').map(|(_, comm)| comm).unwrap_or("");
            let pgrp = rest
                .split_whitespace()
                .nth(2)
                .and_then(|g| g.parse::<u32>().ok());
            if pgrp != Some(group) || !comm.starts_with("workerd") {
                continue;
            }
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            let rss_kb = status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                });
            if let Some(kb) = rss_kb {
                *total.get_or_insert(0) += kb * 1024;
            }
        }
        total
    }

    /// Prints the logs; call when a test fails to see why.
    pub fn dump_logs(&self) {
        let mut logs = vec![
            ("wrangler".to_string(), self.log_path("wrangler")),
            ("backend".to_string(), self.log_path("backend")),
        ];
        // Each sandbox's runner logs beside its record.
        if let Ok(sandboxes) = std::fs::read_dir(self.data_dir().join("sandboxes")) {
            for sandbox in sandboxes.flatten() {
                let name = format!("runner {}", sandbox.file_name().to_string_lossy());
                logs.push((name, sandbox.path().join("runner").join("runner.log")));
            }
        }
        for (name, path) in logs {
            if let Some(tail) = tail_of(&path, 80) {
                eprintln!("----- {name} log (last lines) -----");
                eprintln!("{tail}");
            }
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.worker.take();
        if let Some(backend) = self.backend.take() {
            drop(backend);
        }
        // Runners run in their own process groups so they survive a backend restart;
        // a finished test must not leave them behind.
        self.kill_runners();
    }
}

/// Runs `test` against `stack`; when it fails, prints every log of the stack first,
/// then fails the test with the error.
pub async fn with_logs<F: std::future::Future<Output = anyhow::Result<()>>>(
    stack: &Stack,
    test: F,
) {
    if let Err(error) = test.await {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

/// A stack whose agents talk to a scripted LLM (see [`crate::scripted_llm`]).
pub async fn stack_with_llm() -> anyhow::Result<(Stack, crate::scripted_llm::ScriptedLlm)> {
    let llm = crate::scripted_llm::ScriptedLlm::start().await?;
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        ..StackOptions::default()
    })
    .await?;
    Ok((stack, llm))
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(path);
            }
        }
    }
    found
}

/// The last `lines` lines of the file at `path`; `None` when it cannot be read.
fn tail_of(path: &Path, lines: usize) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    Some(tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::{ephemeral_port_low, free_port};

    #[test]
    fn free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let low = ephemeral_port_low().unwrap_or(0);
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        for port in ports {
            if low > 11_000 {
                assert!(
                    u32::from(port) < low,
                    "{port} is in the ephemeral range from {low}"
                );
            }
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
        }
    }
}
