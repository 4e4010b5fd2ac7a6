//! The backend's container image (`docker/backend/Dockerfile`), built for real on the
//! test Docker Engine from the binaries this test run built (`BINARIES=host`), on the
//! local base image (no registry is reachable), then run: it runs as its own
//! unprivileged user, refuses the public listen its defaults ask for without TLS or
//! a strong token, and, set up as docs/DEPLOY.md says for a VM next to Docker (the
//! Engine's socket mounted, its group added), reports healthy and runs a sandbox.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::os::unix::fs::MetadataExt;

use crate::conformance::Client;
use crate::deployment::support::free_port;
use crate::providers::docker_engine::RealEngine;

const TAG: &str = "nightshift-sandbox-backend:conformance";

/// The Docker CLI that can build with BuildKit against the test Engine: Debian's
/// `docker.io` client (a newer client without the buildx plugin cannot).
fn docker_cli() -> PathBuf {
    let debian = Path::new("/usr/bin/docker");
    if debian.is_file() {
        debian.to_path_buf()
    } else {
        PathBuf::from("docker")
    }
}

fn docker(engine: &RealEngine, args: &[&str]) -> Output {
    Command::new(docker_cli())
        .env("DOCKER_HOST", &engine.host)
        .env("DOCKER_BUILDKIT", "1")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A build context of the Dockerfile and the two binaries of this build.
fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let backend = PathBuf::from(env!("CARGO_BIN_EXE_sandbox-backend"));
    let runner = backend.with_file_name("runner");
    assert!(
        runner.is_file(),
        "{} is missing: build it first (`make build-native`)",
        runner.display()
    );
    let bin = dir.path().join("target/debug");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&backend, bin.join("sandbox-backend")).unwrap();
    std::fs::copy(&runner, bin.join("runner")).unwrap();
    std::fs::create_dir_all(dir.path().join("docker/backend")).unwrap();
    std::fs::copy(
        repo.join("docker/backend/Dockerfile"),
        dir.path().join("docker/backend/Dockerfile"),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn the_backend_image_builds_offline_runs_unprivileged_refuses_a_public_listen_and_is_healthy()
{
    let Some(engine) = RealEngine::find("the backend image").await else {
        return;
    };
    let context = context();
    let context_path = context.path().to_str().unwrap().to_owned();
    let base = format!("BASE_IMAGE={}", engine.image);
    let dockerfile = format!("{context_path}/docker/backend/Dockerfile");
    // The test Engine has no bridge; the image's build needs no network.
    let built = docker(
        &engine,
        &[
            "build",
            "--network",
            "none",
            "-f",
            &dockerfile,
            "--build-arg",
            "BINARIES=host",
            "--build-arg",
            "PROFILE=debug",
            "--build-arg",
            &base,
            "-t",
            TAG,
            &context_path,
        ],
    );
    assert!(
        built.status.success(),
        "the image did not build: {}",
        text(&built)
    );

    let inspect = docker(&engine, &["image", "inspect", TAG]);
    let image: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let config = &image[0]["Config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/usr/local/bin/sandbox-backend", "health"]),
        "{config}"
    );

    // Its defaults listen on every address: without TLS and a strong token it stops.
    let refused = docker(
        &engine,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            "SANDBOX_BACKEND_TOKEN=short",
            TAG,
        ],
    );
    assert!(!refused.status.success(), "a public listen was not refused");
    assert!(
        text(&refused).contains("SANDBOX_BACKEND_BEHIND_TLS_PROXY"),
        "{}",
        text(&refused)
    );

    let token = "5f1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d";
    let socket = engine.host.trim_start_matches("unix://").to_owned();
    let docker_group = std::fs::metadata(&socket).unwrap().gid().to_string();
    let port = free_port();
    let started = docker(
        &engine,
        &[
            "run",
            "-d",
            "--network",
            "host",
            "-v",
            &format!("{socket}:/var/run/docker.sock"),
            "--group-add",
            &docker_group,
            "-e",
            &format!("SANDBOX_BACKEND_LISTEN=127.0.0.1:{port}"),
            "-e",
            &format!("SANDBOX_BACKEND_TOKEN={token}"),
            "-e",
            "SANDBOX_DEFAULT_PROVIDER=docker",
            "-e",
            &format!("SANDBOX_DOCKER_IMAGE={}", engine.image),
            TAG,
        ],
    );
    assert!(started.status.success(), "{}", text(&started));
    let id = String::from_utf8_lossy(&started.stdout).trim().to_owned();
    let result = async {
        // The health check the image declares, run as Docker would run it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let health = docker(
                &engine,
                &["exec", &id, "/usr/local/bin/sandbox-backend", "health"],
            );
            if health.status.success() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let logs = docker(&engine, &["logs", &id]);
                return Err(format!("never healthy: {}\n{}", text(&health), text(&logs)));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let uid = docker(&engine, &["exec", &id, "id", "-u"]);
        if String::from_utf8_lossy(&uid.stdout).trim() != "65532" {
            return Err(format!("it runs as {}", text(&uid)));
        }
        // Its data directory is its own (it keeps its sandbox records there).
        let owner = docker(
            &engine,
            &["exec", &id, "stat", "-c", "%u", "/var/lib/nightshift"],
        );
        if String::from_utf8_lossy(&owner.stdout).trim() != "65532" {
            return Err(format!("/var/lib/nightshift belongs to {}", text(&owner)));
        }
        // The backend in its image drives the Engine beside it: a sandbox runs.
        let client = Client::new(format!("http://127.0.0.1:{port}"), token.to_owned());
        let sandbox = client.create(serde_json::json!({})).await?;
        let ran = client.sh(&sandbox.id, "echo from-the-image").await;
        client.destroy(&sandbox.id).await?;
        let ran = ran?;
        if !ran.stdout.contains("from-the-image") {
            return Err(format!("the sandbox's command said {ran:?}"));
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("{}", text(&docker(&engine, &["logs", &id])));
    }
    docker(&engine, &["rm", "-f", &id]);
    docker(&engine, &["rmi", TAG]);
    result.unwrap();
}
