//! The real `sandbox-backend` binary refuses a listen that would expose its token
//! (not loopback, without TLS or with a weak token), and serves HTTPS with a
//! certificate of its own.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// 32 random-looking bytes as hex: strong enough anywhere.
const STRONG: &str = "5f1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d";

use super::support::{backend, free_port, run_to_exit};

/// Runs the backend, which must refuse to start, and returns what it said.
fn refusal(env: &[(&str, String)]) -> String {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let stderr = run_to_exit(backend(&data_dir, env));
    // Refused before it touched anything.
    assert!(!data_dir.exists(), "a refused start created {data_dir:?}");
    stderr
}

#[test]
fn a_public_listen_without_tls_is_refused_naming_the_settings() {
    let listen = format!("0.0.0.0:{}", free_port());
    let stderr = refusal(&[
        ("SANDBOX_BACKEND_LISTEN", listen.clone()),
        ("SANDBOX_BACKEND_TOKEN", STRONG.into()),
    ]);
    for setting in [
        "SANDBOX_BACKEND_LISTEN",
        "SANDBOX_BACKEND_TLS_CERT",
        "SANDBOX_BACKEND_TLS_KEY",
        "SANDBOX_BACKEND_BEHIND_TLS_PROXY",
    ] {
        assert!(stderr.contains(setting), "{setting} not named in: {stderr}");
    }
}

#[test]
fn a_weak_token_is_refused_behind_a_proxy_or_with_tls() {
    let temp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(temp.path());
    let weak = [
        "change-me".to_string(),
        STRONG[..62].to_string(),
        "a".repeat(100),
    ];
    for token in weak {
        let listen = format!("0.0.0.0:{}", free_port());
        let proxied = refusal(&[
            ("SANDBOX_BACKEND_LISTEN", listen.clone()),
            ("SANDBOX_BACKEND_TOKEN", token.clone()),
            ("SANDBOX_BACKEND_BEHIND_TLS_PROXY", "true".into()),
        ]);
        assert!(proxied.contains("SANDBOX_BACKEND_TOKEN"), "{proxied}");
        let tls = refusal(&[
            ("SANDBOX_BACKEND_LISTEN", listen),
            ("SANDBOX_BACKEND_TOKEN", token),
            ("SANDBOX_BACKEND_TLS_CERT", cert.clone()),
            ("SANDBOX_BACKEND_TLS_KEY", key.clone()),
        ]);
        assert!(tls.contains("SANDBOX_BACKEND_TOKEN"), "{tls}");
    }
}

#[test]
fn half_a_tls_setting_or_an_unreadable_certificate_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(temp.path());
    let listen = format!("127.0.0.1:{}", free_port());
    let half = refusal(&[
        ("SANDBOX_BACKEND_LISTEN", listen.clone()),
        ("SANDBOX_BACKEND_TOKEN", STRONG.into()),
        ("SANDBOX_BACKEND_TLS_CERT", cert.clone()),
    ]);
    assert!(half.contains("SANDBOX_BACKEND_TLS_KEY"), "{half}");
    let swapped = refusal(&[
        ("SANDBOX_BACKEND_LISTEN", listen),
        ("SANDBOX_BACKEND_TOKEN", STRONG.into()),
        ("SANDBOX_BACKEND_TLS_CERT", key),
        ("SANDBOX_BACKEND_TLS_KEY", cert),
    ]);
    assert!(swapped.contains("SANDBOX_BACKEND_TLS_CERT"), "{swapped}");
}

#[tokio::test]
async fn with_a_certificate_it_serves_https_on_a_public_listen() {
    let temp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(temp.path());
    let port = free_port();
    let mut command = backend(
        &temp.path().join("data"),
        &[
            ("SANDBOX_BACKEND_LISTEN", format!("0.0.0.0:{port}")),
            ("SANDBOX_BACKEND_TOKEN", STRONG.into()),
            ("SANDBOX_BACKEND_TLS_CERT", cert.clone()),
            ("SANDBOX_BACKEND_TLS_KEY", key),
        ],
    );
    command.stderr(Stdio::null());
    let child = KillOnDrop(command.spawn().unwrap());

    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let https = format!("https://localhost:{port}");
    let mut healthy = false;
    for _ in 0..200 {
        if client
            .get(format!("{https}/v1/health"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "the backend did not answer over HTTPS");

    // The image's HEALTHCHECK: `sandbox-backend health` with the same settings.
    let probe = |port: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sandbox-backend"))
            .arg("health")
            .env_clear()
            .env("SANDBOX_BACKEND_LISTEN", format!("0.0.0.0:{port}"))
            .env("SANDBOX_BACKEND_TLS_CERT", &cert)
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    assert!(probe(port).success(), "the health probe failed");
    assert!(
        !probe(free_port()).success(),
        "the health probe passed with nothing listening"
    );

    // The token is still required, and accepted, over HTTPS.
    let refused = client
        .get(format!("{https}/v1/sandboxes"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let listed = client
        .get(format!("{https}/v1/sandboxes"))
        .bearer_auth(STRONG)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    // No clear-text answer on the same port: the token never travels in the clear.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/v1/health"))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP was answered on the TLS port"
    );
    drop(child);
}

/// Writes a self-signed certificate for `localhost` and its key as PEM files.
fn self_signed(dir: &Path) -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
