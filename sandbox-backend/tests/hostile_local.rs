//! The local provider against a hostile sandbox, for real: the `sandbox-backend`
//! binary with bubblewrap sandboxes on this machine, and commands that attack the
//! host the way untrusted code would. Each test names the defence it proves; each
//! fails when that defence is taken away.
//!
//! The budget is small here (`SANDBOX_*` variables below) so that attacks hit it
//! quickly; every attack runs under a timeout, and a neighbouring sandbox and the
//! backend's `/v1/health` must keep answering while it runs.

mod conformance;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use conformance::Client;
use futures::FutureExt;
use nightshift_protocol::sandbox::ExecResult;
use serde_json::json;

const TOKEN: &str = "hostile-token";
/// The host user sandboxes run as under a root backend (the default).
const HOST_UID: u32 = 100_000;
/// How long a neighbour's `echo ok` may take while another sandbox attacks.
const NEIGHBOUR_BOUND: Duration = Duration::from_secs(5);

struct Backend {
    data_dir: PathBuf,
    port: u16,
    child: std::process::Child,
    _temp: tempfile::TempDir,
}

impl Backend {
    async fn start() -> Backend {
        let temp = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = temp.path().join("data");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox-backend"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SANDBOX_BACKEND_TOKEN", TOKEN)
            .env("SANDBOX_BACKEND_LISTEN", format!("127.0.0.1:{port}"))
            .env("NIGHTSHIFT_DATA_DIR", &data_dir)
            .env("SANDBOX_WARM_POOL", "0")
            .env("SANDBOX_PIDS_MAX", "200")
            .env("SANDBOX_MEMORY_MAX", "256M")
            .env("SANDBOX_CPU_MAX", "0.5")
            .env("SANDBOX_TMP_MAX", "16M")
            .env("SANDBOX_DISK_MAX", "48M")
            .env("SANDBOX_FILE_MAX", "24M")
            .env("SANDBOX_DISK_CHECK_MS", "200")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let backend = Backend {
            data_dir,
            port,
            child,
            _temp: temp,
        };
        let url = format!("http://127.0.0.1:{port}/v1/health");
        for _ in 0..200 {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return backend;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the backend did not come up");
    }

    fn client(&self) -> Client {
        Client::new(format!("http://127.0.0.1:{}", self.port), TOKEN.into())
    }

