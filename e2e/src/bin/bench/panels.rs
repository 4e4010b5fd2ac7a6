//! The panels' part of `make bench`, on its own stack with the panels on
//! (`WORKSPACE_PANELS=true`, every sandbox running its gateway and services):
//!
//! - session created -> each panel ready: `POST /api/sessions`, then
//!   `GET /api/sessions/{id}/workspace` every 50 ms until the panel says `ready`
//!   (terminal, desktop, VS Code), for `BENCH_PANEL_SESSIONS` sessions one after
//!   another (each ended before the next, so they do not share the machine);
//! - terminal keystroke -> echo: one character typed into a terminal tab through the
//!   whole path (Worker panel proxy -> backend relay -> gateway -> PTY) until the
//!   shell's echo of it comes back, `BENCH_KEYSTROKES` times after a warm-up.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use nightshift_e2e::client::Api;
use nightshift_e2e::panels::{Socket, panel_socket};
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::{ms, percentile, setting};

const KEYSTROKE_WARMUP: usize = 20;
/// A panel not ready by then is reported as such, not waited for.
const READY_LIMIT: Duration = Duration::from_secs(120);
const PANELS: [&str; 3] = ["terminal", "desktop", "vscode"];

/// Runs the section and prints its rows of the figures table.
pub async fn run(llm: &ScriptedLlm) -> anyhow::Result<()> {
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![("WORKSPACE_PANELS".to_owned(), "true".to_owned())],
    })
    .await?;
    let result = measure(&stack).await;
    if result.is_err() {
        stack.dump_logs();
    }
    result
}

async fn measure(stack: &Stack) -> anyhow::Result<()> {
    let sessions = setting("BENCH_PANEL_SESSIONS", 5);
    let keystrokes = setting("BENCH_KEYSTROKES", 200);
    let api = stack.signed_in_api("bench-panels@example.com").await?;

    let mut ready: Vec<Vec<Duration>> = vec![Vec::new(); PANELS.len()];
    let mut last_session = None;
    for _ in 0..sessions {
        if let Some(previous) = last_session.take() {
            let path = format!("/api/sessions/{previous}");
            let _ = api.raw(Method::DELETE, &path, None).await;
        }
        let started = Instant::now();
        let session = api.create_session().await?;
        let times = time_to_ready(&api, &session.id, started).await?;
        for (all, time) in ready.iter_mut().zip(times) {
            all.push(time);
        }
        last_session = Some(session.id);
    }
    let session_id = last_session.context("no session was created")?;

    let workspace: Value = api
        .expect(
            Method::GET,
            &format!("/api/sessions/{session_id}/workspace"),
            None,
            200,
        )
        .await?;
    let terminal = workspace["panels"]
        .as_array()
        .and_then(|panels| panels.iter().find(|panel| panel["kind"] == "terminal"))
        .and_then(|panel| panel["url"].as_str())
        .context("a terminal URL")?
        .to_owned();
    let mut socket = panel_socket(&format!("{terminal}bench"))
        .await
        .map_err(|status| anyhow::anyhow!("the terminal was refused: {status}"))?;
    let mut round_trips = Vec::new();
    for i in 0..KEYSTROKE_WARMUP + keystrokes {
        let key = char::from(b'a' + (i % 26) as u8);
        // Nothing older may be taken for this key's echo (a prompt holds letters).
        drain(&mut socket, Duration::from_millis(20)).await;
        let elapsed = keystroke(&mut socket, key).await?;
        if i >= KEYSTROKE_WARMUP {
            round_trips.push(elapsed);
        }
        // Keep the shell's line short: Ctrl-U erases it now and then.
        if i % 50 == 49 {
            socket.send(Message::Binary(vec![0x15].into())).await?;
            drain(&mut socket, Duration::from_millis(200)).await;
        }
    }
    round_trips.sort();

    for (name, mut times) in PANELS.iter().zip(ready) {
        times.sort();
        println!(
            "| session created -> {name} panel ready, p50 ({sessions} sessions) | {} |",
            ms(percentile(&times, 50.0))
        );
    }
    println!(
        "| terminal keystroke -> echo through the panel proxy, p50 ({keystrokes} keys) | {} |",
        ms(percentile(&round_trips, 50.0))
    );
    println!(
        "| terminal keystroke -> echo through the panel proxy, p99 | {} |",
        ms(percentile(&round_trips, 99.0))
    );
    Ok(())
}

/// The time from `started` until each of [`PANELS`] says `ready`.
async fn time_to_ready(
    api: &Api,
    session_id: &str,
    started: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut ready: Vec<Option<Duration>> = vec![None; PANELS.len()];
    let path = format!("/api/sessions/{session_id}/workspace");
    while ready.iter().any(Option::is_none) {
        if started.elapsed() > READY_LIMIT {
            bail!("panels not ready after {READY_LIMIT:?}: {ready:?}");
        }
        let answer = api.raw(Method::GET, &path, None).await?;
        let workspace = answer.body;
        for (slot, name) in ready.iter_mut().zip(PANELS) {
            let is_ready = workspace["panels"]
                .as_array()
                .and_then(|panels| panels.iter().find(|panel| panel["kind"] == name))
                .is_some_and(|panel| panel["state"] == "ready");
            if slot.is_none() && is_ready {
                *slot = Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(ready.into_iter().flatten().collect())
}

/// Sends one key as a binary frame and waits for it to come back in the output.
async fn keystroke(socket: &mut Socket, key: char) -> anyhow::Result<Duration> {
    let started = Instant::now();
    socket.send(Message::Binary(vec![key as u8].into())).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .with_context(|| format!("no echo of {key:?}"))?
            .context("the terminal closed")??;
        if let Message::Binary(bytes) = frame
            && bytes.contains(&(key as u8))
        {
            return Ok(started.elapsed());
        }
    }
}

/// Reads output until none has come for `quiet`.
async fn drain(socket: &mut Socket, quiet: Duration) {
    while let Ok(Some(_)) = tokio::time::timeout(quiet, socket.next()).await {}
}
