//! The spine, end to end: a prompt goes from the API to an agent in a local sandbox
//! and its work streams back, on the real stack (wrangler dev, the sandbox backend,
//! runners under bubblewrap) against the scripted LLM.

use std::time::Duration;

use nightshift_e2e::client::{assert_complete_log, assert_contiguous, turn_text};
use nightshift_e2e::scripted_llm::{Script, Step};
use nightshift_e2e::stack::{Stack, StackOptions, stack_with_llm, with_logs};
use nightshift_protocol::api::{MessageState, SessionStatus};
use nightshift_protocol::events::{EventBody, SessionEvent, SessionListEvent, TurnOutcome};
use serde_json::json;

/// Runs a test body; on failure prints the stack's logs before failing.
fn is_turn_finished(body: &EventBody) -> bool {
    matches!(body, EventBody::TurnFinished { .. })
}

fn turn_finished_count(events: &[SessionEvent]) -> usize {
    events.iter().filter(|e| is_turn_finished(&e.body)).count()
}

#[tokio::test]
async fn scripted_tool_call_writes_the_file_in_that_sessions_workspace() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-WRITE",
            Script::new(vec![
                Step::tool("write_file", json!({"path": "notes/hello.txt", "content": "hello from the agent\n"})),
                Step::text("I wrote notes/hello.txt."),
            ]),
        );
        let session = api.create_session().await?;
        let other = api.create_session().await?;
        let mut events = api.events(&session.id, None).await?;
        let accepted = api.send(&session.id, "MARK-WRITE please write a note").await?;
        assert_eq!(accepted.position, 0);

        let seen = events.until(is_turn_finished).await?;
        assert_contiguous(&seen);
        let kinds: Vec<&str> = seen
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::TurnStarted { .. } => Some("started"),
                EventBody::ToolCallStarted { .. } => Some("tool_started"),
                EventBody::ToolCallFinished { .. } => Some("tool_finished"),
                EventBody::TurnFinished { .. } => Some("finished"),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["started", "tool_started", "tool_finished", "finished"]);
        let Some(EventBody::ToolCallStarted { tool, args, .. }) =
            seen.iter().map(|e| &e.body).find(|b| matches!(b, EventBody::ToolCallStarted { .. }))
        else {
            anyhow::bail!("no tool call started");
        };
        assert_eq!(tool, "write_file");
        assert_eq!(args["path"], "notes/hello.txt");
        let turn_id = seen.last().and_then(|e| e.turn_id.clone()).expect("turn events carry their turn id");
        assert_eq!(turn_text(&seen, &turn_id), "I wrote notes/hello.txt.");
        assert!(matches!(seen.last().map(|e| &e.body),
            Some(EventBody::TurnFinished { outcome: TurnOutcome::Done, usage, .. }) if usage.output_tokens > 0));

        // The file is really in this session's sandbox workspace, and only there.
        let session = api.session(&session.id).await?;
        let sandbox = session.sandbox_id.clone().expect("a provisioned session names its sandbox");
        let written = std::fs::read_to_string(stack.workspace(&sandbox).join("notes/hello.txt"))?;
        assert_eq!(written, "hello from the agent\n");
        let other = api.session(&other.id).await?;
        let other_sandbox = other.sandbox_id.expect("the second session has its own sandbox");
        assert_ne!(other_sandbox, sandbox);
        assert!(!stack.workspace(&other_sandbox).join("notes/hello.txt").exists());

        // The persisted state agrees with the stream.
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].state, MessageState::Done);
        assert_eq!(messages[0].reply.as_deref(), Some("I wrote notes/hello.txt."));
        assert_eq!(api.session(&session.id).await?.status, SessionStatus::Idle);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn last_event_id_replays_exactly_the_missed_events_also_inside_a_compacted_turn() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-REPLAY",
            Script::new(vec![Step::slow_text("w", 30, Duration::from_millis(20))]),
        );
        let session = api.create_session().await?;
        // Watched live, the turn streams delta by delta with no gap.
        let mut live_stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-REPLAY go").await?;
        let live = live_stream.until(is_turn_finished).await?;
        assert_contiguous(&live);
        let deltas: Vec<&SessionEvent> = live
            .iter()
            .filter(|e| matches!(e.body, EventBody::TextDelta { .. }))
            .collect();
        assert_eq!(deltas.len(), 30);

        // Once the turn ended, its log holds one joined text for the run.
        let stored = api
            .history_until(&session.id, |seen| turn_finished_count(seen) == 1)
            .await?;
        assert_complete_log(&stored);
        let turn_id = live
            .last()
            .and_then(|e| e.turn_id.clone())
            .expect("a turn id");
        let streamed = turn_text(&live, &turn_id);
        assert_eq!(turn_text(&stored, &turn_id), streamed);
        let joined: Vec<&SessionEvent> = stored
            .iter()
            .filter(|e| matches!(e.body, EventBody::Text { .. }))
            .collect();
        let (first, last) = (deltas[0].seq, deltas[29].seq);
        assert!(
            matches!(joined.as_slice(), [one] if one.seq == last
                && matches!(one.body, EventBody::Text { from_seq, .. } if from_seq == first)),
            "one joined text at the run's last seq: {joined:#?}"
        );
        assert!(
            !stored
                .iter()
                .any(|e| matches!(e.body, EventBody::TextDelta { .. })),
            "no delta is left"
        );

        // A client that saw events up to k reconnects with Last-Event-ID: k. Outside
        // the run it gets exactly the stored events after k; inside it, the joined
        // text that replaces what it built from the run (protocol/src/events.rs).
        for k in [0, 1, first, first + 9, last - 1, last] {
            let expected: Vec<SessionEvent> =
                stored.iter().filter(|e| e.seq > k).cloned().collect();
            let mut stream = api.events(&session.id, Some(k)).await?;
            let mut replayed = Vec::new();
            for _ in 0..expected.len() {
                replayed.push(stream.next_event().await?);
            }
            assert_eq!(replayed, expected, "replay after {k}");
            if (first..last).contains(&k) {
                assert!(matches!(&replayed[0].body,
                    EventBody::Text { from_seq, text } if *from_seq == first && *text == streamed));
            }
        }
        // And nothing is sent twice: after the replay the next event is a new one.
        let high = stored.last().map_or(0, |e| e.seq);
        api.send(&session.id, "unscripted follow-up").await?;
        let mut stream = api.events(&session.id, Some(high)).await?;
        let next = stream.next_event().await?;
        assert_eq!(next.seq, high + 1);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn history_survives_a_wrangler_restart() {
    let (mut stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    llm.on("MARK-PERSIST", Script::new(vec![Step::text("remembered")]));
    let session = api.create_session().await.unwrap();
    api.send(&session.id, "MARK-PERSIST keep this")
        .await
        .unwrap();
    api.wait_settled(&session.id).await.unwrap();
    let before = api
        .history_until(&session.id, |seen| turn_finished_count(seen) == 1)
        .await
        .unwrap();

    stack.restart_worker().await.unwrap();

    with_logs(&stack, async {
        let sessions = api.sessions().await?;
        assert!(sessions.iter().any(|s| s.id == session.id));
        let messages = api.messages(&session.id).await?;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].reply.as_deref(), Some("remembered"));
        let after = api
            .history_until(&session.id, |seen| seen.len() >= before.len())
            .await?;
        assert_eq!(after, before);
        // The runner reconnects to the restarted Worker and the session works on.
        llm.on("MARK-AFTER", Script::new(vec![Step::text("still here")]));
        api.send(&session.id, "MARK-AFTER again").await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[1].reply.as_deref(), Some("still here"));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn restarting_wrangler_mid_turn_loses_and_doubles_no_event() {
    let (mut stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    let step = Step::slow_text("chunk", 60, Duration::from_millis(100));
    let expected = step.full_text();
    llm.on("MARK-BLIP", Script::new(vec![step]));
    let session = api.create_session().await.unwrap();
    api.wait_status(&session.id, "idle").await.unwrap();
    let mut stream = api.events(&session.id, None).await.unwrap();
    api.send(&session.id, "MARK-BLIP stream for a while")
        .await
        .unwrap();
    // Wait until text is flowing, then restart the Worker under the running turn.
    stream
        .until(|b| matches!(b, EventBody::TextDelta { .. }))
        .await
        .unwrap();
    drop(stream);
    stack.restart_worker().await.unwrap();

    with_logs(&stack, async {
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[0].state, MessageState::Done, "{messages:?}");
        let events = api
            .history_until(&session.id, |seen| turn_finished_count(seen) == 1)
            .await?;
        assert_complete_log(&events);
        let turn_id = messages[0]
            .turn_id
            .clone()
            .expect("a finished prompt names its turn");
        assert_eq!(
            turn_text(&events, &turn_id),
            expected,
            "text lost or doubled across the restart"
        );
        assert_eq!(messages[0].reply.as_deref(), Some(expected.as_str()));
        assert_eq!(
            messages[0].attempts, 1,
            "the live runner resumed; nothing was rerun"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_killed_runner_interrupts_the_turn_and_the_prompt_completes_on_a_new_runner() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-CRASH",
            Script::new(vec![Step::slow_text(
                "step",
                40,
                Duration::from_millis(100),
            )]),
        );
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-CRASH work slowly").await?;
        let mut seen = stream
            .until(|b| matches!(b, EventBody::TextDelta { .. }))
            .await?;
        assert!(stack.kill_runners() >= 1, "a runner was running");

        seen.extend(
            stream
                .until(|b| matches!(b, EventBody::TurnInterrupted { .. }))
                .await?,
        );
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e.body, EventBody::TurnFinished { .. })),
            "{seen:?}"
        );
        // What the dead runner had streamed stays in the history.
        let history = api
            .history_until(&session.id, |h| h.len() >= seen.len())
            .await?;
        assert!(
            history
                .iter()
                .any(|e| matches!(e.body, EventBody::TextDelta { .. }))
        );
        // The backend restarts the runner; the prompt runs again from the front.
        stream
            .until(|b| matches!(b, EventBody::TurnStarted { attempt: 2, .. }))
            .await?;
        stream.until(is_turn_finished).await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].state, MessageState::Done);
        assert_eq!(messages[0].attempts, 2);
        assert_eq!(llm.calls_for("MARK-CRASH"), 2);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn abort_stops_a_long_tool_call() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-ABORT",
            Script::new(vec![Step::tool("bash", json!({"command": "sleep 617"}))]),
        );
        let session = api.create_session().await?;
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-ABORT sleep a long time")
            .await?;
        stream
            .until(|b| matches!(b, EventBody::ToolCallStarted { .. }))
            .await?;
        // The command is really running in the sandbox.
        let running = || {
            std::process::Command::new("pgrep")
                .args(["-f", "sleep 617"])
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false)
        };
        let started = tokio::time::Instant::now();
        while !running() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "the sleep never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        api.abort(&session.id).await?;
        let seen = stream.until(is_turn_finished).await?;
        assert!(matches!(
            seen.last().map(|e| &e.body),
            Some(EventBody::TurnFinished {
                outcome: TurnOutcome::Aborted,
                ..
            })
        ));
        assert!(started.elapsed() < Duration::from_secs(30));
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[0].state, MessageState::Aborted);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!running(), "the aborted command's process is gone");
        // The session takes the next prompt.
        api.send(&session.id, "next one").await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[1].state, MessageState::Done);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn follow_ups_queue_and_run_in_order_and_queued_ones_can_be_cancelled() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-FIRST",
            Script::new(vec![Step::slow_text("a", 10, Duration::from_millis(100))]),
        );
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let first = api.send(&session.id, "MARK-FIRST slow one").await?;
        let second = api.send(&session.id, "second").await?;
        let third = api.send(&session.id, "third").await?;
        let fourth = api.send(&session.id, "fourth").await?;
        assert_eq!(first.position, 0);
        assert_eq!(
            (second.position, third.position, fourth.position),
            (0, 1, 2)
        );
        assert_eq!(second.message.state, MessageState::Queued);

        let cancelled = api
            .raw(
                reqwest::Method::DELETE,
                &format!("/api/sessions/{}/messages/{}", session.id, third.message_id),
                None,
            )
            .await?;
        assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
        assert_eq!(cancelled.body["state"], "cancelled");
        // Cancelling something already running is a conflict, and changes nothing.
        let conflict = api
            .raw(
                reqwest::Method::DELETE,
                &format!("/api/sessions/{}/messages/{}", session.id, first.message_id),
                None,
            )
            .await?;
        assert_eq!(
            (conflict.status, conflict.error_code()),
            (409, Some("conflict"))
        );

        let messages = api.wait_settled(&session.id).await?;
        let states: Vec<_> = messages
            .iter()
            .map(|m| (m.content.as_str(), m.state))
            .collect();
        assert_eq!(
            states,
            [
                ("MARK-FIRST slow one", MessageState::Done),
                ("second", MessageState::Done),
                ("third", MessageState::Cancelled),
                ("fourth", MessageState::Done),
            ]
        );
        assert_eq!(messages[1].reply.as_deref(), Some("echo: second"));
        // They ran in order: each started after the previous finished.
        let events = api
            .history_until(&session.id, |seen| turn_finished_count(seen) == 3)
            .await?;
        let started: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::TurnStarted { content, .. } => Some(content.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(started, ["MARK-FIRST slow one", "second", "fourth"]);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let session = api.create_session().await?;
        let path = format!("/api/sessions/{}/messages", session.id);
        let post = reqwest::Method::POST;
        let cases: Vec<(String, u16, &str)> = vec![
            ("{not json".into(), 400, "invalid_json"),
            (r#"{"content": 42}"#.into(), 400, "invalid_json"),
            (r#"{"text": "wrong field"}"#.into(), 400, "invalid_json"),
            (r#"{"content": "   \n "}"#.into(), 400, "empty_message"),
            (
                json!({"content": "x".repeat(64 * 1024 + 1)}).to_string(),
                413,
                "message_too_large",
            ),
            ("x".repeat(300 * 1024), 413, "payload_too_large"),
        ];
        for (body, status, code) in cases {
            let answer = api.raw(post.clone(), &path, Some(&body)).await?;
            assert_eq!(
                (answer.status, answer.error_code()),
                (status, Some(code)),
                "body {:.40}",
                body
            );
            assert!(
                answer.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
        assert!(
            api.messages(&session.id).await?.is_empty(),
            "nothing was stored"
        );

        let unknown = api
            .raw(
                post.clone(),
                "/api/sessions/no-such-session/messages",
                Some(r#"{"content":"hi"}"#),
            )
            .await?;
        assert_eq!(
            (unknown.status, unknown.error_code()),
            (404, Some("not_found"))
        );
        let unknown = api
            .raw(reqwest::Method::GET, "/api/sessions/no-such-session", None)
            .await?;
        assert_eq!(
            (unknown.status, unknown.error_code()),
            (404, Some("not_found"))
        );
        let unknown = api
            .raw(
                reqwest::Method::GET,
                "/api/sessions/no-such-session/events",
                None,
            )
            .await?;
        assert_eq!(unknown.status, 404);
        let bad_session = api
            .raw(post.clone(), "/api/sessions", Some(r#"{"title": 5}"#))
            .await?;
        assert_eq!(
            (bad_session.status, bad_session.error_code()),
            (400, Some("invalid_json"))
        );
        let no_route = api.raw(reqwest::Method::GET, "/api/nope", None).await?;
        assert_eq!(
            (no_route.status, no_route.error_code()),
            (404, Some("not_found"))
        );
        let sessions = api.sessions().await?;
        assert_eq!(sessions.len(), 1, "the refused create stored nothing");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_wrong_runner_token_is_refused_before_the_upgrade() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let session = api.create_session().await?;
        let other = api.create_session().await?;
        let url = format!(
            "ws://127.0.0.1:{}/api/sessions/{}/runner",
            stack.worker_port, session.id
        );
        for token in [
            None,
            Some("nonsense".to_string()),
            Some(format!("v1.{}.9999999999.AAAA", session.id)),
        ] {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut request = url.clone().into_client_request()?;
            if let Some(token) = &token {
                request
                    .headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse()?);
            }
            match tokio_tungstenite::connect_async(request).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status().as_u16(), 401, "token {token:?}");
                }
                Err(other) => anyhow::bail!("unexpected error {other}"),
                Ok(_) => anyhow::bail!("token {token:?} was accepted"),
            }
        }
        // The refusal carries the error envelope (read with a plain HTTP client, since
        // a WebSocket client does not keep the body of a refused upgrade).
        let refused = reqwest::Client::new()
            .get(format!(
                "{}/api/sessions/{}/runner",
                stack.worker_url(),
                session.id
            ))
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("authorization", "Bearer nonsense")
            .send()
            .await?;
        assert_eq!(refused.status().as_u16(), 401);
        let body: serde_json::Value = refused.json().await?;
        assert_eq!(body["error"]["code"], "invalid_runner_token");
        // The real runner of the other session still works: nothing was disturbed.
        api.send(&other.id, "hello").await?;
        let messages = api.wait_settled(&other.id).await?;
        assert_eq!(messages[0].reply.as_deref(), Some("echo: hello"));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_session_without_llm_configuration_fails_its_turn_saying_what_to_set() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let session = api.create_session().await?;
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "anything").await?;
        let seen = stream.until(is_turn_finished).await?;
        let error = seen
            .iter()
            .find_map(|e| match &e.body {
                EventBody::Error { message } => Some(message.clone()),
                _ => None,
            })
            .expect("an error event");
        for name in ["LLM_BASE_URL", "LLM_MODEL", "ANTHROPIC_API_KEY"] {
            assert!(error.contains(name), "{error}");
        }
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[0].state, MessageState::Failed);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_sessions_stream_announces_created_sessions_and_status_changes() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let mut list = api.list_events().await?;
        let session = api.create_session().await?;
        let mut saw_created = false;
        let mut saw_idle = false;
        while !(saw_created && saw_idle) {
            match list.next_list_event().await? {
                SessionListEvent::SessionCreated { session: s } if s.id == session.id => {
                    saw_created = true
                }
                SessionListEvent::SessionStatusChanged { session_id, status }
                    if session_id == session.id =>
                {
                    saw_idle |= status == SessionStatus::Idle;
                }
                _ => {}
            }
        }
        api.send(&session.id, "Title from the first prompt\nsecond line")
            .await?;
        loop {
            if let SessionListEvent::SessionTitleChanged { session_id, title } =
                list.next_list_event().await?
                && session_id == session.id
            {
                assert_eq!(title, "Title from the first prompt");
                break;
            }
        }
        let health = api.raw(reqwest::Method::GET, "/api/health", None).await?;
        assert_eq!(health.status, 200);
        assert_eq!(
            health.body["worker"]["version"],
            nightshift_protocol::VERSION
        );
        assert_eq!(health.body["sandbox_backend"]["ok"], true);
        assert_eq!(
            health.body["sandbox_backend"]["version"],
            nightshift_protocol::VERSION
        );
        Ok(())
    })
    .await;
}

