//! `make bench`: the platform's own latency and fan-out on the local stack, with the
//! scripted LLM answering instantly, plus the shipped wasm sizes. Prints a Markdown
//! table to paste into BENCHMARKS.md.
//!
//! Latency: one session, prompts sent one after another; for each, the time from
//! sending `POST /api/sessions/{id}/messages` to (a) the turn's first event
//! (`turn_started`) and (b) the agent's first text delta, as read by an SSE client.
//! Ready (`bench/ready.rs`): session created -> ready to prompt, with the warm pool.
//! Fan-out: 50 SSE clients on one session while a turn streams many text deltas;
//! every client must receive every event, in order.
//! Panels (`bench/panels.rs`, on a second stack with the panels on): session
//! created -> each panel ready, and a terminal keystroke's echo through the whole
//! path. `BENCH_SKIP_PANELS=1` leaves them out.
//! Repositories (`bench/repo.rs`, on a third stack with the fake GitHub): session
//! created -> repository ready in the sandbox, small and 10,000 files, against
//! `git clone` on the host. `BENCH_SKIP_REPO=1` leaves them out.
//! `BENCH_SKIP_LATENCY=1` leaves out the latency and fan-out section.
//! Replay (`bench/replay.rs`, on two more stacks): a finished session of 10,000 text
//! deltas read back from the start, before and after the log's compaction.
//! `BENCH_SKIP_REPLAY=1` leaves it out.
//! Sleep and wake (`bench/sleep.rs`, on a stack whose sessions sleep after a second):
//! time to sleep and to wake, p50/p99, with 100 MB in the workspace and with a
//! repository of 10,000 files. `BENCH_SKIP_SLEEP=1` leaves them out.
//! Checkpoints (`bench/checkpoints.rs`, on a stack of its own): a first checkpoint of a
//! 10,000-file workspace and one per turn after a small change (time and bytes), and
//! a restore. `BENCH_SKIP_CHECKPOINTS=1` leaves them out.

mod checkpoints;
mod panels;
mod ready;
mod replay;
mod repo;
mod sleep;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nightshift_e2e::client::SseStream;
use nightshift_e2e::scripted_llm::{Chunk, Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, repo_root};
use nightshift_protocol::events::EventBody;

const WARMUP: usize = 20;
const FANOUT_DELTAS: usize = 200;

/// A count from the environment (for exploring), else the benchmark's default.
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn gzip_size(path: &Path) -> anyhow::Result<u64> {
    let out = std::process::Command::new("gzip")
        .arg("-9c")
        .arg(path)
        .output()?;
    ensure!(out.status.success(), "gzip failed on {}", path.display());
    Ok(out.stdout.len() as u64)
}

fn find_wasm(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            return Ok(path);
        }
    }
    bail!("no .wasm in {}", dir.display())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start().await?;
    println!("| figure | value |");
    println!("| --- | --- |");
    if std::env::var("BENCH_SKIP_LATENCY").is_err() {
        latency_and_fanout(&llm).await?;
    }
    if std::env::var("BENCH_SKIP_PANELS").is_err() {
        panels::run(&llm).await?;
    }
    if std::env::var("BENCH_SKIP_REPO").is_err() {
        repo::run(&llm).await?;
    }
    if std::env::var("BENCH_SKIP_REPLAY").is_err() {
        replay::run(&llm).await?;
    }
    if std::env::var("BENCH_SKIP_SLEEP").is_err() {
        sleep::run(&llm).await?;
    }
    if std::env::var("BENCH_SKIP_CHECKPOINTS").is_err() {
        checkpoints::run().await?;
    }
    Ok(())
}

/// The first section, on a stack of its own: latency, fan-out and the wasm sizes.
/// `BENCH_SKIP_LATENCY=1` leaves it out.
async fn latency_and_fanout(llm: &ScriptedLlm) -> anyhow::Result<()> {
    // One user opens every fan-out client, more than a user's default stream cap.
    let streams = (setting("BENCH_CLIENTS", 50) + 5).to_string();
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![("MAX_OPEN_STREAMS".to_owned(), streams)],
    })
    .await?;
    let result = run(&stack, llm).await;
    if result.is_err() {
        stack.dump_logs();
    }
    result
}

/// When the next prompt is sent.
#[derive(Clone, Copy, PartialEq)]
enum Pace {
    /// Once the last turn's checkpoint is kept, as a person's next prompt comes.
    Settled,
    /// The moment the last turn ended.
    BackToBack,
}

/// Sends `prompts` prompts (after a warm-up) one turn at a time and answers, sorted,
/// how long each took to `turn_started` and to the first text delta at `stream`.
async fn prompt_latency(
    api: &nightshift_e2e::client::Api,
    stream: &mut SseStream,
    session: &str,
    prompts: usize,
    pace: Pace,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut to_first_event = Vec::new();
    let mut to_first_delta = Vec::new();
    for i in 0..WARMUP + prompts {
        let started = Instant::now();
        api.send(session, &format!("prompt {i}")).await?;
        let mut first_event = None;
        let mut first_delta = None;
        loop {
            let event = stream.next_event().await?;
            match event.body {
                EventBody::TurnStarted { .. } => {
                    first_event = first_event.or(Some(started.elapsed()))
                }
                EventBody::TextDelta { .. } => {
                    first_delta = first_delta.or(Some(started.elapsed()))
                }
                EventBody::TurnFinished { .. } => break,
                _ => {}
            }
        }
        if pace == Pace::Settled {
            tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    let event = stream.next_event().await?;
                    if matches!(
                        event.body,
                        EventBody::CheckpointSaved { .. } | EventBody::Error { .. }
                    ) {
                        return anyhow::Ok(());
                    }
                }
            })
            .await
            .context("no checkpoint_saved within 30 s of a turn's end")??;
        }
        if i >= WARMUP {
            to_first_event.push(first_event.context("no turn_started")?);
            to_first_delta.push(first_delta.context("no text delta")?);
        }
    }
    to_first_event.sort();
    to_first_delta.sort();
    Ok((to_first_event, to_first_delta))
}

