//! The event log's part of `make bench`: replaying a finished session, before and
//! after compaction. One turn streams `BENCH_REPLAY_DELTAS` text deltas (10,000)
//! in one run of text; then a fresh SSE client reads the session's log from the start
//! until the turn's `turn_finished`, `BENCH_REPLAY_RUNS` times (5). Measured on two
//! stacks: one with `EVENT_LOG_COMPACTION=off` (the log as the turn streamed it),
//! one as shipped (each run of deltas joined into one `text` once the turn ended).
//! Both raise `RUNNER_INTAKE_PER_SEC` so the turn is not throttled on its way in.
//! `BENCH_SKIP_REPLAY=1` leaves the section out.

use std::time::{Duration, Instant};

use anyhow::ensure;
use nightshift_e2e::scripted_llm::{Chunk, Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions};
use nightshift_protocol::events::EventBody;

use super::{ms, percentile, setting};

/// What replaying one finished session cost a client.
struct Replay {
    events: usize,
    bytes: u64,
    times: Vec<Duration>,
}

/// Runs the section and prints its rows of the figures table.
pub async fn run(llm: &ScriptedLlm) -> anyhow::Result<()> {
    let deltas = setting("BENCH_REPLAY_DELTAS", 10_000);
    let mut rows = Vec::new();
    for (label, compaction) in [("before compaction", "off"), ("after compaction", "on")] {
        let stack = Stack::start(StackOptions {
            llm_base_url: Some(llm.base_url()),
            worker_vars: vec![
                ("EVENT_LOG_COMPACTION".to_owned(), compaction.to_owned()),
                ("RUNNER_INTAKE_PER_SEC".to_owned(), "1000000".to_owned()),
            ],
        })
        .await?;
        let result = measure(&stack, llm, deltas).await;
        if result.is_err() {
            stack.dump_logs();
        }
        rows.push((label, result?));
    }
    for (label, mut replay) in rows {
        replay.times.sort();
        println!(
            "| replay of a finished session with {deltas} text deltas, {label}: events / bytes | {} / {:.0} KiB |",
            replay.events,
            replay.bytes as f64 / 1024.0
        );
        println!(
            "| replay of a finished session with {deltas} text deltas, {label}: time p50 / p99 | {} / {} |",
            ms(percentile(&replay.times, 50.0)),
            ms(percentile(&replay.times, 99.0))
        );
    }
    Ok(())
}

async fn measure(stack: &Stack, llm: &ScriptedLlm, deltas: usize) -> anyhow::Result<Replay> {
    let runs = setting("BENCH_REPLAY_RUNS", 5);
    let api = stack.signed_in_api("bench-replay@example.com").await?;
    let session = api.create_session().await?;
    api.wait_status(&session.id, "idle").await?;
    let step = Step {
        chunks: (0..deltas).map(|i| Chunk::Text(format!("w{i} "))).collect(),
    };
    llm.on("MARK-REPLAY-BENCH", Script::new(vec![step]));
    let mut live = api.events(&session.id, None).await?;
    api.send(&session.id, "MARK-REPLAY-BENCH").await?;
    let mut streamed = 0;
    loop {
        match live.next_event().await?.body {
            EventBody::TextDelta { .. } => streamed += 1,
            EventBody::TurnFinished { .. } => break,
            _ => {}
        }
    }
    ensure!(
        streamed == deltas,
        "the turn streamed {streamed} of {deltas} deltas"
    );
    drop(live);

    let mut replay = Replay {
        events: 0,
        bytes: 0,
        times: Vec::new(),
    };
    for _ in 0..runs {
        let started = Instant::now();
        let mut stream = api.events(&session.id, None).await?;
        let mut events = 0;
        loop {
            events += 1;
            if matches!(
                stream.next_event().await?.body,
                EventBody::TurnFinished { .. }
            ) {
                break;
            }
        }
        replay.times.push(started.elapsed());
        replay.events = events;
        replay.bytes = stream.bytes_read();
    }
    Ok(replay)
}
