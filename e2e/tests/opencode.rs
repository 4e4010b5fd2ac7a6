//! OpenCode as a session's agent, end to end: the real stack (wrangler dev, the
//! sandbox backend, runners under bubblewrap), a real `opencode serve` started by the
//! runner inside the sandbox, and the scripted LLM (OpenAI wire format) behind the
//! runner's key-holding proxy. Needs the `opencode-ai` npm package (`npm ci`).

use std::time::Duration;

use nightshift_e2e::client::{Api, turn_text};
use nightshift_e2e::scripted_llm::{Script, Step};
use nightshift_e2e::stack::{Stack, stack_with_llm};
use nightshift_protocol::api::AgentKind;
use nightshift_protocol::events::{EventBody, QuestionKind, SessionEvent, TurnOutcome};
use serde_json::json;

async fn with_logs<F: std::future::Future<Output = anyhow::Result<()>>>(stack: &Stack, body: F) {
    if let Err(error) = body.await {
        stack.dump_logs();
        for path in glob_opencode_logs(stack) {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("----- {} -----", path.display());
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        panic!("{error:?}");
    }
}

fn glob_opencode_logs(stack: &Stack) -> Vec<std::path::PathBuf> {
    let sandboxes = stack.data_dir().join("sandboxes");
    std::fs::read_dir(sandboxes)
        .map(|dirs| {
            dirs.filter_map(Result::ok)
                .map(|dir| dir.path().join("runner/opencode/opencode.log"))
                .filter(|path| path.is_file())
                .collect()
        })
        .unwrap_or_default()
}

fn finished(body: &EventBody) -> bool {
    matches!(body, EventBody::TurnFinished { .. })
}

fn outcome_of(events: &[SessionEvent]) -> Option<TurnOutcome> {
    events.iter().rev().find_map(|event| match &event.body {
        EventBody::TurnFinished { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

fn process_running(pattern: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false)
}

/// Waits for the first turn's events up to its end (OpenCode starts on first use,
/// which takes a while on a busy machine).
async fn run_turn(api: &Api, session_id: &str, content: &str) -> anyhow::Result<Vec<SessionEvent>> {
    let mut stream = api.events(session_id, None).await?;
    let before = count_finished(api, session_id).await?;
    api.send(session_id, content).await?;
    let mut seen = 0;
    let mut read = Vec::new();
    loop {
        let event = stream.next_event().await?;
        let done = finished(&event.body);
        read.push(event);
        if done {
            seen += 1;
            if seen > before {
                return Ok(read);
            }
        }
    }
}

async fn count_finished(api: &Api, session_id: &str) -> anyhow::Result<usize> {
    let messages = api.messages(session_id).await?;
    Ok(messages.iter().filter(|m| m.state.is_final()).count())
}

#[tokio::test]
async fn opencode_writes_a_file_after_a_permission_answer_and_abort_stops_a_long_command() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "WRITE-NOTES",
            Script::new(vec![
                Step::tool(
                    "write",
                    json!({"filePath": "/workspace/notes.txt", "content": "written by opencode\n"}),
                ),
                Step::text("Wrote notes.txt."),
            ]),
        );
        llm.on(
            "LONG-SLEEP",
            Script::new(vec![
                Step::tool(
                    "bash",
                    json!({"command": "sleep 417; echo never", "description": "sleep"}),
                ),
                Step::text("unreachable"),
            ]),
        );
        let api = stack.signed_in_api("alice@example.com").await?;
        let session = api
            .create_session_with(json!({"agent": "opencode"}))
            .await?;
        assert_eq!(session.agent, AgentKind::Opencode);
        let sandbox = api.wait_status(&session.id, "idle").await?.sandbox_id;
        let workspace = stack.workspace(sandbox.as_deref().unwrap_or_default());

        // The write needs permission (the session asks): answer it through the API.
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "please WRITE-NOTES").await?;
        let asked = stream
            .until(|body| {
                matches!(body, EventBody::QuestionAsked { .. }) || finished(body)
            })
            .await?;
        let Some(EventBody::QuestionAsked {
            question_id,
            kind,
            text,
            options,
            ..
        }) = asked.last().map(|e| e.body.clone())
        else {
            anyhow::bail!("the turn ended without asking: {asked:#?}");
        };
        assert_eq!(kind, QuestionKind::Permission);
        assert!(text.contains("edit"), "{text}");
        assert!(options.contains(&"allow".to_string()));
        assert!(!workspace.join("notes.txt").exists(), "nothing written before the answer");
        let answer = api.answer_question(&session.id, &question_id, "allow").await?;
        assert_eq!(answer.status, 200, "{answer:?}");
        let rest = stream.until(finished).await?;
        let turn_id = rest.last().and_then(|e| e.turn_id.clone()).unwrap_or_default();
        assert_eq!(outcome_of(&rest), Some(TurnOutcome::Done), "{rest:#?}");
        assert_eq!(
            std::fs::read_to_string(workspace.join("notes.txt"))?,
            "written by opencode\n"
        );
        assert!(asked.iter().chain(&rest).any(|e| matches!(&e.body,
            EventBody::ToolCallStarted { tool, .. } if tool == "write")));
        assert!(rest.iter().any(|e| matches!(&e.body,
            EventBody::ToolCallFinished { is_error: false, .. })));
        assert_eq!(turn_text(&rest, &turn_id), "Wrote notes.txt.");
        assert!(rest.iter().any(|e| matches!(&e.body,
            EventBody::TurnFinished { usage, duration_ms, .. } if usage.output_tokens > 0 && *duration_ms > 0)));
        // A second answer to the same question is refused.
        let again = api.answer_question(&session.id, &question_id, "deny").await?;
        assert_eq!(again.status, 409, "{again:?}");

        // The LLM saw the real key (through the runner's proxy); OpenCode, inside the
        // sandbox, only ever had the proxy's token.
        let authorizations = llm.authorizations();
        assert!(!authorizations.is_empty());
        assert!(
            authorizations.iter().all(|a| a == "Bearer scripted-key"),
            "{authorizations:?}"
        );

        // From the next turn on, nothing asks.
        let session = api
            .update_session(&session.id, json!({"permission_mode": "allow"}))
            .await?;
        assert_eq!(
            session.permission_mode,
            nightshift_protocol::api::PermissionMode::Allow
        );

        // Abort stops a long command inside the sandbox.
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "LONG-SLEEP now").await?;
        stream
            .until(|body| matches!(body, EventBody::ToolCallStarted { tool, .. } if tool == "bash"))
            .await?;
        let started = tokio::time::Instant::now();
        while !process_running("sleep 417") {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(20), "the command never ran");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        api.abort(&session.id).await?;
        let rest = stream.until(finished).await?;
        assert_eq!(outcome_of(&rest), Some(TurnOutcome::Aborted), "{rest:#?}");
        let stopped = tokio::time::Instant::now();
        while process_running("sleep 417") {
            anyhow::ensure!(
                stopped.elapsed() < Duration::from_secs(10),
                "the command outlived the abort"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn opencode_killed_mid_turn_fails_clearly_and_the_next_prompt_works() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "SLOW-STORY",
            Script::new(vec![Step::slow_text(
                "tick",
                200,
                Duration::from_millis(200),
            )]),
        );
        let api = stack.signed_in_api("alice@example.com").await?;
        // Created with the built-in agent, switched to OpenCode between turns.
        let session = api.create_session().await?;
        let first = run_turn(&api, &session.id, "hello builtin").await?;
        assert_eq!(outcome_of(&first), Some(TurnOutcome::Done));
        let session = api
            .update_session(
                &session.id,
                json!({"agent": "opencode", "permission_mode": "allow"}),
            )
            .await?;
        assert_eq!(session.agent, AgentKind::Opencode);
        let sandbox = session.sandbox_id.clone().unwrap_or_default();

        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "tell a SLOW-STORY").await?;
        stream
            .until(|body| matches!(body, EventBody::TextDelta { text } if text.starts_with("tick")))
            .await?;
        // Kill OpenCode (inside the sandbox) the hard way.
        let port_file = stack
            .data_dir()
            .join("sandboxes")
            .join(&sandbox)
            .join("runner/opencode/opencode.port");
        let port = std::fs::read_to_string(&port_file)?;
        let pattern = format!("opencode serve --hostname 127.0.0.1 --port {}", port.trim());
        let killed = std::process::Command::new("pkill")
            .args(["-KILL", "-f", &pattern])
            .status()?;
        anyhow::ensure!(killed.success(), "no process matched `{pattern}`");
        let rest = stream.until(finished).await?;
        assert_eq!(outcome_of(&rest), Some(TurnOutcome::Failed), "{rest:#?}");
        assert!(
            rest.iter().any(|e| matches!(&e.body,
                EventBody::Error { message } if message.contains("OpenCode exited unexpectedly"))),
            "{rest:#?}"
        );

        // The next prompt starts OpenCode again and works.
        let next = run_turn(&api, &session.id, "are you back").await?;
        assert_eq!(outcome_of(&next), Some(TurnOutcome::Done), "{next:#?}");
        let turn_id = next
            .last()
            .and_then(|e| e.turn_id.clone())
            .unwrap_or_default();
        assert!(turn_text(&next, &turn_id).contains("echo: are you back"));
        let port = std::fs::read_to_string(&port_file)?;
        assert!(
            process_running(&format!(
                "opencode serve --hostname 127.0.0.1 --port {}",
                port.trim()
            )),
            "OpenCode runs again"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_runner_started_again_continues_opencodes_own_session() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, async {
        let api = stack.signed_in_api("alice@example.com").await?;
        let session = api
            .create_session_with(json!({"agent": "opencode"}))
            .await?;
        api.wait_status(&session.id, "idle").await?;
        run_turn(&api, &session.id, "the codeword is PAPAYA").await?;

        // The runner dies between turns; the one started in its place goes on with
        // the OpenCode session kept in the sandbox's home.
        anyhow::ensure!(stack.kill_runners() >= 1, "a runner was running");
        let events = run_turn(&api, &session.id, "what was the codeword?").await?;
        anyhow::ensure!(
            outcome_of(&events) == Some(TurnOutcome::Done),
            "{events:#?}"
        );
        let carried = llm.requests().iter().any(|request| {
            let text = request.to_string();
            text.contains("what was the codeword?") && text.contains("the codeword is PAPAYA")
        });
        anyhow::ensure!(
            carried,
            "the second turn's request to the LLM carries the first turn: {:#?}",
            llm.requests()
        );
        Ok(())
    })
    .await;
}

