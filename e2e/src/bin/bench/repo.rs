//! The repositories' part of `make bench`, on its own stack with the fake GitHub and
//! its real git server (`git http-backend` on the host's loopback, opened to the
//! sandboxes' `isolated` network by `SANDBOX_ISOLATED_ALLOW`):
//!
//! - session created -> repository ready: `POST /api/sessions` with a repository,
//!   then the session's event stream until a `repo_updated` says `ready` (the runner
//!   in the sandbox has cloned it through the credential helper and checked out the
//!   session's branch), for a small repository and for one of 10,000 files and 2,000
//!   commits (`git_server::large_repo`), `BENCH_REPO_RUNS` sessions each, one after
//!   another;
//! - against `git clone` of the same repository from the same server, directly on the
//!   host with the same kind of token, the same number of times.
//!
//! What the session's clone does is `init` + `fetch` of the base branch's full history
//! without tags + `checkout -b` (see `runner/src/repo/setup.rs`), so `log` and blame
//! work for the agent; the host's `git clone` fetches every branch.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use nightshift_e2e::client::Api;
use nightshift_e2e::fake_github::FakeGithub;
use nightshift_e2e::git_server::{LARGE_COMMITS, LARGE_FILES, RepoSeed, large_repo};
use nightshift_e2e::github_turn::stack_reaching_git;
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::Stack;
use nightshift_protocol::events::EventBody;
use nightshift_protocol::repo::RepoPhase;
use reqwest::Method;
use serde_json::{Value, json};

use super::{ms, percentile, setting};

/// A repository not ready by then is an error, not a figure.
const READY_LIMIT: Duration = Duration::from_secs(300);

/// Runs the section and prints its rows of the figures table.
pub async fn run(llm: &ScriptedLlm) -> anyhow::Result<()> {
    let gh = FakeGithub::start().await?;
    gh.add_user("bench", "Bench User", "bench-repo@example.com");
    gh.add_repo("bench", "small", true, &RepoSeed::small())?;
    gh.add_repo_from("bench", "large", &large_repo()?)?;
    let stack = stack_reaching_git(&gh, llm).await?;
    let result = measure(&stack, &gh).await;
    if result.is_err() {
        stack.dump_logs();
    }
    result
}

async fn measure(stack: &Stack, gh: &FakeGithub) -> anyhow::Result<()> {
    let runs = setting("BENCH_REPO_RUNS", 5);
    let api = stack.signed_in_api("bench-repo@example.com").await?;
    gh.connect(&stack.worker_url(), &api, "bench", "/sessions/new")
        .await?;
    let token = gh.issue_user_token("bench", &["repo"], 3600).access_token;

    for (name, label) in [
        ("small", "small repository".to_string()),
        (
            "large",
            format!("{LARGE_FILES} files, {LARGE_COMMITS} commits"),
        ),
    ] {
        let full_name = format!("bench/{name}");
        let mut session = Vec::new();
        let mut host = Vec::new();
        for _ in 0..runs {
            session.push(session_to_ready(&api, &full_name).await?);
            host.push(host_clone(&gh.git().repo_url("bench", name), &token).await?);
        }
        session.sort();
        host.sort();
        println!(
            "| session created -> repository ready, {label}, p50 / max ({runs} runs) | {} / {} |",
            ms(percentile(&session, 50.0)),
            ms(percentile(&session, 100.0)),
        );
        println!(
            "| `git clone` of the same on the host, {label}, p50 / max | {} / {} |",
            ms(percentile(&host, 50.0)),
            ms(percentile(&host, 100.0)),
        );
    }
    Ok(())
}

/// From `POST /api/sessions` on `full_name` to the `repo_updated` event saying the
/// repository is ready in the sandbox.
async fn session_to_ready(api: &Api, full_name: &str) -> anyhow::Result<Duration> {
    let body = json!({"title": "Bench", "repo": {"full_name": full_name}});
    let started = Instant::now();
    let created: Value = api
        .expect(Method::POST, "/api/sessions", Some(&body.to_string()), 201)
        .await?;
    let id = created["id"].as_str().context("the session's id")?;
    // The stream replays from the session's first event, so nothing is missed.
    let mut events = api.events(id, None).await?;
    loop {
        let event = tokio::time::timeout(READY_LIMIT, events.next_event())
            .await
            .with_context(|| format!("{full_name} not ready in {READY_LIMIT:?}"))??;
        if let EventBody::RepoUpdated { state } = event.body {
            match state.phase {
                RepoPhase::Ready => return Ok(started.elapsed()),
                RepoPhase::Failed => bail!("{full_name} failed to clone: {:?}", state.error),
                RepoPhase::Cloning => {}
            }
        }
    }
}

/// `git clone` of `url` into a fresh directory on the host, with `token` as git's
/// Basic credential (as the sandbox's helper gives it).
async fn host_clone(url: &str, token: &str) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    let started = Instant::now();
    let status = tokio::process::Command::new("git")
        .arg("-c")
        .arg(format!("http.extraHeader=Authorization: Basic {basic}"))
        .args(["clone", "--quiet", url])
        .arg(dir.path().join("checkout"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(READY_LIMIT, status)
        .await
        .context("git clone timed out")??;
    let took = started.elapsed();
    anyhow::ensure!(status.success(), "git clone {url} failed: {status}");
    Ok(took)
}
