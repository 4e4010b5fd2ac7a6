//! The checkpoints' part of `make bench`, on its own stack, through the sandbox
//! backend's API (`POST /v1/sandboxes/{id}/checkpoints`, what the `SessionAgent`
//! calls after every turn):
//!
//! - a first checkpoint of a workspace of `BENCH_CHECKPOINT_FILES` (10,000) small
//!   files in 100 directories: every file read, hashed and stored;
//! - then `BENCH_CHECKPOINT_RUNS` turns' worth of a small change (one file
//!   rewritten, one added) each followed by a checkpoint: a walk of the tree and the
//!   new bytes only;
//! - and restoring the first checkpoint (the sandbox stopped, the workspace
//!   rewritten, the sandbox started again), as a rewind does.
//!
//! Time is the backend's own (`ms` in its answer) and the round trip seen here;
//! bytes are `bytes_added`, what the checkpoint added to the sandbox's store.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nightshift_e2e::stack::{Stack, StackOptions};
use serde_json::{Value, json};

use super::{ms, percentile, setting};

struct Backend {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Backend {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {body}");
        }
        Ok(body)
    }

    async fn shell(&self, sandbox: &str, script: &str) -> anyhow::Result<()> {
        let result = self
            .post(
                &format!("/v1/sandboxes/{sandbox}/exec?stream=false"),
                json!({"command": "sh", "args": ["-c", script], "timeout_ms": 300_000}),
            )
            .await?;
        if result["exit"]["code"] != 0 {
            bail!("{script}: {result}");
        }
        Ok(())
    }
}

/// One checkpoint: the round trip, and the backend's answer.
async fn checkpoint(backend: &Backend, sandbox: &str) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    let taken = backend
        .post(&format!("/v1/sandboxes/{sandbox}/checkpoints"), json!({}))
        .await?;
    Ok((started.elapsed(), taken))
}

fn bytes(value: &Value) -> u64 {
    value["bytes_added"].as_u64().unwrap_or(0)
}

/// Runs the section and prints its rows of the figures table.
pub async fn run() -> anyhow::Result<()> {
    let stack = Stack::start(StackOptions::default()).await?;
    let result = measure(&stack).await;
    if result.is_err() {
        stack.dump_logs();
    }
    result
}

async fn measure(stack: &Stack) -> anyhow::Result<()> {
    let files = setting("BENCH_CHECKPOINT_FILES", 10_000);
    let runs = setting("BENCH_CHECKPOINT_RUNS", 20);
    let backend = Backend {
        http: reqwest::Client::new(),
        base: stack.backend_url(),
        token: stack.backend_token.clone(),
    };
    let sandbox = backend.post("/v1/sandboxes", json!({})).await?;
    let sandbox = sandbox["id"].as_str().context("a sandbox id")?.to_owned();
    let per_dir = files.div_ceil(100);
    backend
        .shell(
            &sandbox,
            &format!(
                "for d in $(seq 1 100); do mkdir -p src/d$d && (cd src/d$d && \
                 for f in $(seq 1 {per_dir}); do echo \"file $d/$f $(date +%N)\" > f$f.txt; done); done"
            ),
        )
        .await?;

    let (first_round_trip, first) = checkpoint(&backend, &sandbox).await?;
    let mut round_trips = Vec::new();
    let mut backend_ms = Vec::new();
    let mut added = Vec::new();
    for run in 0..runs {
        backend
            .shell(
                &sandbox,
                &format!("echo \"turn {run}\" >> src/d1/f1.txt && echo \"new {run}\" > src/d2/new{run}.txt"),
            )
            .await?;
        let (round_trip, taken) = checkpoint(&backend, &sandbox).await?;
        round_trips.push(round_trip);
        backend_ms.push(Duration::from_millis(taken["ms"].as_u64().unwrap_or(0)));
        added.push(bytes(&taken));
    }
    round_trips.sort();
    backend_ms.sort();
    added.sort();

    let first_id = first["id"].as_str().context("a checkpoint id")?;
    let started = Instant::now();
    backend
        .post(
            &format!("/v1/sandboxes/{sandbox}/checkpoints/{first_id}/restore"),
            json!({}),
        )
        .await?;
    let restore = started.elapsed();
    backend
        .http
        .delete(format!("{}/v1/sandboxes/{sandbox}", backend.base))
        .bearer_auth(&backend.token)
        .send()
        .await?;

    let entries = first["files"].as_u64().unwrap_or(0);
    println!();
    println!("| checkpoints ({files} files, local provider) | value |");
    println!("| --- | --- |");
    println!(
        "| first checkpoint ({entries} entries): time, bytes stored | {} ({} ms in the backend), {} bytes |",
        ms(first_round_trip),
        first["ms"],
        bytes(&first)
    );
    println!(
        "| checkpoint after a small change (p50 / p99 of {runs}) | {} / {} ({} / {} in the backend) |",
        ms(percentile(&round_trips, 50.0)),
        ms(percentile(&round_trips, 99.0)),
        ms(percentile(&backend_ms, 50.0)),
        ms(percentile(&backend_ms, 99.0)),
    );
    println!(
        "| bytes stored per small change (p50 / max) | {} / {} |",
        added[added.len() / 2],
        added.last().copied().unwrap_or(0)
    );
    println!(
        "| restore of the first checkpoint (stop, rewrite, start) | {} |",
        ms(restore)
    );
    Ok(())
}
