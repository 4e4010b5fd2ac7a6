//! `sandbox-bench` (run by `make bench`): the local provider's speed, through the
//! real `sandbox-backend` binary next to this one on a TCP port. Prints a Markdown
//! table for BENCHMARKS.md.
//!
//! - create-to-first-output: from sending `POST /v1/sandboxes` to the first byte of
//!   the first command's streamed output (`sh -c 'echo hi'`), p50 and p99, with
//!   creations spaced `BENCH_SANDBOX_PAUSE_MS` apart (the warm pool refills between);
//! - exec overhead: `sh -c 'echo hi'` through `POST /v1/sandboxes/{id}/exec` versus
//!   the same command started directly on the host, p50 of each and the difference;
//! - density: sandboxes created, each with a background `sleep`, until
//!   `BENCH_SANDBOXES` (default 220) or the first failure; then a command must still
//!   run in the first and the last one;
//! - a neighbour under attack: `sh -c 'echo hi'` through the exec API in one sandbox,
//!   p50 and p99, while a fork bomb, a memory hog and a CPU burner each run in a
//!   sandbox of their own (their budgets hold them), beside the same figure at rest.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

const TOKEN: &str = "bench-token";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

struct Backend {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait();
    }
}

impl Backend {
    async fn start() -> anyhow::Result<Backend> {
        let bin: PathBuf = std::env::current_exe()?.with_file_name("sandbox-backend");
        ensure!(
            bin.is_file(),
            "{} is missing: build it first",
            bin.display()
        );
        let data = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SANDBOX_BACKEND_TOKEN", TOKEN)
            .env("SANDBOX_BACKEND_LISTEN", format!("127.0.0.1:{port}"))
            .env("NIGHTSHIFT_DATA_DIR", data.path().join("data"))
            .env("SANDBOX_ORPHAN_GRACE_SECS", "30")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let backend = Backend {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(60))
                .build()?,
            _data: data,
        };
        for _ in 0..200 {
            if backend
                .http
                .get(format!("{}/v1/health", backend.base))
                .send()
                .await
                .is_ok()
            {
                return Ok(backend);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the backend did not come up")
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "POST {path}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }

    async fn create(&self) -> anyhow::Result<String> {
        let sandbox = self.post("/v1/sandboxes", json!({})).await?;
        Ok(sandbox["id"].as_str().context("no id")?.to_string())
    }

    async fn destroy(&self, id: &str) {
        let _ = self
            .http
            .delete(format!("{}/v1/sandboxes/{id}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await;
    }

    /// Streams `sh -c 'echo hi'` and returns when its first byte arrives.
    async fn first_output(&self, id: &str) -> anyhow::Result<()> {
        let mut response = self
            .http
            .post(format!("{}/v1/sandboxes/{id}/exec", self.base))
            .bearer_auth(TOKEN)
            .json(&json!({"command": "sh", "args": ["-c", "echo hi"]}))
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "exec: {}",
            response.status()
        );
        let chunk = response.chunk().await?.context("no output")?;
        ensure!(
            String::from_utf8_lossy(&chunk).contains("hi"),
            "unexpected first output {chunk:?}"
        );
        while response.chunk().await?.is_some() {}
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds = setting("BENCH_SANDBOX_ROUNDS", 100);
    let density = setting("BENCH_SANDBOXES", 220);
    let backend = Backend::start().await?;

    // Warm up (page cache, first-time allocations).
    for _ in 0..5 {
        let id = backend.create().await?;
        backend.first_output(&id).await?;
        backend.destroy(&id).await;
    }

    // Creations are spaced out (`BENCH_SANDBOX_PAUSE_MS`, default 200) so that each
    // finds the warm pool refilled, as a creation on a machine at rest does.
    let pause = Duration::from_millis(setting("BENCH_SANDBOX_PAUSE_MS", 200) as u64);
    let mut first_output = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        tokio::time::sleep(pause).await;
        let started = Instant::now();
        let id = backend.create().await?;
        backend.first_output(&id).await?;
        first_output.push(started.elapsed());
        backend.destroy(&id).await;
    }
    first_output.sort();

    let mut bare = Vec::with_capacity(rounds * 2);
    for _ in 0..rounds * 2 {
        let started = Instant::now();
        let output = tokio::process::Command::new("sh")
            .args(["-c", "echo hi"])
            .output()
            .await?;
        ensure!(output.stdout == b"hi\n");
        bare.push(started.elapsed());
    }
    bare.sort();
    let id = backend.create().await?;
    let mut sandboxed = Vec::with_capacity(rounds * 2);
    for _ in 0..rounds * 2 {
        let started = Instant::now();
        let result = backend
            .post(
                &format!("/v1/sandboxes/{id}/exec?stream=false"),
                json!({"command": "sh", "args": ["-c", "echo hi"]}),
            )
            .await?;
        ensure!(result["stdout"] == "hi\n", "{result}");
        sandboxed.push(started.elapsed());
    }
    sandboxed.sort();
    backend.destroy(&id).await;

    // A neighbour under attack.
    let victim = backend.create().await?;
    let attacks = [
        // A fork bomb: stopped by the sandbox's process limit.
        "f() { f | f & }; f",
        // A memory hog, started again whenever the memory limit kills it.
        "while true; do python3 -c 'a = []\nwhile True: a.append(bytearray(64 << 20))'; done",
        // A CPU burner on more cores than the machine has.
        "for i in 1 2 3 4 5 6 7 8; do (while :; do :; done) & done; wait",
    ];
    let mut attackers = Vec::new();
    for attack in attacks {
        let id = backend.create().await?;
        backend
            .post(
                &format!("/v1/sandboxes/{id}/processes"),
                json!({"command": "bash", "args": ["-c", attack]}),
            )
            .await?;
        attackers.push(id);
    }
    // Let the attacks reach their limits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut under_attack = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let result = backend
            .post(
                &format!("/v1/sandboxes/{victim}/exec?stream=false"),
                json!({"command": "sh", "args": ["-c", "echo hi"]}),
            )
            .await?;
        ensure!(result["stdout"] == "hi\n", "{result}");
        under_attack.push(started.elapsed());
    }
    under_attack.sort();
    for id in attackers.iter().chain([&victim]) {
        backend.destroy(id).await;
    }

    let mut held = Vec::new();
    let started = Instant::now();
    let mut failure = None;
    for _ in 0..density {
        let attempt = async {
            let id = backend.create().await?;
            backend
                .post(
                    &format!("/v1/sandboxes/{id}/processes"),
                    json!({"command": "sleep", "args": ["3600"]}),
                )
                .await?;
            Ok::<String, anyhow::Error>(id)
        };
        match attempt.await {
            Ok(id) => held.push(id),
            Err(error) => {
                failure = Some(error.to_string());
                break;
            }
        }
    }
    let fill_time = started.elapsed();
    let mut still_running = true;
    for id in [held.first(), held.last()].into_iter().flatten() {
        still_running &= backend.first_output(id).await.is_ok();
    }
    let rss_kib = sandbox_rss_kib();
    for id in &held {
        backend.destroy(id).await;
    }

    println!("| figure | value | target |");
    println!("| --- | --- | --- |");
    println!(
        "| create -> first output byte, p50 ({rounds} sandboxes) | {} | under 25 ms: {} |",
        ms(percentile(&first_output, 50.0)),
        if percentile(&first_output, 50.0) < Duration::from_millis(25) {
            "met"
        } else {
            "**missed**"
        }
    );
    println!(
        "| create -> first output byte, p99 | {} | |",
        ms(percentile(&first_output, 99.0))
    );
    let overhead = percentile(&sandboxed, 50.0).saturating_sub(percentile(&bare, 50.0));
    println!(
        "| `sh -c 'echo hi'` on the host, p50 | {} | |",
        ms(percentile(&bare, 50.0))
    );
    println!(
        "| `sh -c 'echo hi'` through the exec API, p50 | {} | |",
        ms(percentile(&sandboxed, 50.0))
    );
    println!(
        "| exec overhead (difference of the p50s) | {} | under 5 ms: {} |",
        ms(overhead),
        if overhead < Duration::from_millis(5) {
            "met"
        } else {
            "**missed**"
        }
    );
    println!(
        "| the same exec in a sandbox beside a fork bomb, a memory hog and a CPU burner, p50 | {} | |",
        ms(percentile(&under_attack, 50.0))
    );
    println!(
        "| the same, p99 | {} | |",
        ms(percentile(&under_attack, 99.0))
    );
    println!(
        "| sandboxes held at once, each with a sleeping process | {}{} | at least 200: {} |",
        held.len(),
        failure
            .map(|error| format!(" (stopped: {error})"))
            .unwrap_or_default(),
        if held.len() >= 200 && still_running {
            "met"
        } else {
            "**missed**"
        }
    );
    println!(
        "| time to create them all | {:.1} s | |",
        fill_time.as_secs_f64()
    );
    println!(
        "| commands still run in the first and last of them | {} | |",
        if still_running { "yes" } else { "no" }
    );
    if let Some(rss) = rss_kib {
        println!(
            "| memory of all sandbox processes (bubblewrap, agents, sleeps), RSS | {} MiB | |",
            rss / 1024
        );
    }
    Ok(())
}

/// The summed RSS of every bubblewrap, agent and `sleep` process on the host.
fn sandbox_rss_kib() -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let name = status
            .lines()
            .find_map(|line| line.strip_prefix("Name:"))
            .map(str::trim)
            .unwrap_or_default();
        if !matches!(name, "bwrap" | "agent" | "sleep") {
            continue;
        }
        if let Some(kib) = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
        {
            total += kib;
        }
    }
    Some(total)
}