/// Removes OpenCode's own state (its sessions) from the sandbox's homes, as a
/// replaced sandbox would have lost it; answers how many homes held some.
fn lose_opencode_state(stack: &Stack, sandbox: &str) -> anyhow::Result<usize> {
    let dir = stack.data_dir().join("sandboxes").join(sandbox);
    let mut removed = 0;
    // The session sandbox's home, and OpenCode's own sandbox's beside it.
    for home in [dir.join("home"), dir.join("opencode/home")] {
        let state = home.join(".local/share/opencode");
        if state.is_dir() {
            std::fs::remove_dir_all(&state)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The platform archives a session whose sandbox was destroyed (it provisions no new
/// one), so a replaced sandbox is made here: OpenCode's state goes from the home and
/// the runner is killed, between turns and in the middle of one. Every next request
/// to the LLM carries the earlier turns, from the session's copy of the conversation.
#[tokio::test]
async fn opencode_continues_with_every_earlier_turn_after_its_home_was_lost() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "SLOW-COUNT",
            Script::new(vec![Step::slow_text(
                "tick",
                30,
                Duration::from_millis(200),
            )]),
        );
        let api = stack.signed_in_api("alice@example.com").await?;
        let session = api
            .create_session_with(json!({"agent": "opencode", "permission_mode": "allow"}))
            .await?;
        let sandbox = api
            .wait_status(&session.id, "idle")
            .await?
            .sandbox_id
            .unwrap_or_default();
        run_turn(&api, &session.id, "the codeword is GUAVA").await?;

        // Between turns.
        anyhow::ensure!(
            lose_opencode_state(&stack, &sandbox)? >= 1,
            "OpenCode kept state"
        );
        anyhow::ensure!(stack.kill_runners() >= 1, "a runner was running");
        let events = run_turn(&api, &session.id, "what was the codeword?").await?;
        anyhow::ensure!(
            outcome_of(&events) == Some(TurnOutcome::Done),
            "{events:#?}"
        );
        let last = llm
            .requests()
            .last()
            .cloned()
            .unwrap_or_default()
            .to_string();
        anyhow::ensure!(
            last.contains("what was the codeword?")
                && last.contains("the codeword is GUAVA")
                && last.contains("echo: the codeword is GUAVA"),
            "the second turn's request carries the first turn: {last}"
        );

        // In the middle of a turn: it runs again, once, and the next turn's request
        // carries every earlier turn.
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "count SLOW-COUNT").await?;
        stream
            .until(|body| matches!(body, EventBody::TextDelta { text } if text.starts_with("tick")))
            .await?;
        anyhow::ensure!(
            lose_opencode_state(&stack, &sandbox)? >= 1,
            "OpenCode kept state"
        );
        anyhow::ensure!(stack.kill_runners() >= 1, "a runner was running");
        stream
            .until(|body| matches!(body, EventBody::TurnStarted { attempt: 2, .. }))
            .await?;
        api.wait_settled(&session.id).await?;
        let events = run_turn(&api, &session.id, "and now?").await?;
        anyhow::ensure!(
            outcome_of(&events) == Some(TurnOutcome::Done),
            "{events:#?}"
        );
        let last = llm
            .requests()
            .last()
            .cloned()
            .unwrap_or_default()
            .to_string();
        for earlier in [
            "the codeword is GUAVA",
            "echo: the codeword is GUAVA",
            "what was the codeword?",
            "echo: what was the codeword?",
            "and now?",
        ] {
            anyhow::ensure!(last.contains(earlier), "`{earlier}` is missing: {last}");
        }
        anyhow::ensure!(
            last.matches("count SLOW-COUNT").count() == 1,
            "the cut-short attempt is not carried, the re-run is: {last}"
        );
        Ok(())
    })
    .await;
}
