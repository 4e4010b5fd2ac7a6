//! `gateway-bench` (run by `make bench`): what the sandbox's gateway costs, on the
//! real `nightshift-gateway` binary and the real services it supervises. Prints a
//! Markdown table for BENCHMARKS.md.
//!
//! - start-up: from starting the gateway to each service reporting `ready` in
//!   `/status` (display, window manager, both VNC servers, Chromium, code-server),
//!   the gateway's own share of "session created -> panel ready";
//! - added latency: `GET /healthz` of code-server straight to its loopback port
//!   versus through the gateway's `/vscode/healthz` (token check, proxy), p50 and p99
//!   of `BENCH_GATEWAY_REQUESTS` (default 500) sequential requests on one keep-alive
//!   connection each, and the difference of the p50s;
//! - memory: the resident set (RSS and PSS) of the gateway and every process under
//!   it once all services are ready and idle, per service and in total: what one
//!   sandbox's dev environment holds.
//!
//! Services that are not installed are reported as such (run `make setup`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nightshift_e2e::stack::{binary, free_port};
use nightshift_protocol::gateway::{GatewayStatus, ServiceState};
use nightshift_session::gateway_token::{GatewayClaims, GatewayKey, GatewayRole};

const SESSION: &str = "bench-session";
/// How long every service gets to become ready.
const READY_WITHIN: Duration = Duration::from_secs(120);

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

/// The gateway under test, stopped (with its services) on drop.
struct Gateway {
    child: Child,
    base: String,
    token: String,
    vscode_port: u16,
    _home: tempfile::TempDir,
}

