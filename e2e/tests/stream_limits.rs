//! Event streams as a careless or hostile viewer would use them, on the real stack:
//! many replays of a long log at once, a subscriber that never reads, more streams
//! than a user may hold, and a viewer who keeps a stream open after losing access.
//!
//! Events are produced the cheapest real way: the test takes over the session's
//! runner link with the token from the sandbox's runner config (the real runner is
//! stopped, and the link passes to the newcomer once the old one is silent past
//! `RUNNER_SILENT_AFTER_MS`), then sends `text_delta` events as a runner would,
//! with the intake rate raised (`RUNNER_INTAKE_PER_SEC`) so 20,000 of them take
//! seconds rather than minutes.
//!
//! Memory is measured two ways. The session reports what its streams held at most
//! (`GET /api/sessions/{id}/streams`: events and bytes of one replay page, bytes of
//! one live outbox), which must stay within a page and an outbox however long the
//! log. And the resident memory (`VmRSS` in `/proc/<pid>/status`) of the `workerd`
//! processes that run the Worker and its Durable Objects is sampled while the
//! replays run and compared with a baseline taken just before: it includes what the
//! runtime buffers per stream and its JavaScript heap, so its bound is looser, but
//! a replay that queued its whole backlog per subscriber would add every frame of
//! all fifty at once (50 x 20,000 frames of ~360 bytes, about 360 MB, more as
//! strings). Figures are in BENCHMARKS.md.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The link passes to the test's runner quickly, and intake keeps up with it.
const LINK_VARS: &[(&str, &str)] = &[
    ("RUNNER_SILENT_AFTER_MS", "1000"),
    ("RUNNER_INTAKE_PER_SEC", "100000"),
];

async fn stack_with(vars: &[(&str, &str)]) -> (Stack, ScriptedLlm) {
    let llm = ScriptedLlm::start().await.unwrap();
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
    .await
    .unwrap();
    (stack, llm)
}

// ----- the test's runner link -----------------------------------------------------

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The session's runner link, held by the test.
struct Link {
    socket: Socket,
    next_local_seq: u64,
}

/// The runner config of `session_id`'s sandbox.
fn runner_config(data_dir: &Path, session_id: &str) -> anyhow::Result<Value> {
    for entry in std::fs::read_dir(data_dir.join("sandboxes"))? {
        let path = entry?.path().join("runner").join("config.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let config: Value = serde_json::from_str(&text)?;
        if config["session_id"] == session_id {
            return Ok(config);
        }
    }
    bail!("no runner config for session {session_id}")
}

impl Link {
    /// Stops the session's real runner and takes its link over.
    async fn take_over(stack: &Stack, api: &Api, session_id: &str) -> anyhow::Result<Link> {
        api.wait_status(session_id, "idle").await?;
        let token = runner_config(&stack.data_dir(), session_id)?["token"]
            .as_str()
            .context("the runner config has a token")?
            .to_owned();
        let pids = stack.runner_pids();
        anyhow::ensure!(!pids.is_empty(), "the session has a runner");
        for pid in pids {
            if let Ok(raw) = i32::try_from(pid)
                && raw > 1
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(raw),
                    nix::sys::signal::Signal::SIGSTOP,
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let socket = loop {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let url = format!(
                "ws://127.0.0.1:{}/api/sessions/{session_id}/runner",
                stack.worker_port
            );
            let mut request = url.into_client_request()?;
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
            match tokio_tungstenite::connect_async(request).await {
                Ok((socket, _)) => break socket,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("link not free yet: {error}");
                }
                Err(error) => bail!("the link never passed to the test: {error}"),
            }
        };
        let mut link = Link {
            socket,
            next_local_seq: 1,
        };
        link.send(
            json!({"type": "hello", "session_id": session_id, "runner_version": "test",
                         "epoch": format!("e2e-{}", uuid::Uuid::new_v4().simple()),
                         "active_turn": null}),
        )
        .await?;
        let welcome = link.next_json().await?;
        anyhow::ensure!(welcome["type"] == "welcome", "{welcome}");
        Ok(link)
    }

    async fn send(&mut self, frame: Value) -> anyhow::Result<()> {
        self.socket.send(Message::text(frame.to_string())).await?;
        Ok(())
    }

    async fn next_json(&mut self) -> anyhow::Result<Value> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .context("no frame from the session in time")?
                .context("the link closed")??;
            if let Message::Text(text) = message {
                return Ok(serde_json::from_str(&text)?);
            }
        }
    }

    /// Sends `count` text deltas (`text(i)`), at most `window` unacknowledged at once,
    /// and waits until all are stored.
    async fn send_deltas(
        &mut self,
        count: usize,
        window: usize,
        text: impl Fn(usize) -> String,
    ) -> anyhow::Result<()> {
        let mut sent = 0;
        while sent < count {
            let batch = window.min(count - sent);
            for _ in 0..batch {
                let frame = json!({"type": "event", "local_seq": self.next_local_seq,
                                   "turn_id": "t-flood",
                                   "event": {"type": "text_delta", "text": text(sent)}});
                self.next_local_seq += 1;
                sent += 1;
                self.send(frame).await?;
            }
            let last = self.next_local_seq - 1;
            loop {
                let frame = self.next_json().await?;
                if frame["type"] == "ack" && frame["up_to"].as_u64() >= Some(last) {
                    break;
                }
            }
        }
        Ok(())
    }
}