async fn run(stack: &Stack, llm: &ScriptedLlm) -> anyhow::Result<()> {
    let prompts = setting("BENCH_PROMPTS", 200);
    let clients_wanted = setting("BENCH_CLIENTS", 50);
    let api = stack.signed_in_api("bench@example.com").await?;
    let mut to_ready = ready::measure(&api).await?;
    to_ready.sort();
    let session = api.create_session().await?;
    api.wait_status(&session.id, "idle").await?;
    let mut stream = api.events(&session.id, None).await?;

    // A person's next prompt comes seconds after the last turn ended, once its
    // checkpoint is kept; a script's comes the moment it ends, and waits for that
    // checkpoint. Both are measured.
    let (to_first_event, to_first_delta) =
        prompt_latency(&api, &mut stream, &session.id, prompts, Pace::Settled).await?;
    let back_to_back = setting("BENCH_BACK_TO_BACK_PROMPTS", 100);
    let (to_first_event_now, _) = prompt_latency(
        &api,
        &mut stream,
        &session.id,
        back_to_back,
        Pace::BackToBack,
    )
    .await?;

    // Fan-out: 50 clients on a fresh session.
    let fan = api.create_session().await?;
    api.wait_status(&fan.id, "idle").await?;
    let mut clients: Vec<SseStream> = Vec::new();
    for _ in 0..clients_wanted {
        clients.push(api.events(&fan.id, None).await?);
    }
    let step = Step {
        chunks: (0..FANOUT_DELTAS)
            .map(|i| Chunk::Text(format!("d{i} ")))
            .collect(),
    };
    llm.on("MARK-FANOUT", Script::new(vec![step]));
    let started = Instant::now();
    api.send(&fan.id, "MARK-FANOUT").await?;
    let mut handles = Vec::new();
    for mut client in clients {
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            loop {
                let event = client.next_event().await?;
                seqs.push(event.seq);
                if matches!(event.body, EventBody::TurnFinished { .. }) {
                    return anyhow::Ok((seqs, Instant::now()));
                }
            }
        }));
    }
    let mut per_client = Vec::new();
    let mut last_arrival = started;
    for handle in handles {
        let (seqs, at) = handle.await??;
        last_arrival = last_arrival.max(at);
        per_client.push(seqs);
    }
    let reference = per_client[0].clone();
    ensure!(
        reference.windows(2).all(|w| w[1] == w[0] + 1),
        "client 0 saw a gap or repeat"
    );
    let all_equal = per_client.iter().all(|s| *s == reference);
    ensure!(all_equal, "not every client received every event");
    let elapsed = last_arrival - started;
    let events = reference.len();
    let rate = events as f64 / elapsed.as_secs_f64();
    let deliveries = (events * clients_wanted) as f64 / elapsed.as_secs_f64();

    let root = repo_root();
    let worker_wasm = find_wasm(&root.join("worker/build"))?;
    let app_wasm = find_wasm(&root.join("app/dist/pkg"))?;
    let kib = |b: u64| format!("{:.0} KiB", b as f64 / 1024.0);

    println!(
        "| session created -> ready to prompt (warm pool), p50 / p99 ({} sessions) | {} / {} |",
        to_ready.len(),
        ms(percentile(&to_ready, 50.0)),
        ms(percentile(&to_ready, 99.0))
    );
    println!(
        "| POST message -> turn_started at an SSE client, p50 ({prompts} prompts, each after the last turn's checkpoint) | {} |",
        ms(percentile(&to_first_event, 50.0))
    );
    println!(
        "| POST message -> turn_started at an SSE client, p99 | {} |",
        ms(percentile(&to_first_event, 99.0))
    );
    println!(
        "| POST message -> turn_started, sent the moment the last turn ended (waits for its checkpoint), p50 / p99 ({back_to_back} prompts) | {} / {} |",
        ms(percentile(&to_first_event_now, 50.0)),
        ms(percentile(&to_first_event_now, 99.0))
    );
    println!(
        "| POST message -> first agent text delta at an SSE client, p50 | {} |",
        ms(percentile(&to_first_delta, 50.0))
    );
    println!(
        "| POST message -> first agent text delta at an SSE client, p99 | {} |",
        ms(percentile(&to_first_delta, 99.0))
    );
    println!(
        "| one session, {clients_wanted} SSE clients: events per second per session | {rate:.0} |"
    );
    println!(
        "| one session, {clients_wanted} SSE clients: deliveries per second (all clients) | {deliveries:.0} |"
    );
    println!("| {clients_wanted} clients each received all {events} events in order | yes |");
    println!(
        "| Worker wasm (raw / gzip) | {} / {} |",
        kib(std::fs::metadata(&worker_wasm)?.len()),
        kib(gzip_size(&worker_wasm)?)
    );
    println!(
        "| App wasm (raw / gzip) | {} / {} |",
        kib(std::fs::metadata(&app_wasm)?.len()),
        kib(gzip_size(&app_wasm)?)
    );
    Ok(())
}