impl Drop for Gateway {
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

impl Gateway {
    fn start() -> anyhow::Result<Gateway> {
        let home = tempfile::tempdir()?;
        let workspace = home.path().join("workspace");
        std::fs::create_dir_all(&workspace)?;
        let key_hex: String = {
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
                .context("reading /dev/urandom")?;
            hex::encode(bytes)
        };
        let key_file = home.path().join("gateway.key");
        std::fs::write(&key_file, format!("{key_hex}\n"))?;
        let port = free_port();
        let vscode_port = free_port();
        let display = 90 + (std::process::id() % 100) as u16;
        let child = Command::new(binary("nightshift-gateway"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--session", SESSION])
            .arg("--key-file")
            .arg(&key_file)
            .arg("--workspace")
            .arg(&workspace)
            .args(["--display", &display.to_string()])
            .args(["--vnc-port", &free_port().to_string()])
            .args(["--vnc-view-port", &free_port().to_string()])
            .args(["--devtools-port", &free_port().to_string()])
            .args(["--vscode-port", &vscode_port.to_string()])
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_DATA_HOME", home.path().join(".local/share"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nightshift-gateway (make build-native-release)")?;
        let key = GatewayKey::from_hex(&key_hex)?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64;
        let token = key.mint(&GatewayClaims {
            session_id: SESSION.into(),
            user_id: "bench".into(),
            role: GatewayRole::Owner,
            expires_at_ms: now_ms + 3_600_000,
        })?;
        Ok(Gateway {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token,
            vscode_port,
            _home: home,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// From start to each service's first `ready` (or its reason when it is not).
async fn start_up(gateway: &Gateway, started: Instant) -> anyhow::Result<BTreeMap<String, String>> {
    let http = reqwest::Client::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    while started.elapsed() < READY_WITHIN {
        if let Ok(response) = http
            .get(format!("{}/status", gateway.base))
            .bearer_auth(&gateway.token)
            .send()
            .await
            && let Ok(status) = response.json::<GatewayStatus>().await
        {
            for service in &status.services {
                if seen.contains_key(&service.name) {
                    continue;
                }
                match service.state {
                    ServiceState::Ready => {
                        seen.insert(service.name.clone(), ms(started.elapsed()));
                    }
                    ServiceState::Unavailable => {
                        let reason = service.reason.as_deref().unwrap_or("unavailable");
                        seen.insert(service.name.clone(), format!("unavailable: {reason}"));
                    }
                    _ => {}
                }
            }
            if !status.services.is_empty() && seen.len() == status.services.len() {
                return Ok(seen);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("not every service settled within {READY_WITHIN:?}: {seen:?}")
}

/// p50 and p99 of `count` sequential GETs of `url` on one keep-alive client.
async fn latency(
    url: &str,
    token: Option<&str>,
    count: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()?;
    let get = || {
        let mut request = http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for _ in 0..20 {
        get().await?.bytes().await?;
    }
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let response = get().await?;
        if !response.status().is_success() {
            bail!("{url} answered {}", response.status());
        }
        response.bytes().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((percentile(&times, 50.0), percentile(&times, 99.0)))
}

/// Every process under `root` (itself included).
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces, so read after ')'.
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                && let Some((_, after)) = stat.rsplit_once(')')
                && let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok())
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    tree
}

/// A process's RSS and PSS in KiB (`smaps_rollup`), and its command's name.
fn memory_of(pid: u32) -> Option<(String, u64, u64)> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |key: &str| {
        rollup
            .lines()
            .find(|line| line.starts_with(key))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some((name.trim().to_string(), field("Rss:"), field("Pss:")))
}

/// A process's family for the table: the service it belongs to.
fn family(name: &str) -> &'static str {
    match name {
        n if n.starts_with("nightshift-gate") => "gateway",
        n if n.starts_with("Xvfb") => "Xvfb",
        n if n.starts_with("fluxbox") => "fluxbox",
        n if n.starts_with("x11vnc") => "x11vnc (both)",
        n if n.starts_with("chrom") => "Chromium",
        n if n.starts_with("node") || n.starts_with("code-server") => "code-server",
        _ => "other",
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !Path::new(&binary("nightshift-gateway")).is_file() {
        bail!(
            "{} is missing: run `make build-native-release` and set NIGHTSHIFT_BIN_DIR",
            binary("nightshift-gateway").display()
        );
    }
    let requests = setting("BENCH_GATEWAY_REQUESTS", 500);
    let started = Instant::now();
    let gateway = Gateway::start()?;
    let ready = start_up(&gateway, started).await?;

    println!("## The sandbox's gateway\n");
    println!("| service | start -> ready |");
    println!("| --- | --- |");
    for (name, at) in &ready {
        println!("| {name} | {at} |");
    }

    if ready
        .get("vscode")
        .is_some_and(|at| !at.starts_with("unavailable"))
    {
        let direct = format!("http://127.0.0.1:{}/healthz", gateway.vscode_port);
        let through = format!("{}/vscode/healthz", gateway.base);
        let (direct_p50, direct_p99) = latency(&direct, None, requests).await?;
        let (through_p50, through_p99) = latency(&through, Some(&gateway.token), requests).await?;
        println!("\n| `GET /healthz` of code-server ({requests} each) | p50 | p99 |");
        println!("| --- | --- | --- |");
        println!(
            "| straight to its port | {} | {} |",
            ms(direct_p50),
            ms(direct_p99)
        );
        println!(
            "| through the gateway | {} | {} |",
            ms(through_p50),
            ms(through_p99)
        );
        println!(
            "| added by the gateway | {} | |",
            ms(through_p50.saturating_sub(direct_p50))
        );
    } else {
        println!("\n(code-server is not ready: no proxy latency; run `make setup`)");
    }

    // Idle, as a sandbox nobody is looking at.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut by_family: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
    for pid in process_tree(gateway.pid()) {
        if let Some((name, rss, pss)) = memory_of(pid) {
            let entry = by_family.entry(family(&name)).or_default();
            entry.0 += rss;
            entry.1 += pss;
            entry.2 += 1;
        }
    }
    let (rss, pss, processes) = by_family
        .values()
        .fold((0, 0, 0), |acc, v| (acc.0 + v.0, acc.1 + v.1, acc.2 + v.2));
    println!("\n| memory, all services idle | processes | RSS | PSS |");
    println!("| --- | --- | --- | --- |");
    for (family, (rss, pss, count)) in &by_family {
        println!("| {family} | {count} | {} | {} |", mib(*rss), mib(*pss));
    }
    println!(
        "| **one sandbox's dev environment** | {processes} | {} | {} |",
        mib(rss),
        mib(pss)
    );
    Ok(())
}
