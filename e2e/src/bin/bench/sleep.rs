//! Sleep and wake in `make bench`, on its own stack whose sessions sleep after
//! `BENCH_SLEEP_AFTER_MS` (1 s by default) of idling (the local provider):
//!
//! - time to sleep: from the `sleeping` status event to the `asleep` one at an SSE
//!   client (the backend stops the sandbox with its files kept and answers the
//!   snapshot record);
//! - time to wake: from `POST .../messages` to an asleep session to that prompt's
//!   `turn_started` at an SSE client (the sandbox restored, the runner back, the
//!   conversation reloaded, the prompt started);
//!
//! for a workspace holding 100 MB and for one holding a clone of a repository of
//! 10,000 files (`git_server::large_repo`), `BENCH_SLEEP_RUNS` cycles each (5 by
//! default). The files are written on the host into the sandbox's workspace.

use std::time::{Duration, Instant};

use anyhow::Context;
use nightshift_e2e::client::{Api, SseStream};
use nightshift_e2e::git_server::{LARGE_FILES, large_repo};
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, StackOptions};
use nightshift_protocol::api::SessionStatus;
use nightshift_protocol::events::EventBody;

use super::{ms, percentile, setting};

/// A sleep or a wake not done by then is an error, not a figure.
const LIMIT: Duration = Duration::from_secs(120);

/// Runs the section and prints its rows of the figures table.
pub async fn run(llm: &ScriptedLlm) -> anyhow::Result<()> {
    let sleep_after = setting("BENCH_SLEEP_AFTER_MS", 1_000).to_string();
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![("SESSION_SLEEP_AFTER_MS".to_owned(), sleep_after)],
    })
    .await?;
    let result = measure(&stack).await;
    if result.is_err() {
        stack.dump_logs();
    }
    result
}

async fn measure(stack: &Stack) -> anyhow::Result<()> {
    let runs = setting("BENCH_SLEEP_RUNS", 5);
    let api = stack.signed_in_api("bench-sleep@example.com").await?;
    for (label, fill) in [
        (
            "workspace of 100 MB".to_owned(),
            Fill::Bytes(100 * 1024 * 1024),
        ),
        (
            format!("repository of {LARGE_FILES} files"),
            Fill::Repository,
        ),
    ] {
        let session = api.create_session().await?;
        let ready = api.wait_status(&session.id, "idle").await?;
        let sandbox = ready.sandbox_id.context("no sandbox")?;
        fill.write(&stack.workspace(&sandbox))?;
        let mut stream = api.events(&session.id, None).await?;
        // A first cycle unmeasured: the stream replays from the start, so a sleep
        // that happened before it opened would read as instant.
        until_asleep(&mut stream).await?;
        wake(&api, &mut stream, &session.id, "warm up").await?;
        let mut sleeps = Vec::new();
        let mut wakes = Vec::new();
        for run in 0..runs {
            sleeps.push(until_asleep(&mut stream).await?);
            wakes.push(wake(&api, &mut stream, &session.id, &format!("wake {run}")).await?);
        }
        sleeps.sort();
        wakes.sort();
        println!(
            "| sleep (`sleeping` -> `asleep`), {label}, p50 / p99 ({runs} runs) | {} / {} |",
            ms(percentile(&sleeps, 50.0)),
            ms(percentile(&sleeps, 99.0)),
        );
        println!(
            "| wake (prompt to an asleep session -> its `turn_started`), {label}, p50 / p99 | {} / {} |",
            ms(percentile(&wakes, 50.0)),
            ms(percentile(&wakes, 99.0)),
        );
    }
    Ok(())
}

/// What the workspace holds while it sleeps and wakes.
enum Fill {
    Bytes(usize),
    Repository,
}

impl Fill {
    fn write(&self, workspace: &std::path::Path) -> anyhow::Result<()> {
        match self {
            Fill::Bytes(bytes) => {
                // Incompressible enough and cheap: a repeated pseudo-random block.
                let block: Vec<u8> = (0..1024 * 1024u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                    .collect();
                let mut data = Vec::with_capacity(*bytes);
                while data.len() < *bytes {
                    data.extend_from_slice(&block);
                }
                data.truncate(*bytes);
                std::fs::write(workspace.join("payload.bin"), data)?;
            }
            Fill::Repository => {
                let source = large_repo()?;
                let status = std::process::Command::new("git")
                    .args(["clone", "--quiet"])
                    .arg(&source)
                    .arg(workspace.join("repo"))
                    .status()?;
                anyhow::ensure!(status.success(), "git clone of the large repository failed");
            }
        }
        Ok(())
    }
}

/// Sends `prompt` to the asleep session: the time to its `turn_started`; returns
/// once its turn finished.
async fn wake(
    api: &Api,
    stream: &mut SseStream,
    session: &str,
    prompt: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    api.send(session, prompt).await?;
    until(
        stream,
        |body| matches!(body, EventBody::TurnStarted { content, .. } if content == prompt),
    )
    .await?;
    let took = started.elapsed();
    until(stream, |body| {
        matches!(body, EventBody::TurnFinished { .. })
    })
    .await?;
    Ok(took)
}

/// The time from the next `sleeping` status event to the `asleep` one.
async fn until_asleep(stream: &mut SseStream) -> anyhow::Result<Duration> {
    until(stream, |body| {
        matches!(
            body,
            EventBody::StatusChanged {
                status: SessionStatus::Sleeping
            }
        )
    })
    .await?;
    let started = Instant::now();
    until(stream, |body| {
        matches!(
            body,
            EventBody::StatusChanged {
                status: SessionStatus::Asleep
            }
        )
    })
    .await?;
    Ok(started.elapsed())
}

async fn until(stream: &mut SseStream, done: impl Fn(&EventBody) -> bool) -> anyhow::Result<()> {
    loop {
        let event = tokio::time::timeout(LIMIT, stream.next_event())
            .await
            .context("no event in time")??;
        if done(&event.body) {
            return Ok(());
        }
    }
}
