//! The sandbox image's entrypoint (`docker/entrypoint.sh`), run on this host with
//! the gateway binary built here: the image itself is not built in tests (no base
//! image can be pulled), but what its entrypoint starts is exactly this program.

#[path = "support/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{SESSION, free_port, now_ms};
use nightshift_session::gateway_token::{GatewayClaims, GatewayKey, GatewayRole};

fn entrypoint() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/entrypoint.sh")
}

/// `PATH` with the directory of the gateway binary first, as in the image.
fn path_with_gateway() -> String {
    let binary = Path::new(env!("CARGO_BIN_EXE_nightshift-gateway"));
    format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn without_a_session_and_key_the_entrypoint_starts_no_gateway_and_runs_the_command() {
    let state = tempfile::tempdir().unwrap();
    let output = Command::new("sh")
        .arg(entrypoint())
        .args(["echo", "ran"])
        .env("NIGHTSHIFT_STATE_DIR", state.path())
        .env("PATH", path_with_gateway())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ran\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no gateway is started"), "{stderr}");
    assert!(!state.path().join("gateway.pid").exists());
}

#[tokio::test]
async fn the_entrypoint_starts_the_gateway_with_the_sessions_key_and_hides_the_key_from_the_command()
 {
    let state = tempfile::tempdir().unwrap();
    let key_hex = "ab".repeat(32);
    let port = free_port();
    let env_dump = state.path().join("command.env");
    let command = Command::new("sh")
        .arg(entrypoint())
        .args([
            "sh",
            "-c",
            &format!("env > {}; sleep 30", env_dump.display()),
        ])
        .env("NIGHTSHIFT_STATE_DIR", state.path())
        .env("PATH", path_with_gateway())
        .env("SANDBOX_GATEWAY_SESSION", SESSION)
        .env("SANDBOX_GATEWAY_KEY", &key_hex)
        .env("SANDBOX_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("SANDBOX_GATEWAY_ARGS", "--services none")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running {
        command,
        pid_file: state.path().join("gateway.pid"),
    };
    let token = GatewayKey::from_hex(&key_hex)
        .unwrap()
        .mint(&GatewayClaims {
            session_id: SESSION.into(),
            user_id: "user-1".into(),
            role: GatewayRole::Viewer,
            expires_at_ms: now_ms() + 60_000,
        })
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/status"))
            .bearer_auth(&token)
            .send()
            .await
        {
            break response.status();
        }
        let log =
            std::fs::read_to_string(state.path().join("logs/gateway.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "the gateway did not start; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 200);
    let refused = client
        .get(format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        !state.path().join("gateway.key").exists(),
        "the gateway deletes its key file"
    );
    let env = std::fs::read_to_string(&env_dump).unwrap();
    assert!(env.contains("SANDBOX_GATEWAY_SESSION="), "{env}");
    assert!(
        !env.contains(&key_hex),
        "the command must not inherit the key: {env}"
    );

    let pid = std::fs::read_to_string(state.path().join("gateway.pid")).unwrap();
    let gateway_env = std::fs::read(format!("/proc/{}/environ", pid.trim())).unwrap();
    assert!(
        !String::from_utf8_lossy(&gateway_env).contains(&key_hex),
        "the gateway's environment (which its shells inherit) must not hold the key"
    );
}

/// Stops the entrypoint's command and the gateway it started, even when a check failed.
struct Running {
    command: std::process::Child,
    pid_file: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|pid| pid.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.command.kill();
        let _ = self.command.wait();
    }
}