// ----- reading streams -----------------------------------------------------------

/// A session stream read at the byte level: it checks that event ids run on
/// without a gap or a repeat, keeping nothing else.
struct IdStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    /// The last event id received.
    last: u64,
    /// Text to look for, and the id of the first frame that held it: reading stops
    /// there.
    marker: Option<(String, Option<u64>)>,
}

/// Opens a session's stream after `after` (as `Last-Event-ID`); answers the status
/// and the stream when it is 200, the error body otherwise.
async fn open_stream(
    http: &reqwest::Client,
    api: &Api,
    path: &str,
    after: Option<u64>,
) -> anyhow::Result<Result<IdStream, (u16, Value)>> {
    let mut request = api
        .sign(http.get(api.url(path)))
        .header("accept", "text/event-stream");
    if let Some(after) = after {
        request = request.header("last-event-id", after.to_string());
    }
    let response = tokio::time::timeout(Duration::from_secs(30), request.send())
        .await
        .context("the stream did not answer")??;
    let status = response.status().as_u16();
    if status != 200 {
        let body = response.json().await.unwrap_or(Value::Null);
        return Ok(Err((status, body)));
    }
    Ok(Ok(IdStream {
        body: response.bytes_stream().boxed(),
        buffer: String::new(),
        last: after.unwrap_or(0),
        marker: None,
    }))
}

async fn session_stream(
    http: &reqwest::Client,
    api: &Api,
    session_id: &str,
    after: Option<u64>,
) -> anyhow::Result<IdStream> {
    match open_stream(
        http,
        api,
        &format!("/api/sessions/{session_id}/events"),
        after,
    )
    .await?
    {
        Ok(stream) => Ok(stream),
        Err((status, body)) => bail!("the stream was refused: {status} {body}"),
    }
}

/// How a read ended.
#[derive(Debug, PartialEq)]
enum ReadEnd {
    /// The wanted id arrived.
    Reached,
    /// The server ended the stream first.
    Ended,
}

impl IdStream {
    /// Reads until event `until` arrived or the stream ends, within `limit`; fails on
    /// a gap or a repeat. Frames without an id (presence, keep-alives) are skipped.
    async fn read_until(&mut self, until: u64, limit: Duration) -> anyhow::Result<ReadEnd> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.last < until {
            let chunk = match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => bail!("no event {until} within {limit:?} (last {})", self.last),
                Ok(None) => return Ok(ReadEnd::Ended),
                Ok(Some(Err(error))) => {
                    // A connection cut by the server ends the stream too.
                    eprintln!("stream read error after {}: {error}", self.last);
                    return Ok(ReadEnd::Ended);
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            let mut used = 0;
            while let Some(end) = self.buffer[used..].find("\n\n") {
                let frame = &self.buffer[used..used + end];
                used += end + 2;
                let Some(id) = frame.lines().find_map(|line| line.strip_prefix("id: ")) else {
                    continue;
                };
                let id: u64 = id.trim().parse().context("a numeric event id")?;
                if id != self.last + 1 {
                    bail!("event {id} came after {}: a gap or a repeat", self.last);
                }
                self.last = id;
                if let Some((marker, found @ None)) = &mut self.marker
                    && frame.contains(marker.as_str())
                {
                    *found = Some(id);
                }
            }
            self.buffer.drain(..used);
            if matches!(self.marker, Some((_, Some(_)))) {
                return Ok(ReadEnd::Reached);
            }
        }
        Ok(ReadEnd::Reached)
    }