/// The user messages of an LLM request, in order.
fn user_texts(request: &serde_json::Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_runner_started_again_continues_the_conversation_between_turns_and_mid_turn() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-MIDKILL",
            Script::new(vec![
                Step::tool("bash", json!({"command": "echo started && sleep 4"})),
                Step::text("slept"),
            ]),
        );
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        api.send(&session.id, "the codeword is PAPAYA").await?;
        api.wait_settled(&session.id).await?;

        // Killed between turns: the new runner's next request carries the first turn.
        assert!(stack.kill_runners() >= 1, "a runner was running");
        api.send(&session.id, "what was the codeword?").await?;
        api.wait_settled(&session.id).await?;
        let last = llm.requests().last().cloned().unwrap();
        assert_eq!(
            user_texts(&last),
            ["the codeword is PAPAYA", "what was the codeword?"],
            "{last}"
        );
        assert!(
            last.to_string().contains("echo: the codeword is PAPAYA"),
            "the first turn's reply is in the request: {last}"
        );

        // Killed in the middle of a tool call: the turn runs again once, from its
        // start, and the turn after it sees every turn once.
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-MIDKILL sleep").await?;
        stream
            .until(|b| matches!(b, EventBody::ToolCallStarted { .. }))
            .await?;
        assert!(stack.kill_runners() >= 1, "a runner was running");
        stream
            .until(|b| matches!(b, EventBody::TurnStarted { attempt: 2, .. }))
            .await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages.last().unwrap().state, MessageState::Done);
        api.send(&session.id, "and now?").await?;
        api.wait_settled(&session.id).await?;
        let last = llm.requests().last().cloned().unwrap();
        assert_eq!(
            user_texts(&last),
            [
                "the codeword is PAPAYA",
                "what was the codeword?",
                "MARK-MIDKILL sleep",
                "and now?"
            ],
            "{last}"
        );
        let text = last.to_string();
        assert!(text.contains("slept"), "the re-run turn's reply: {last}");
        assert_eq!(
            text.matches("Not run to the end").count(),
            0,
            "the cut-short attempt was replaced by the re-run: {last}"
        );
        Ok(())
    })
    .await;
}
