//! `docker-bench` (run by `make bench`): what the docker provider costs against the
//! local one, in the same run, on the same real sandbox backend: the sandbox image
//! built from this tree (`scripts/sandbox-image.sh`) on the real Docker Engine of
//! `scripts/docker-engine.sh`, and bubblewrap sandboxes beside it. Prints a Markdown
//! table for BENCHMARKS.md.
//!
//! - create to first output: `POST /v1/sandboxes`, then a streamed exec of `echo`,
//!   until its first stdout line arrives (`BENCH_DOCKER_SANDBOXES`, default 5, one
//!   after another, each destroyed before the next);
//! - exec overhead: the round trip of `true` through `POST /exec?stream=false` in one
//!   sandbox (`BENCH_DOCKER_EXECS`, default 50, after 5 warm-up), p50 and p99;
//! - the image's size as the Engine reports it.
//!
//! Run it on an idle machine: the figures are wall-clock times.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use nightshift_e2e::docker::{DockerBackend, Engine};
use reqwest::Method;
use serde_json::{Value, json};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|value| *value > 0)
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

async fn create(backend: &DockerBackend, provider: &str) -> anyhow::Result<String> {
    let created: Value = backend
        .request(Method::POST, "/v1/sandboxes")
        .json(&json!({"provider": provider}))
        .send()
        .await?
        .json()
        .await?;
    created["id"]
        .as_str()
        .map(String::from)
        .with_context(|| format!("no {provider} sandbox: {created}"))
}

async fn destroy(backend: &DockerBackend, id: &str) {
    let _ = backend
        .request(Method::DELETE, &format!("/v1/sandboxes/{id}"))
        .send()
        .await;
}

/// From the create request to the first stdout line of a streamed `echo`.
async fn create_to_first_output(
    backend: &DockerBackend,
    provider: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let id = create(backend, provider).await?;
    let answer = backend
        .request(Method::POST, &format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"command": "echo", "args": ["first"]}))
        .send()
        .await?;
    let mut body = answer.bytes_stream();
    let mut seen = String::new();
    let elapsed = loop {
        let Some(chunk) = body.next().await else {
            destroy(backend, &id).await;
            bail!("the exec ended without output: {seen}");
        };
        seen.push_str(&String::from_utf8_lossy(&chunk?));
        if seen.contains("\"stdout\"") {
            break started.elapsed();
        }
    };
    drop(body);
    destroy(backend, &id).await;
    Ok(elapsed)
}

/// Round trips of `true` in one sandbox, sorted.
async fn exec_round_trips(
    backend: &DockerBackend,
    provider: &str,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let id = create(backend, provider).await?;
    let mut times = Vec::with_capacity(count);
    for round in 0..count + 5 {
        let started = Instant::now();
        let result: Value = backend
            .request(
                Method::POST,
                &format!("/v1/sandboxes/{id}/exec?stream=false"),
            )
            .json(&json!({"command": "true"}))
            .send()
            .await?
            .json()
            .await?;
        if result["exit"]["code"] != 0 {
            destroy(backend, &id).await;
            bail!("`true` failed in a {provider} sandbox: {result}");
        }
        if round >= 5 {
            times.push(started.elapsed());
        }
    }
    destroy(backend, &id).await;
    times.sort();
    Ok(times)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(engine) = Engine::find("docker-bench")? else {
        return Ok(());
    };
    let sandboxes = setting("BENCH_DOCKER_SANDBOXES", 5);
    let execs = setting("BENCH_DOCKER_EXECS", 50);
    let image = engine.sandbox_image()?;
    let size = engine.image_size(&image)?;
    let backend = DockerBackend::start(&engine, &image).await?;

    println!("### The docker provider (`docker-bench`)\n");
    println!(
        "| provider | create -> first output, median of {sandboxes} | exec of `true`, p50 of {execs} | p99 |"
    );
    println!("| --- | --- | --- | --- |");
    for provider in ["local", "docker"] {
        let mut firsts = Vec::with_capacity(sandboxes);
        for _ in 0..sandboxes {
            firsts.push(create_to_first_output(&backend, provider).await?);
        }
        firsts.sort();
        let round_trips = exec_round_trips(&backend, provider, execs).await?;
        println!(
            "| {provider} | {} | {} | {} |",
            ms(percentile(&firsts, 0.5)),
            ms(percentile(&round_trips, 0.5)),
            ms(percentile(&round_trips, 0.99)),
        );
    }
    println!(
        "\nThe sandbox image `{image}`: {:.0} MiB ({size} bytes) as the Engine reports it.",
        size as f64 / 1024.0 / 1024.0
    );
    // The backend goes with its sandboxes destroyed; give the Engine a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