    /// Reads until no event has come for a second; answers the last id.
    async fn read_until_quiet(&mut self) -> anyhow::Result<u64> {
        loop {
            match self.read_until(self.last + 1, Duration::from_secs(1)).await {
                Ok(ReadEnd::Reached) => continue,
                Ok(ReadEnd::Ended) => bail!("the stream ended after {}", self.last),
                Err(error) if error.to_string().starts_with("no event") => return Ok(self.last),
                Err(error) => return Err(error),
            }
        }
    }

    /// Whether the server ends the stream within `limit` (events may still come).
    async fn ends_within(&mut self, limit: Duration) -> anyhow::Result<bool> {
        match self.read_until(u64::MAX, limit).await {
            Ok(ReadEnd::Ended) => Ok(true),
            Ok(ReadEnd::Reached) => bail!("unreachable: u64::MAX arrived"),
            Err(error) if error.to_string().starts_with("no event") => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// The seq of the newest event, read through a fresh stream from the start (which
/// also checks the whole log replays without a gap).
/// The seq of the event whose frame holds `marker`, read through a fresh stream from
/// the start (which also checks that the log replays without a gap up to it).
async fn seq_of(
    http: &reqwest::Client,
    api: &Api,
    session_id: &str,
    marker: &str,
) -> anyhow::Result<u64> {
    let mut stream = session_stream(http, api, session_id, None).await?;
    stream.marker = Some((marker.to_owned(), None));
    match stream.read_until(u64::MAX, Duration::from_secs(300)).await {
        Ok(ReadEnd::Reached) => stream
            .marker
            .and_then(|(_, seq)| seq)
            .context("the marker's seq"),
        Ok(ReadEnd::Ended) => bail!("the stream ended before {marker:?}"),
        Err(error) => Err(error),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ----- the tests -----------------------------------------------------------------

/// How much more memory workerd may hold while 50 replays of 20,000 events run than
/// before them. The runtime itself buffers about 2 MiB per unread stream and its
/// JavaScript heap grows with the traffic (together about 220 MiB here); queuing
/// every backlog whole would add about 360 MB of frames on top.
const REPLAY_GROWTH_LIMIT: u64 = 320 * 1024 * 1024;

/// The session's own bounds (`nightshift_session::streams`): events per replay page
/// and bytes per live outbox.
const REPLAY_PAGE_SIZE: u64 = 256;
const OUTBOX_MAX_BYTES: u64 = 1024 * 1024;

async fn stream_stats(api: &Api, session_id: &str) -> anyhow::Result<Value> {
    api.expect(
        Method::GET,
        &format!("/api/sessions/{session_id}/streams"),
        None,
        200,
    )
    .await
}

#[tokio::test]
async fn fifty_replays_of_a_long_log_run_in_bounded_memory_and_miss_nothing() {
    // One user opens all fifty (plus the ones that read the log first).
    let vars = [LINK_VARS, &[("MAX_OPEN_STREAMS", "60")]].concat();
    let (stack, _llm) = stack_with(&vars).await;
    let alice = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let http = reqwest::Client::new();
        let session = alice.create_session().await?;
        let mut link = Link::take_over(&stack, &alice, &session.id).await?;
        // 20,000 events of ~400 bytes on the wire each.
        let filler = "x".repeat(250);
        let started = Instant::now();
        link.send_deltas(20_000, 500, |i| format!("delta {i} {filler}"))
            .await?;
        eprintln!("20,000 events stored in {:?}", started.elapsed());
        let last = seq_of(&http, &alice, &session.id, "delta 19999 ").await?;
        anyhow::ensure!(last >= 20_000, "only {last} events in the log");

        tokio::time::sleep(Duration::from_secs(2)).await;
        let baseline = stack.workerd_rss_bytes().context("workerd's memory")?;

        // Fifty replays open at once and read nothing for a while: whatever the
        // server queued for them is in memory now.
        let opened = futures::future::join_all(
            (0..50).map(|_| session_stream(&http, &alice, &session.id, None)),
        )
        .await;
        let mut streams = opened.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        let peak = Arc::new(AtomicU64::new(baseline));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (peak, sampling, stack) = (peak.clone(), sampling.clone(), &stack);
            async move {
                while sampling.load(Ordering::SeqCst) {
                    if let Some(now) = stack.workerd_rss_bytes() {
                        peak.fetch_max(now, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let work = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            if let Some(rss) = stack.workerd_rss_bytes() {
                eprintln!(
                    "workerd RSS with 50 replays open, unread: {:.1} MiB",
                    mib(rss)
                );
            }
            // Now every replay reads to the end while the session keeps going: 300
            // more events come live during the replays.
            let more = async { link.send_deltas(300, 20, |i| format!("live {i}")).await };
            let target = last + 300;
            let reads = futures::future::join_all(
                streams
                    .iter_mut()
                    .map(|stream| stream.read_until(target, Duration::from_secs(300))),
            );
            let (more, reads) = tokio::join!(more, reads);
            more?;
            for (i, read) in reads.into_iter().enumerate() {
                let end = read.with_context(|| format!("replay {i}"))?;
                anyhow::ensure!(end == ReadEnd::Reached, "replay {i} ended early");
            }
            sampling.store(false, Ordering::SeqCst);
            anyhow::Ok(())
        };
        let (result, ()) = tokio::join!(work, sampler);
        sampling.store(false, Ordering::SeqCst);
        result?;
        if let Some(rss) = stack.workerd_rss_bytes() {
            eprintln!("workerd RSS after the replays: {:.1} MiB", mib(rss));
        }
        let peak = peak.load(Ordering::SeqCst);
        let growth = peak.saturating_sub(baseline);
        eprintln!(
            "workerd RSS: baseline {:.1} MiB, peak during 50 replays {:.1} MiB, growth {:.1} MiB",
            mib(baseline),
            mib(peak),
            mib(growth)
        );
        // What the session itself held: a page per replay, never the backlog.
        let stats = stream_stats(&alice, &session.id).await?;
        eprintln!("the session's stream stats: {stats}");
        let page_events = stats["peak_replay_page_events"]
            .as_u64()
            .context("page events")?;
        let page_bytes = stats["peak_replay_page_bytes"]
            .as_u64()
            .context("page bytes")?;
        assert!(
            page_events > 0 && page_events <= REPLAY_PAGE_SIZE,
            "a replay page held {page_events} events"
        );
        assert!(
            page_bytes <= REPLAY_PAGE_SIZE * 1024,
            "a replay page held {page_bytes} bytes"
        );
        assert!(
            stats["peak_outbox_bytes"].as_u64() <= Some(OUTBOX_MAX_BYTES),
            "{stats}"
        );
        assert_eq!(stats["dropped_behind"], 0, "a reading replay was dropped");
        assert!(
            growth < REPLAY_GROWTH_LIMIT,
            "50 replays grew workerd by {:.1} MiB (limit {:.1} MiB)",
            mib(growth),
            mib(REPLAY_GROWTH_LIMIT)
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_stalled_subscriber_is_dropped_and_resumes_where_it_left_off() {
    let (stack, _llm) = stack_with(LINK_VARS).await;
    let alice = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let http = reqwest::Client::new();
        let session = alice.create_session().await?;
        let mut link = Link::take_over(&stack, &alice, &session.id).await?;
        link.send_deltas(1, 1, |_| "start".to_owned()).await?;
        let start = seq_of(&http, &alice, &session.id, "\"start\"").await?;

        // One subscriber reads everything; the other opens and never reads.
        let mut reader = session_stream(&http, &alice, &session.id, Some(start)).await?;
        let mut stalled = session_stream(&http, &alice, &session.id, Some(start)).await?;
        // 32 MiB of events: far more than the socket buffers between the session and
        // the stalled client hold, so the session must either queue or drop it.
        let count = 1_000u64;
        let chunk = "y".repeat(32 * 1024);
        let send = link.send_deltas(count as usize, 4, |i| format!("{i} {chunk}"));
        let read = reader.read_until(start + count, Duration::from_secs(300));
        let (sent, read) = tokio::join!(send, read);
        sent?;
        assert_eq!(
            read?,
            ReadEnd::Reached,
            "the subscriber that keeps up was dropped"
        );

        // The stalled one gets what was on its way, then its stream ends.
        let end = stalled
            .read_until(start + count, Duration::from_secs(60))
            .await?;
        assert_eq!(
            end,
            ReadEnd::Ended,
            "the stalled subscriber was kept and given every event (buffered for it)"
        );
        let got = stalled.last;
        assert!(got < start + count, "it ended after {got}");
        let stats = stream_stats(&alice, &session.id).await?;
        assert!(stats["dropped_behind"].as_u64() >= Some(1), "{stats}");
        assert!(
            stats["peak_outbox_bytes"].as_u64() <= Some(OUTBOX_MAX_BYTES),
            "{stats}"
        );
        eprintln!(
            "the stalled subscriber got {} events before it was dropped",
            got - start
        );

        // It resumes from its last event and gets exactly the rest.
        let mut resumed = session_stream(&http, &alice, &session.id, Some(got)).await?;
        assert_eq!(
            resumed
                .read_until(start + count, Duration::from_secs(120))
                .await?,
            ReadEnd::Reached
        );
        Ok(())
    })
    .await;
}

/// Streams end after `STREAM_MAX_AGE_MS` (their clients reconnect where they left
/// off), which frees the slot of a closed stream even when the runtime does not
/// report the close: `wrangler dev` reports it only at times. Short here, so the
/// test does not wait the default five minutes.
const CAP_VARS: &[(&str, &str)] = &[("MAX_OPEN_STREAMS", "3"), ("STREAM_MAX_AGE_MS", "20000")];

#[tokio::test]
async fn a_user_cannot_hold_more_streams_than_the_cap_and_closing_one_frees_a_slot() {
    let (stack, _llm) = stack_with(CAP_VARS).await;
    let alice = stack.signed_in_api("alice@example.com").await.unwrap();
    let bob = stack
        .signed_in_member(&alice, "bob@example.com")
        .await
        .unwrap();
    with_logs(&stack, async {
        let http = reqwest::Client::new();
        let session = alice.create_session().await?;
        alice
            .share(&session.id, &bob.user_id().await?, "viewer")
            .await?;
        let path = format!("/api/sessions/{}/events", session.id);

        for (what, path) in [("session", path.as_str()), ("session-list", "/api/events")] {
            let mut open = Vec::new();
            for _ in 0..3 {
                match open_stream(&http, &alice, path, None).await? {
                    Ok(stream) => open.push(stream),
                    Err((status, body)) => bail!("{what} stream refused early: {status} {body}"),
                }
            }
            match open_stream(&http, &alice, path, None).await? {
                Ok(_) => bail!("a fourth {what} stream was let in"),
                Err((status, body)) => {
                    assert_eq!(status, 429, "{body}");
                    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
                    assert!(
                        body["error"]["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("MAX_OPEN_STREAMS")),
                        "{body}"
                    );
                }
            }
            // The cap is the user's: another viewer still gets in.
            match open_stream(&http, &bob, path, None).await? {
                Ok(_) => {}
                Err((status, body)) => bail!("bob was refused a {what} stream: {status} {body}"),
            }
            if what == "session" {
                // The refusal changed nothing: the open streams still get new events.
                let mut befores = Vec::new();
                for stream in &mut open {
                    befores.push(stream.read_until_quiet().await?);
                }
                alice.send(&session.id, "hello").await?;
                for (stream, before) in open.iter_mut().zip(befores) {
                    assert_eq!(
                        stream
                            .read_until(before + 1, Duration::from_secs(10))
                            .await?,
                        ReadEnd::Reached,
                        "an open stream ended after the refusal"
                    );
                }
            }
            // Closing one frees a slot.
            drop(open.pop());
            let deadline = Instant::now() + Duration::from_secs(45);
            loop {
                match open_stream(&http, &alice, path, None).await? {
                    Ok(_) => break,
                    Err((status, body)) if Instant::now() < deadline => {
                        eprintln!("{what} slot not free yet: {status} {body}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err((status, body)) => {
                        bail!("closing a {what} stream never freed its slot: {status} {body}")
                    }
                }
            }
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_viewer_who_loses_access_has_their_open_stream_ended_promptly() {
    let (stack, _llm) = stack_with(&[("STREAM_ACCESS_CHECK_MS", "2000")]).await;
    let alice = stack.signed_in_api("alice@example.com").await.unwrap();
    let bob = stack
        .signed_in_member(&alice, "bob@example.com")
        .await
        .unwrap();
    let carol = stack
        .signed_in_member(&alice, "carol@example.com")
        .await
        .unwrap();
    let dave = stack
        .signed_in_member(&alice, "dave@example.com")
        .await
        .unwrap();
    with_logs(&stack, async {
        let http = reqwest::Client::new();
        let session = alice.create_session().await?;
        let (bob_id, carol_id, dave_id) = (
            bob.user_id().await?,
            carol.user_id().await?,
            dave.user_id().await?,
        );
        alice.share(&session.id, &bob_id, "collaborator").await?;
        alice.share(&session.id, &carol_id, "viewer").await?;
        // Dave watches as a team admin, without a share.
        alice
            .expect::<Value>(
                Method::PATCH,
                &format!("/api/admin/members/{dave_id}"),
                Some(&json!({"role": "admin"}).to_string()),
                200,
            )
            .await?;
        let mut bobs = session_stream(&http, &bob, &session.id, None).await?;
        let mut carols = session_stream(&http, &carol, &session.id, None).await?;
        let mut daves = session_stream(&http, &dave, &session.id, None).await?;
        let mut alices = session_stream(&http, &alice, &session.id, None).await?;
        // Their session lists (which show the session) are open too.
        let list = |api: &Api| {
            let (http, api) = (http.clone(), api.clone());
            async move {
                match open_stream(&http, &api, "/api/events", None).await? {
                    Ok(stream) => Ok(stream),
                    Err((status, body)) => bail!("the list stream was refused: {status} {body}"),
                }
            }
        };
        let mut bobs_list = list(&bob).await?;
        let mut carols_list = list(&carol).await?;
        for stream in [&mut bobs, &mut carols, &mut daves, &mut alices] {
            stream.read_until(1, Duration::from_secs(30)).await?;
        }

        // A collaborator's share is removed: their stream ends at once.
        let removed = alice
            .raw(
                Method::DELETE,
                &format!("/api/sessions/{}/shares/{bob_id}", session.id),
                None,
            )
            .await?;
        assert_eq!(removed.status, 204);
        assert!(
            bobs.ends_within(Duration::from_secs(5)).await?,
            "the removed collaborator's stream kept flowing"
        );
        assert!(
            bobs_list.ends_within(Duration::from_secs(5)).await?,
            "the removed collaborator's session list kept its view of the session"
        );
        match open_stream(
            &http,
            &bob,
            &format!("/api/sessions/{}/events", session.id),
            None,
        )
        .await?
        {
            Ok(_) => bail!("bob opened the stream again"),
            Err((status, _)) => assert_eq!(status, 404),
        }

        // A viewer removed from the team: ended at once.
        let removed = alice
            .raw(
                Method::DELETE,
                &format!("/api/admin/members/{carol_id}"),
                None,
            )
            .await?;
        assert_eq!(removed.status, 204, "{}", removed.body);
        assert!(
            carols.ends_within(Duration::from_secs(5)).await?,
            "the removed member's stream kept flowing"
        );
        assert!(
            carols_list.ends_within(Duration::from_secs(5)).await?,
            "the removed member's session list kept flowing"
        );

        // An admin demoted to member sees the session no more: the session's periodic
        // check (every 2 s here) ends the stream.
        alice
            .expect::<Value>(
                Method::PATCH,
                &format!("/api/admin/members/{dave_id}"),
                Some(&json!({"role": "member"}).to_string()),
                200,
            )
            .await?;
        assert!(
            daves.ends_within(Duration::from_secs(8)).await?,
            "the demoted admin's stream kept flowing"
        );

        // The owner's stream is untouched and still live.
        let before = alices.last;
        alice.send(&session.id, "still here").await?;
        assert_eq!(
            alices
                .read_until(before + 1, Duration::from_secs(30))
                .await?,
            ReadEnd::Reached
        );
        Ok(())
    })
    .await;
}
