//! Checks of the sandbox image's entrypoint and gateway (`docker/`) with the tools on
//! this machine: the image itself is not built here (no Docker daemon). The
//! entrypoint runs for real with no services; when nginx is installed, the gateway it
//! configures is started and must refuse requests without the token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn docker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker")
}

/// Runs the entrypoint with `env` and `command`; (stdout, stderr).
fn entrypoint(dir: &Path, env: &[(&str, &str)], command: &[&str]) -> (String, String) {
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(
        docker_dir().join("gateway-index.html"),
        etc.join("index.html"),
    )
    .unwrap();
    let template = std::fs::read_to_string(docker_dir().join("gateway.conf.template"))
        .unwrap()
        .replace("/etc/nightshift", etc.to_str().unwrap());
    std::fs::write(dir.join("gateway.conf.template"), template).unwrap();
    let output = Command::new("sh")
        .arg(docker_dir().join("entrypoint.sh"))
        .args(command)
        .env("NIGHTSHIFT_STATE_DIR", dir.join("state"))
        .env(
            "NIGHTSHIFT_GATEWAY_TEMPLATE",
            dir.join("gateway.conf.template"),
        )
        .env("SANDBOX_SERVICES", "none")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn the_entrypoint_runs_the_command_and_refuses_a_gateway_without_a_good_token() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = entrypoint(dir.path(), &[], &["echo", "ran"]);
    assert_eq!(stdout, "ran\n");
    assert!(
        stderr.contains("SANDBOX_GATEWAY_TOKEN is not set"),
        "{stderr}"
    );
    assert!(!dir.path().join("state/gateway.conf").exists());

    let (stdout, stderr) = entrypoint(
        dir.path(),
        &[("SANDBOX_GATEWAY_TOKEN", "has space$")],
        &["echo", "ran"],
    );
    assert_eq!(stdout, "ran\n");
    assert!(stderr.contains("may only contain"), "{stderr}");
    assert!(!dir.path().join("state/gateway.conf").exists());
}

#[test]
fn the_gateway_config_carries_the_token_and_keeps_nginx_variables() {
    if !has("envsubst") {
        eprintln!("SKIPPED: envsubst (gettext-base) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let token = "tok_EN-123";
    let (stdout, _) = entrypoint(
        dir.path(),
        &[
            ("SANDBOX_GATEWAY_TOKEN", token),
            ("SANDBOX_GATEWAY_PORT", &port),
        ],
        &["sh", "-c", "sleep 0.5; echo ran"],
    );
    assert_eq!(stdout, "ran\n");
    let config = std::fs::read_to_string(dir.path().join("state/gateway.conf")).unwrap();
    assert!(config.contains(&format!("Bearer {token}")), "{config}");
    assert!(config.contains(&format!("listen {port};")), "{config}");
    assert!(config.contains("$http_upgrade") && config.contains("$cookie_nightshift_token"));
    assert!(
        !config.contains("${"),
        "an unsubstituted variable is left: {config}"
    );

    if !has("nginx") {
        eprintln!("SKIPPED the live gateway part: nginx is not installed");
        return;
    }
    let pid_file = dir.path().join("state/gateway.pid");
    let status = |extra: &[&str]| -> String {
        let mut args = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        args.extend_from_slice(extra);
        let url = format!("http://127.0.0.1:{port}/healthz");
        args.push(&url);
        let output = Command::new("curl").args(&args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let mut up = false;
    for _ in 0..50 {
        if pid_file.exists() && status(&["-H", &format!("Authorization: Bearer {token}")]) == "200"
        {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log =
        std::fs::read_to_string(dir.path().join("state/logs/gateway.log")).unwrap_or_default();
    let stop = || {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    };
    if !up {
        stop();
        panic!("the gateway did not come up: {log}");
    }
    let answers = (
        status(&[]),
        status(&["-H", "Authorization: Bearer wrong"]),
        status(&["-b", &format!("nightshift_token={token}")]),
        status(&["-b", &format!("nightshift_token={token}x")]),
    );
    stop();
    assert_eq!(
        answers,
        ("401".into(), "401".into(), "200".into(), "401".into())
    );
}
