//! `make release DRY_RUN=1`: every step of a release that needs no Cloudflare account
//! runs here for real (typecheck, the builds, the Worker bundle with its size and
//! bindings checked, every migration on a scratch D1, the Pages build, the sandbox
//! image built offline on the real Docker Engine of scripts/docker-engine.sh) and
//! the release fails when one of them fails.
//!
//! The settings files are written by the test from the committed examples, so a
//! developer's own `.env` and `.env.deploy` are neither read nor changed. The `test`
//! step is skipped (it is the suite this test belongs to), and so is `typecheck`
//! (`make lint` runs clippy over every crate for both targets).
//!
//! The whole dry run rebuilds `app/dist` and `worker/build` in place, which every
//! other test's `wrangler dev` serves: under nextest it runs alone
//! (`.config/nextest.toml`); `cargo test` runs one file at a time anyway.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nightshift_e2e::stack::repo_root;
use tokio::process::Command;

/// The whole dry run builds the release binaries and type-checks every crate; on a
/// busy two-core machine that takes a while.
const DRY_RUN_TIMEOUT: Duration = Duration::from_secs(60 * 60);

struct Run {
    success: bool,
    output: String,
}

/// Writes a deploy file from `.env.deploy.example` with `overrides` (NAME, value)
/// and a secrets file from `.env.example` completed by `scripts/complete-env.sh`.
fn settings_files(dir: &Path, overrides: &[(&str, &str)]) -> anyhow::Result<()> {
    let root = repo_root();
    let mut deploy = std::fs::read_to_string(root.join(".env.deploy.example"))?;
    for (name, value) in overrides {
        deploy.push_str(&format!("{name}={value}\n"));
    }
    std::fs::write(dir.join("deploy.env"), deploy)?;
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/complete-env.sh"))
        .arg(dir.join("secrets.env"))
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "complete-env.sh failed");
    Ok(())
}

async fn release(dir: &Path, skip: &str) -> anyhow::Result<Run> {
    let output = tokio::time::timeout(
        DRY_RUN_TIMEOUT,
        Command::new("make")
            .current_dir(repo_root())
            .args(["--no-print-directory", "release", "DRY_RUN=1"])
            .arg(format!("SKIP={skip}"))
            .env("DEPLOY_ENV_FILE", dir.join("deploy.env"))
            .env("ENV_FILE", dir.join("secrets.env"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("make release DRY_RUN=1 did not finish in time")??;
    let output_text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(Run {
        success: output.status.success(),
        output: output_text,
    })
}

#[tokio::test]
async fn a_dry_run_release_runs_every_step_that_needs_no_account() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    settings_files(
        dir.path(),
        &[
            ("CLIENT_HOST", "pages"),
            ("PAGES_DOMAIN", "app.dry-run.example"),
            ("WORKER_DOMAIN", "api.dry-run.example"),
            ("ADMIN_EMAILS", "ops@dry-run.example"),
        ],
    )?;
    // `typecheck` is left out too: `make lint`, which CI runs after the tests,
    // type-checks every crate for both targets with clippy.
    let run = release(dir.path(), "test,typecheck").await?;
    let output = &run.output;
    assert!(run.success, "the dry run failed:\n{output}");

    for expected in [
        "== typecheck: skipped (SKIP)",
        "== test: skipped (SKIP)",
        "== build",
        // The Worker: bundled, its bindings and size checked, migrations from zero.
        "rendered wrangler.deploy.toml: Worker nightshift on https://api.dry-run.example",
        "app on https://app.dry-run.example (1 more settings as vars)",
        "bindings present: SESSION_AGENT EVENT_BUS API_KEYS DB FILES ASSETS",
        "bytes gzipped (the free plan allows 3145728)",
        "dry run: D1_DATABASE_ID is not set; using the placeholder",
        // The Pages build with its Functions.
        "Pages build: target/pages",
        "\"/api/*\"",
        "\"/auth/*\"",
        // Secrets are named, never shown.
        "would set 4 secrets from",
        "RUNNER_TOKEN_SECRET SANDBOX_BACKEND_TOKEN ENCRYPTION_KEY SETUP_CODE",
        "dry run: would copy",
        "dry run done: every step passed; nothing was deployed",
    ] {
        assert!(
            output.contains(expected),
            "the dry run's output lacks {expected:?}:\n{output}"
        );
    }
    let migrations = std::fs::read_dir(repo_root().join("migrations"))?
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "sql"))
        })
        .count();
    assert!(
        output.contains(&format!(
            "migrations: {migrations} of {migrations} applied to an empty database"
        )),
        "not every migration was applied from zero:\n{output}"
    );
    // The image step built the sandbox image on the real Engine (`make test-e2e`
    // starts it), offline on its base image; only a run that opted out of Docker
    // may have skipped it.
    if std::env::var("DOCKER_TESTS").is_ok_and(|value| value == "skip") {
        assert!(
            output.contains("skipped the sandbox image build: no Docker Engine is running")
                || output.contains("built nightshift-sandbox:dry-run"),
            "the image step said nothing:\n{output}"
        );
    } else {
        for expected in [
            "building the sandbox image offline on nightshift-test-base:bookworm",
            "built nightshift-sandbox:dry-run; nothing was pushed",
        ] {
            assert!(
                output.contains(expected),
                "the sandbox image was not built on the Docker Engine ({expected:?}):\n{output}"
            );
        }
    }
    // No secret value reaches the output.
    let secrets = std::fs::read_to_string(dir.path().join("secrets.env"))?;
    for line in secrets.lines() {
        if let Some(value) = line.strip_prefix("RUNNER_TOKEN_SECRET=") {
            assert!(!output.contains(value), "a secret was printed");
        }
    }
    // The rendered production config names the settings, not the placeholders.
    let rendered = std::fs::read_to_string(repo_root().join("wrangler.deploy.toml"))?;
    assert!(
        rendered
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .all(|line| !line.contains('@')),
        "placeholders left:\n{rendered}"
    );
    assert!(rendered.contains("WORKER_URL = \"https://api.dry-run.example\""));
    assert!(rendered.contains("PUBLIC_URL = \"https://app.dry-run.example\""));
    Ok(())
}

#[tokio::test]
async fn a_dry_run_stops_at_the_first_step_that_fails() -> anyhow::Result<()> {
    // The Worker sends its tokens to the sandbox backend: plain http is refused, and
    // the release stops there, before the later steps, with the setting named.
    let dir = tempfile::tempdir()?;
    settings_files(
        dir.path(),
        &[("SANDBOX_BACKEND_URL", "http://sandboxes.dry-run.example")],
    )?;
    // `push-image` is left out too: without the `build` step's release binaries it
    // would build them itself, which this test is not about (the other one builds
    // the image).
    let run = release(dir.path(), "typecheck,test,build,push-image").await?;
    let output = &run.output;
    assert!(
        !run.success,
        "the dry run passed with a failing step:\n{output}"
    );
    assert!(
        output.contains("SANDBOX_BACKEND_URL='http://sandboxes.dry-run.example' is not valid"),
        "the refusal does not name the setting:\n{output}"
    );
    assert!(
        !output.contains("== secrets") && !output.contains("dry run done"),
        "the release went on after a failed step:\n{output}"
    );
    Ok(())
}
