//! `make db-seed` gives a local stack a demo team, users and sessions: seeded into the
//! running stack's D1 by the make target itself, the demo admin signs in (the
//! development sign-in) and real headless Chromium shows their seeded sessions in the
//! sidebar, and not the sessions of the other demo user. Seeding twice changes
//! nothing.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, ensure};
use fantoccini::Client;
use nightshift_e2e::browser::{Chromedriver, sign_in, text_of, wait_for};
use nightshift_e2e::stack::{Stack, StackOptions, repo_root};

async fn db_seed(stack: &Stack) -> anyhow::Result<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("make")
            .current_dir(repo_root())
            .args(["--no-print-directory", "db-seed"])
            .arg(format!("PERSIST_TO={}", stack.persist_dir().display()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("make db-seed timed out")??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(output.status.success(), "make db-seed failed:\n{text}");
    Ok(text)
}

#[tokio::test]
async fn the_demo_admin_sees_the_seeded_sessions_in_the_browser() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.client(profile.path(), 1280).await.unwrap();
    let result = seeded(&stack, &client).await;
    let shot = repo_root().join("target/browser-seed.png");
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(&shot, png);
    }
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?} (screenshot: {})", shot.display());
    }
}

async fn seeded(stack: &Stack, client: &Client) -> anyhow::Result<()> {
    let first = db_seed(stack).await?;
    ensure!(
        first.contains("adding the demo team, users and sessions"),
        "{first}"
    );
    // Idempotent: the second run adds nothing and fails on nothing.
    db_seed(stack).await?;
    let sessions = stack
        .d1("SELECT COUNT(*) AS n FROM sessions WHERE id LIKE 'demo-session-%'")
        .await?;
    ensure!(sessions[0]["n"] == 3, "seeded sessions: {sessions:?}");
    let team = stack
        .d1("SELECT name FROM teams WHERE id = 'default'")
        .await?;
    ensure!(team[0]["name"] == "Demo team", "team: {team:?}");

    sign_in(
        client,
        &stack.worker_url(),
        "ada@demo.nightshift.test",
        "Ada",
    )
    .await?;

    for (id, title) in [
        ("demo-session-readme", "Demo: tidy up the README"),
        ("demo-session-tests", "Demo: add tests for the parser"),
    ] {
        let shown = wait_for(
            &format!("the seeded session {id} in the sidebar"),
            || async {
                text_of(
                    client,
                    &format!("[data-testid=session-item][data-session-id='{id}']"),
                )
                .await
            },
        )
        .await?;
        ensure!(shown.contains(title), "{id} shows {shown:?}");
    }
    // Max's own session is his, not Ada's.
    ensure!(
        text_of(
            client,
            "[data-testid=session-item][data-session-id='demo-session-ci']"
        )
        .await?
        .is_none(),
        "another user's seeded session is listed"
    );
    Ok(())
}