    fn workspace(&self, id: &str) -> PathBuf {
        self.data_dir.join("sandboxes").join(id).join("workspace")
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

async fn sh(client: &Client, id: &str, script: &str, timeout_ms: u64) -> ExecResult {
    client
        .exec_result(
            id,
            json!({"command": "bash", "args": ["-c", script], "timeout_ms": timeout_ms}),
        )
        .await
        .unwrap()
}

/// While `attack` runs: the neighbour sandbox runs `echo ok` and `/v1/health`
/// answers, again and again, each within [`NEIGHBOUR_BOUND`]. Returns the attack's
/// result and how many neighbour checks passed.
async fn under_attack<F: std::future::Future<Output = ExecResult>>(
    client: &Client,
    neighbour: &str,
    attack: F,
) -> (ExecResult, usize) {
    let done = std::sync::atomic::AtomicBool::new(false);
    let watching = async {
        let mut passed = 0;
        tokio::time::sleep(Duration::from_millis(200)).await;
        // At least once, however quickly the attack is contained.
        loop {
            let started = Instant::now();
            let echoed = tokio::time::timeout(NEIGHBOUR_BOUND, client.sh(neighbour, "echo ok"))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {NEIGHBOUR_BOUND:?}")))
                .unwrap_or_else(|error| panic!("the neighbour failed during the attack: {error}"));
            assert_eq!(echoed.stdout, "ok\n", "the neighbour suffered: {echoed:?}");
            let health =
                tokio::time::timeout(NEIGHBOUR_BOUND, client.call("GET", "/v1/health", None))
                    .await
                    .expect("/v1/health answers during the attack");
            assert_eq!(health.status, 200);
            assert!(
                started.elapsed() < NEIGHBOUR_BOUND,
                "the neighbour took {:?}",
                started.elapsed()
            );
            passed += 1;
            if done.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        passed
    };
    let attacking = async {
        let result = attack.await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        result
    };
    tokio::join!(attacking, watching)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_never_runs_as_host_root_and_shares_its_files_with_the_host_user() {
    let backend = Backend::start().await;
    let client = backend.client();
    let sandbox = client.create(json!({})).await.unwrap();
    // A process with a name no other has, left running to be looked at from the host.
    let marker = format!("{}", 40_000 + std::process::id() % 9_999);
    let seen = sh(
        &client,
        &sandbox.id,
        "id -u; grep CapEff /proc/self/status; touch /workspace/made-inside",
        10_000,
    )
    .await;
    let lines: Vec<&str> = seen.stdout.lines().collect();
    assert_eq!(lines[0], "1000", "{seen:?}");
    assert_eq!(lines[1].split_whitespace().nth(1), Some("0000000000000000"));
    // From the host, while it runs: the sandbox's process runs as the unprivileged
    // host user (real, effective, saved and file-system uids), with no capabilities.
    let argument = format!("{marker}.5");
    let script = format!("exec sleep {argument}");
    let sleeping = sh(&client, &sandbox.id, &script, 60_000);
    let looking = async {
        for _ in 0..100 {
            if let Some(status) = host_status_of(&argument) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the sandbox's process is not visible from the host");
    };
    let status = tokio::select! {
        status = looking => status,
        _ = sleeping => panic!("the sandbox's sleep ended early"),
    };
    let uids: Vec<&str> = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(uids.iter().all(|uid| *uid != "0"), "host root: {status}");
    let cap_eff = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(cap_eff, "0000000000000000");
    if running_as_root() {
        let host_uid = HOST_UID.to_string();
        assert_eq!(uids, [host_uid.as_str(); 4]);
        let owner = std::fs::metadata(backend.workspace(&sandbox.id).join("made-inside"))
            .unwrap()
            .uid();
        assert_eq!(owner, HOST_UID);
    }
    // A file written through the API belongs to the sandbox user too: the sandbox can
    // change it, and the backend wrote it with that user's rights.
    let written = client
        .call_raw(
            "PUT",
            &format!("/v1/sandboxes/{}/files?path=from-api.txt", sandbox.id),
            Some(b"api\n".to_vec()),
        )
        .await;
    assert!(written.status < 300, "{}", written.text());
    let appended = sh(
        &client,
        &sandbox.id,
        "echo sandbox >> /workspace/from-api.txt && cat /workspace/from-api.txt",
        10_000,
    )
    .await;
    assert_eq!(appended.stdout, "api\nsandbox\n", "{appended:?}");
    if running_as_root() {
        let owner = std::fs::metadata(backend.workspace(&sandbox.id).join("from-api.txt"))
            .unwrap()
            .uid();
        assert_eq!(owner, HOST_UID);
    }
    client.destroy(&sandbox.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_kernel_attack_surface_are_refused_while_normal_work_runs() {
    let backend = Backend::start().await;
    let client = backend.client();
    let sandbox = client.create(json!({})).await.unwrap();
    for attempt in ["unshare -U -r true", "unshare -m true", "unshare -n true"] {
        let result = sh(&client, &sandbox.id, attempt, 10_000).await;
        assert_ne!(result.exit.code, 0, "{attempt} worked: {result:?}");
    }
    // Direct system calls: each must fail with EPERM (1).
    let probe = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, number, args in [("keyctl", 250, (0, 0, 0)), ("perf_event_open", 298, (0, 0, -1)),
                           ("bpf", 321, (0, 0, 0)), ("io_uring_setup", 425, (1, 0, 0)),
                           ("userfaultfd", 323, (0, 0, 0)), ("ptrace", 101, (0, 0, 0)),
                           ("personality", 135, (0x0040000, 0, 0)), ("setns", 308, (0, 0, 0))]:
    result = libc.syscall(number, *args)
    print(name, result, ctypes.get_errno())
"#;
    let result = client
        .exec_result(
            &sandbox.id,
            json!({"command": "/usr/bin/python3", "args": ["-c", probe], "timeout_ms": 20_000}),
        )
        .await
        .unwrap();
    assert_eq!(result.exit.code, 0, "{result:?}");
    for line in result.stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1..], ["-1", "1"], "not refused with EPERM: {line}");
    }
    assert_eq!(result.stdout.lines().count(), 8);
    // Ordinary work still works: a shell, a program compiled in the sandbox, git,
    // python, node's npm, threads.
    let work = sh(
        &client,
        &sandbox.id,
        "set -e; cd /workspace; printf 'int main(void){return 7;}' > t.c; \
         if command -v cc >/dev/null; then cc -o t t.c; ./t || echo compiled=$?; fi; \
         git init -q r && git -C r -c user.email=a@b -c user.name=a commit -q --allow-empty -m x && echo git=ok; \
         /usr/bin/python3 -c 'import threading; t=threading.Thread(target=print, args=(\"py=ok\",)); t.start(); t.join()'; \
         if command -v npm >/dev/null; then npm --version >/dev/null && echo npm=ok; fi",
        60_000,
    )
    .await;
    assert_eq!(work.exit.code, 0, "{work:?}");
    assert!(work.stdout.contains("git=ok"), "{work:?}");
    assert!(work.stdout.contains("py=ok"), "{work:?}");
    if std::path::Path::new("/usr/bin/cc").exists() {
        assert!(work.stdout.contains("compiled=7"), "{work:?}");
    }
    if std::path::Path::new("/usr/bin/npm").exists() {
        assert!(work.stdout.contains("npm=ok"), "{work:?}");
    }
    client.destroy(&sandbox.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_reports_its_enforced_limits() {
    let backend = Backend::start().await;
    let providers = backend.client().providers().await;
    let local = providers
        .providers
        .iter()
        .find(|info| info.name == "local")
        .unwrap();
    if running_as_root() {
        assert_eq!(
            local.capabilities.enforced_limits,
            ["pids", "memory", "cpu", "tmp", "disk"]
        );
        assert!(local.capabilities.missing_limits.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_hits_the_pids_limit_while_a_neighbour_answers() {
    let backend = Backend::start().await;
    let client = backend.client();
    let bomb = client.create(json!({})).await.unwrap();
    let neighbour = client.create(json!({})).await.unwrap();
    let (bombed, passed) = under_attack(
        &client,
        &neighbour.id,
        sh(&client, &bomb.id, "b() { b | b & }; b; sleep 6", 6_000),
    )
    .await;
    assert!(passed >= 3, "only {passed} neighbour checks ran");
    assert_ne!(bombed.exit.code, 0, "{:?}", bombed.exit);
    if running_as_root() {
        assert!(
            bombed
                .stderr
                .contains("retry: Resource temporarily unavailable")
                || bombed.stderr.contains("fork"),
            "the bomb did not hit a process limit: {}",
            &bombed.stderr[..bombed.stderr.len().min(500)]
        );
    }
    let after = sh(&client, &bomb.id, "echo recovered", 20_000).await;
    assert_eq!(after.stdout, "recovered\n", "{after:?}");
    client.destroy(&bomb.id).await.unwrap();
    client.destroy(&neighbour.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_killed_at_the_memory_limit_and_the_backend_lives() {
    let backend = Backend::start().await;
    let client = backend.client();
    let hog = client.create(json!({})).await.unwrap();
    let neighbour = client.create(json!({})).await.unwrap();
    let started = Instant::now();
    let (hogged, passed) = under_attack(
        &client,
        &neighbour.id,
        client
            .exec_result(
                &hog.id,
                json!({"command": "/usr/bin/python3", "args": ["-c",
                    "a = []\nwhile True: a.append(bytearray(16 << 20)); print(len(a) * 16, flush=True)"],
                    "timeout_ms": 30_000}),
            )
            .map(Result::unwrap),
    )
    .await;
    assert!(passed >= 1, "no neighbour check ran");
    assert_ne!(hogged.exit.code, 0, "{:?}", hogged.exit);
    assert!(!hogged.exit.timed_out, "the hog ran until its timeout");
    assert!(started.elapsed() < Duration::from_secs(30));
    if running_as_root() {
        // The last size it printed stays under the 256 MiB budget.
        let reached: u64 = hogged
            .stdout
            .lines()
            .last()
            .and_then(|line| line.trim().parse().ok())
            .unwrap_or(0);
        assert!(reached <= 256, "the hog reached {reached} MiB");
    }
    let health = client.call("GET", "/v1/health", None).await;
    assert_eq!(health.status, 200);
    client.destroy(&hog.id).await.unwrap();
    client.destroy(&neighbour.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_filler_is_stopped_at_the_budget_and_told_so() {
    let backend = Backend::start().await;
    let client = backend.client();
    let filler = client.create(json!({})).await.unwrap();
    let neighbour = client.create(json!({})).await.unwrap();
    // Many files of 1 MiB: each is under the per-file cap, together they pass the
    // 48 MiB budget.
    let (filled, passed) = under_attack(
        &client,
        &neighbour.id,
        sh(
            &client,
            &filler.id,
            "i=0; while [ $i -lt 400 ]; do head -c 1048576 /dev/zero > /workspace/f$i || exit 1; i=$((i+1)); done; echo filled",
            30_000,
        ),
    )
    .await;
    assert!(passed >= 1, "no neighbour check ran");
    assert!(!filled.stdout.contains("filled"), "{filled:?}");
    assert!(
        filled.stderr.contains("disk budget exceeded"),
        "{:?}",
        filled.stderr
    );
    let used = dir_bytes(&backend.workspace(&filler.id));
    assert!(used < 160 << 20, "the filler wrote {used} bytes");
    // New commands are refused, saying why...
    let refused = client
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/exec?stream=false", filler.id),
            Some(json!({"command": "echo", "args": ["hi"]})),
        )
        .await;
    assert!(
        refused.status >= 400 && refused.text().contains("disk budget exceeded"),
        "{} {}",
        refused.status,
        refused.text()
    );
    // ...except rm, after which the sandbox works again.
    let removed = client
        .exec_result(
            &filler.id,
            json!({"command": "rm", "args": ["-rf", "/workspace"], "timeout_ms": 20_000}),
        )
        .await
        .unwrap();
    let _ = removed;
    let again = sh(&client, &filler.id, "echo back", 10_000).await;
    assert_eq!(again.stdout, "back\n", "{again:?}");
    // One file past the per-file cap is stopped by the kernel at once.
    let big = sh(
        &client,
        &filler.id,
        "head -c 40000000 /dev/zero > /workspace/big; echo status=$?",
        20_000,
    )
    .await;
    assert!(!big.stdout.contains("status=0"), "{big:?}");
    let size = std::fs::metadata(backend.workspace(&filler.id).join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(size <= 24 << 20, "one file grew to {size} bytes");
    // And /tmp is a small tmpfs (two files, each under the per-file cap).
    let tmp = sh(
        &client,
        &filler.id,
        "head -c 12000000 /dev/zero > /tmp/x && head -c 12000000 /dev/zero > /tmp/y; echo status=$?",
        20_000,
    )
    .await;
    assert!(!tmp.stdout.contains("status=0"), "{tmp:?}");
    client.destroy(&filler.id).await.unwrap();
    client.destroy(&neighbour.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_burner_is_throttled_and_does_not_starve_a_neighbour() {
    let backend = Backend::start().await;
    let client = backend.client();
    let burner = client.create(json!({})).await.unwrap();
    let neighbour = client.create(json!({})).await.unwrap();
    // Four spinning processes for 6 s, then the CPU time they got: with a quota of
    // half a core, far less than the 2 cores x 6 s the host could give.
    let (burned, passed) = under_attack(
        &client,
        &neighbour.id,
        sh(
            &client,
            &burner.id,
            "for i in 1 2 3 4; do (while :; do :; done) & done; sleep 6; \
             for p in $(jobs -p); do awk '{print $14 + $15}' /proc/$p/stat; done \
               | awk '{s += $1} END {print s / 100}'; kill $(jobs -p)",
            20_000,
        ),
    )
    .await;
    assert!(passed >= 3, "only {passed} neighbour checks ran");
    if running_as_root() {
        let seconds: f64 = burned.stdout.trim().parse().unwrap_or(f64::MAX);
        assert!(
            seconds < 6.0,
            "the burner got {seconds} s of CPU in 6 s: {burned:?}"
        );
    }
    client.destroy(&burner.id).await.unwrap();
    client.destroy(&neighbour.id).await.unwrap();
}

/// `/proc/<pid>/status` of the host process whose command line ends in `arg`.
fn host_status_of(arg: &str) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let words: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
        if words.contains(&arg.as_bytes()) && words[0] == b"sleep" {
            return std::fs::read_to_string(entry.path().join("status")).ok();
        }
    }
    None
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.metadata().ok())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}
