//! The gateway where a local sandbox runs it: under bubblewrap, with a cleared
//! environment (no `PATH`), a network namespace of its own (only its loopback), an
//! unprivileged uid, a private `/tmp` and a 1 MiB `/run`, with its default ports and
//! display. Every service must come up and answer through the gateway. The checks
//! run inside the sandbox, since nothing outside can reach its loopback.

#[path = "support/harness.rs"]
mod harness;

use std::process::Command;

use harness::{SESSION, now_ms};
use nightshift_session::gateway_token::{GatewayClaims, GatewayKey, GatewayRole};

/// Waits for all six services, then reports the status and two panels' answers.
const SCRIPT: &str = r#"
/run/nightshift-gateway serve --listen 127.0.0.1:9000 --session "$SESSION" --key-file /run/gw/key 2>/run/gw/log &
gateway=$!
auth="Authorization: Bearer $(cat /run/gw/token)"
for _ in $(seq 1 600); do
  status=$(curl -s -H "$auth" http://127.0.0.1:9000/status)
  [ "$(printf '%s' "$status" | grep -o '"state":"ready"' | wc -l)" = 6 ] && break
  sleep 0.1
done
echo "status $status"
curl -s -o /dev/null -w "vscode %{http_code}\n" -H "$auth" http://127.0.0.1:9000/vscode/
curl -s -o /dev/null -w "anonymous %{http_code}\n" http://127.0.0.1:9000/status
kill "$gateway"
wait "$gateway"
echo "stopped $?"
"#;

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn every_service_comes_up_and_answers_inside_a_bubblewrap_sandbox() {
    for (program, package) in [("bwrap", "bubblewrap"), ("curl", "curl")] {
        assert!(
            installed(program),
            "{program} is missing: install the Debian package {package} (make setup does)"
        );
    }
    let root = tempfile::tempdir().unwrap();
    let gw = root.path().join("gw");
    for dir in ["gw", "workspace", "home"] {
        std::fs::create_dir(root.path().join(dir)).unwrap();
    }
    let key_hex = "5a".repeat(32);
    std::fs::write(gw.join("key"), &key_hex).unwrap();
    let token = GatewayKey::from_hex(&key_hex)
        .unwrap()
        .mint(&GatewayClaims {
            session_id: SESSION.into(),
            user_id: "user-1".into(),
            role: GatewayRole::Owner,
            expires_at_ms: now_ms() + 600_000,
        })
        .unwrap();
    std::fs::write(gw.join("token"), token).unwrap();
    std::fs::write(gw.join("run.sh"), SCRIPT).unwrap();
    let path = |dir: &str| root.path().join(dir).display().to_string();
    let output = Command::new("timeout")
        .arg("120")
        .arg("bwrap")
        .args([
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--uid",
            "1000",
            "--gid",
            "1000",
        ])
        .args([
            "--cap-drop",
            "ALL",
            "--new-session",
            "--die-with-parent",
            "--clearenv",
        ])
        .args([
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/lib",
            "/lib",
        ])
        .args([
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--symlink",
            "usr/sbin",
            "/sbin",
            "--ro-bind",
            "/etc",
            "/etc",
        ])
        .args([
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--size", "1048576", "--tmpfs",
            "/run",
        ])
        .args([
            "--bind",
            &path("workspace"),
            "/workspace",
            "--bind",
            &path("home"),
            "/home/sandbox",
        ])
        .args(["--bind", &path("gw"), "/run/gw"])
        .args([
            "--ro-bind",
            env!("CARGO_BIN_EXE_nightshift-gateway"),
            "/run/nightshift-gateway",
        ])
        .args([
            "--setenv",
            "HOME",
            "/home/sandbox",
            "--setenv",
            "SESSION",
            SESSION,
            "--chdir",
            "/workspace",
        ])
        .args(["sh", "/run/gw/run.sh"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let log = std::fs::read_to_string(gw.join("log")).unwrap_or_default();
    let context = format!(
        "stdout:\n{stdout}\nstderr:\n{}\ngateway log:\n{log}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status_line = stdout
        .lines()
        .find(|line| line.starts_with("status "))
        .unwrap_or_else(|| panic!("{context}"));
    let status: serde_json::Value = serde_json::from_str(&status_line["status ".len()..])
        .unwrap_or_else(|_| panic!("{context}"));
    for service in status["services"].as_array().unwrap() {
        assert_eq!(service["state"], "ready", "{service} in {context}");
    }
    assert!(
        stdout.contains("vscode 302"),
        "code-server answers (its redirect to ?folder=): {context}"
    );
    assert!(stdout.contains("anonymous 401"), "{context}");
    assert!(
        !gw.join("key").exists(),
        "the key file is deleted: {context}"
    );
}
