//! Control of a running turn, end to end on the real stack (wrangler dev, the sandbox
//! backend, runners under bubblewrap) with the built-in agent against the scripted
//! LLM: steering, collecting, editing queued prompts, questions, model and agent
//! changes between turns, and usage totals.

use std::time::Duration;

use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use nightshift_protocol::api::{AgentKind, MessageState, QueueMode};
use nightshift_protocol::events::{EventBody, SessionEvent, TurnOutcome};
use serde_json::{Value, json};

async fn stack_with_llm(vars: &[(&str, &str)]) -> anyhow::Result<(Stack, ScriptedLlm)> {
    let llm = ScriptedLlm::start().await?;
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
    .await?;
    Ok((stack, llm))
}

/// Runs a test body; on failure prints the stack's logs before failing.
fn is_turn_finished(body: &EventBody) -> bool {
    matches!(body, EventBody::TurnFinished { .. })
}

/// The prompts turns were started for, in order.
fn started_prompts(events: &[SessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::TurnStarted { content, .. } => Some(content.clone()),
            _ => None,
        })
        .collect()
}

/// The last LLM request whose last user message contains `marker`.
fn last_request_for(llm: &ScriptedLlm, marker: &str) -> Option<Value> {
    llm.requests().into_iter().rev().find(|body| {
        body["messages"]
            .as_array()
            .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
            .is_some_and(|m| m["content"].to_string().contains(marker))
    })
}

fn process_running(pattern: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false)
}

async fn wait_for_process(pattern: &str) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    while !process_running(pattern) {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(15),
            "`{pattern}` never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn steer_aborts_the_running_turn_and_runs_next_with_its_work_kept() {
    let (stack, llm) = stack_with_llm(&[]).await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-STEER-ONE",
            Script::new(vec![
                Step::tool(
                    "write_file",
                    json!({"path": "partial.txt", "content": "written before the steer\n"}),
                ),
                Step::tool("bash", json!({"command": "sleep 613"})),
            ]),
        );
        llm.on("MARK-STEER-TWO", Script::new(vec![Step::text("steered")]));
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-STEER-ONE write, then sleep")
            .await?;
        // The write has finished and the long command runs.
        stream
            .until(|b| matches!(b, EventBody::ToolCallStarted { tool, .. } if tool == "bash"))
            .await?;
        wait_for_process("sleep 613").await?;

        let followup = api.send(&session.id, "a followup, queued first").await?;
        assert_eq!(followup.position, 0);
        let steer = api
            .send_mode(
                &session.id,
                "MARK-STEER-TWO change of plan",
                QueueMode::Steer,
            )
            .await?;
        assert_eq!(steer.position, 0, "a steer goes ahead of queued followups");
        assert_eq!(steer.message.mode, QueueMode::Steer);

        let seen = stream.until(is_turn_finished).await?;
        assert!(matches!(
            seen.last().map(|e| &e.body),
            Some(EventBody::TurnFinished {
                outcome: TurnOutcome::Aborted,
                ..
            })
        ));
        let messages = api.wait_settled(&session.id).await?;
        let states: Vec<_> = messages.iter().map(|m| m.state).collect();
        assert_eq!(
            states,
            [
                MessageState::Aborted,
                MessageState::Done,
                MessageState::Done
            ]
        );
        assert!(!process_running("sleep 613"), "the aborted command is gone");
        let history = api
            .history_until(&session.id, |h| {
                h.iter().filter(|e| is_turn_finished(&e.body)).count() == 3
            })
            .await?;
        assert_eq!(
            started_prompts(&history),
            [
                "MARK-STEER-ONE write, then sleep",
                "MARK-STEER-TWO change of plan",
                "a followup, queued first"
            ]
        );

        // The aborted turn's work is real and kept: the file is in the workspace, and
        // the steering turn's conversation holds the earlier prompt, the tool calls and
        // their results.
        let sandbox = api
            .session(&session.id)
            .await?
            .sandbox_id
            .expect("a provisioned session names its sandbox");
        let written = std::fs::read_to_string(stack.workspace(&sandbox).join("partial.txt"))?;
        assert_eq!(written, "written before the steer\n");
        let request = last_request_for(&llm, "MARK-STEER-TWO")
            .ok_or_else(|| anyhow::anyhow!("the steering prompt never reached the LLM"))?;
        let history = request["messages"].to_string();
        assert!(history.contains("MARK-STEER-ONE"), "{history}");
        assert!(history.contains("write_file"), "{history}");
        let tool_results = request["messages"]
            .as_array()
            .map(|m| m.iter().filter(|m| m["role"] == "tool").count())
            .unwrap_or(0);
        assert!(tool_results >= 2, "both tool calls have results: {history}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn collect_merges_quick_prompts_and_queued_prompts_can_be_edited() {
    let (stack, llm) = stack_with_llm(&[("COLLECT_WINDOW_MS", "3000")])
        .await
        .unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let mut stream = api.events(&session.id, None).await?;

        // Two collect prompts in quick succession become one prompt and one turn.
        let first = api
            .send_mode(&session.id, "MARK-COLLECT part one", QueueMode::Collect)
            .await?;
        let second = api
            .send_mode(&session.id, "part two", QueueMode::Collect)
            .await?;
        assert_eq!(second.message_id, first.message_id);
        assert_eq!(second.message.content, "MARK-COLLECT part one\n\npart two");
        let seen = stream.until(is_turn_finished).await?;
        assert!(seen.iter().any(|e| matches!(&e.body,
            EventBody::PromptsMerged { message_id, merged_ids, .. }
                if *message_id == first.message_id && merged_ids.len() == 1)));
        assert_eq!(
            started_prompts(&seen),
            ["MARK-COLLECT part one\n\npart two"]
        );
        let request = last_request_for(&llm, "MARK-COLLECT")
            .ok_or_else(|| anyhow::anyhow!("the merged prompt never reached the LLM"))?;
        assert!(request["messages"].to_string().contains("part two"));
        assert_eq!(api.messages(&session.id).await?.len(), 1);

        // A queued prompt is edited before it runs; a running or finished one is not.
        llm.on(
            "MARK-SLOW",
            Script::new(vec![Step::slow_text("s", 15, Duration::from_millis(100))]),
        );
        let slow = api.send(&session.id, "MARK-SLOW take a while").await?;
        let queued = api.send(&session.id, "the first wording").await?;
        stream
            .until(|b| matches!(b, EventBody::TurnStarted { .. }))
            .await?;
        let edited = api
            .edit_message(&session.id, &queued.message_id, "the better wording")
            .await?;
        assert_eq!(edited.status, 200, "{:?}", edited.body);
        assert_eq!(edited.body["content"], "the better wording");
        let refused = api
            .edit_message(&session.id, &slow.message_id, "too late")
            .await?;
        assert_eq!(refused.status, 409);
        assert_eq!(refused.error_code(), Some("not_queued"));
        let missing = api.edit_message(&session.id, "nope", "x").await?;
        assert_eq!(missing.status, 404);
        let blank = api
            .edit_message(&session.id, &queued.message_id, " ")
            .await?;
        assert_eq!(blank.error_code(), Some("empty_message"));

        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[2].content, "the better wording");
        assert_eq!(
            messages[2].reply.as_deref(),
            Some("echo: the better wording")
        );
        let history = api
            .history_until(&session.id, |h| {
                h.iter().filter(|e| is_turn_finished(&e.body)).count() == 3
            })
            .await?;
        assert!(history.iter().any(|e| matches!(&e.body,
            EventBody::PromptEdited { content, .. } if content == "the better wording")));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn model_and_agent_changes_apply_to_the_next_turn_and_usage_adds_up() {
    let (stack, llm) = stack_with_llm(&[("LLM_MODELS", "other-model")])
        .await
        .unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let models = api.models().await?;
        let ids: Vec<_> = models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["scripted-model", "other-model"]);

        let refused = api
            .raw(
                reqwest::Method::POST,
                "/api/sessions",
                Some(r#"{"model": "no-such-model"}"#),
            )
            .await?;
        assert_eq!(refused.status, 400);
        assert_eq!(refused.error_code(), Some("unknown_model"));

        let session = api
            .create_session_with(json!({"agent": "builtin", "model": "scripted-model"}))
            .await?;
        assert_eq!(session.model.as_deref(), Some("scripted-model"));
        api.wait_status(&session.id, "idle").await?;
        // The first turn meets a rate limit twice; each retry is announced.
        llm.refuse_next("MARK-MODEL-ONE", 2);
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-MODEL-ONE first").await?;
        let seen = stream.until(is_turn_finished).await?;
        let retries: Vec<u32> = seen
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Retrying {
                    attempt, reason, ..
                } if reason.contains("429") || reason.to_lowercase().contains("rate") => {
                    Some(*attempt)
                }
                _ => None,
            })
            .collect();
        assert_eq!(retries, [1, 2], "{seen:#?}");
        assert!(matches!(
            seen.last().map(|e| &e.body),
            Some(EventBody::TurnFinished {
                outcome: TurnOutcome::Done,
                ..
            })
        ));
        api.wait_settled(&session.id).await?;
        let first = last_request_for(&llm, "MARK-MODEL-ONE").expect("the first turn ran");
        assert_eq!(first["model"], "scripted-model");

        let refused = api
            .raw(
                reqwest::Method::PATCH,
                &format!("/api/sessions/{}", session.id),
                Some(r#"{"model": "no-such-model"}"#),
            )
            .await?;
        assert_eq!(refused.error_code(), Some("unknown_model"));
        let updated = api
            .update_session(
                &session.id,
                json!({"model": "other-model", "permission_mode": "allow"}),
            )
            .await?;
        assert_eq!(updated.model.as_deref(), Some("other-model"));
        assert_eq!(
            api.session(&session.id).await?.model.as_deref(),
            Some("other-model")
        );
        api.send(&session.id, "MARK-MODEL-TWO second").await?;
        api.wait_settled(&session.id).await?;
        let second = last_request_for(&llm, "MARK-MODEL-TWO").expect("the second turn ran");
        assert_eq!(second["model"], "other-model");

        // The agent is switched and switched back; both are recorded.
        let updated = api
            .update_session(&session.id, json!({"agent": "opencode"}))
            .await?;
        assert_eq!(updated.agent, AgentKind::Opencode);
        let updated = api
            .update_session(&session.id, json!({"agent": "builtin"}))
            .await?;
        assert_eq!(updated.agent, AgentKind::Builtin);

        // Totals are the sum of what each turn reported.
        let history = api
            .history_until(&session.id, |h| {
                h.iter()
                    .filter(|e| matches!(e.body, EventBody::SessionUpdated { .. }))
                    .count()
                    == 3
            })
            .await?;
        let mut input = 0;
        let mut output = 0;
        for event in &history {
            if let EventBody::TurnFinished { usage, .. } = &event.body {
                input += usage.input_tokens;
                output += usage.output_tokens;
            }
        }
        assert!(input > 0 && output > 0);
        let session = api.session(&session.id).await?;
        assert_eq!(session.usage.turns, 2);
        assert_eq!(session.usage.input_tokens, input);
        assert_eq!(session.usage.output_tokens, output);
        let messages = api.messages(&session.id).await?;
        let per_message: u64 = messages
            .iter()
            .map(|m| m.usage.map_or(0, |u| u.input_tokens))
            .sum();
        assert_eq!(per_message, input);
        assert!(messages.iter().all(|m| m.duration_ms.is_some()));
        assert_eq!(
            session.usage.duration_ms,
            messages.iter().filter_map(|m| m.duration_ms).sum::<u64>()
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_question_round_trips_through_the_api() {
    let (stack, llm) = stack_with_llm(&[]).await.unwrap();
    let api: Api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-ASK",
            Script::new(vec![
                Step::tool(
                    "ask_user",
                    json!({"question": "Which colour?", "options": ["red", "blue"]}),
                ),
                Step::text("going with it"),
            ]),
        );
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-ASK pick one").await?;
        let seen = stream
            .until(|b| matches!(b, EventBody::QuestionAsked { .. }))
            .await?;
        let Some(EventBody::QuestionAsked {
            question_id,
            text,
            options,
            ..
        }) = seen.last().map(|e| e.body.clone())
        else {
            anyhow::bail!("no question");
        };
        assert!(text.contains("Which colour?"));
        assert_eq!(options, ["red", "blue"]);

        let unknown = api.answer_question(&session.id, "no-such", "red").await?;
        assert_eq!(unknown.status, 404);
        let blank = api.answer_question(&session.id, &question_id, "  ").await?;
        assert_eq!(blank.error_code(), Some("empty_message"));
        let answered = api
            .answer_question(&session.id, &question_id, "blue")
            .await?;
        assert_eq!(answered.status, 200, "{:?}", answered.body);
        assert_eq!(answered.body["type"], "question_answered");
        let again = api
            .answer_question(&session.id, &question_id, "red")
            .await?;
        assert_eq!(again.status, 409);
        assert_eq!(again.error_code(), Some("question_closed"));

        let seen = stream.until(is_turn_finished).await?;
        assert!(seen.iter().any(|e| matches!(&e.body,
            EventBody::QuestionAnswered { answer, .. } if answer == "blue")));
        assert!(matches!(
            seen.last().map(|e| &e.body),
            Some(EventBody::TurnFinished {
                outcome: TurnOutcome::Done,
                ..
            })
        ));
        // The agent's next LLM call carries the answer as the tool's result.
        let request = last_request_for(&llm, "MARK-ASK").expect("the turn went on");
        let tool_result = request["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "tool").cloned())
            .expect("the ask_user call has a result");
        assert!(tool_result["content"].to_string().contains("blue"));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_runner_that_never_confirms_an_abort_does_not_hold_the_turn() {
    let (stack, llm) = stack_with_llm(&[("ABORT_TIMEOUT_MS", "2000")])
        .await
        .unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    let result = async {
        llm.on(
            "MARK-HANG",
            Script::new(vec![Step::slow_text("h", 300, Duration::from_millis(50))]),
        );
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-HANG stream for a long time")
            .await?;
        stream
            .until(|b| matches!(b, EventBody::TextDelta { .. }))
            .await?;
        // The runner is frozen: its link stays open but nothing answers the abort.
        anyhow::ensure!(
            stack.signal_runners(nix::sys::signal::Signal::SIGSTOP) >= 1,
            "a runner was running"
        );
        let asked = tokio::time::Instant::now();
        api.abort(&session.id).await?;
        let seen = stream.until(is_turn_finished).await?;
        let waited = asked.elapsed();
        assert!(
            waited >= Duration::from_millis(1_500) && waited < Duration::from_secs(20),
            "ended after {waited:?}"
        );
        assert!(seen.iter().any(|e| matches!(&e.body,
            EventBody::Error { message } if message.contains("did not confirm the abort"))));
        assert!(matches!(
            seen.last().map(|e| &e.body),
            Some(EventBody::TurnFinished {
                outcome: TurnOutcome::Aborted,
                ..
            })
        ));
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[0].state, MessageState::Aborted);

        // The runner wakes up, ends the turn itself (ignored: it already ended), and
        // the session takes the next prompt.
        stack.signal_runners(nix::sys::signal::Signal::SIGCONT);
        api.send(&session.id, "after the hang").await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[1].state, MessageState::Done);
        assert_eq!(messages[1].reply.as_deref(), Some("echo: after the hang"));
        let history = api
            .history_until(&session.id, |h| {
                h.iter().filter(|e| is_turn_finished(&e.body)).count() == 2
            })
            .await?;
        let first_turn = messages[0].turn_id.clone().expect("it ran");
        let endings = history
            .iter()
            .filter(|e| e.turn_id.as_deref() == Some(&first_turn) && is_turn_finished(&e.body))
            .count();
        assert_eq!(endings, 1, "a turn has exactly one turn_finished");
        Ok::<(), anyhow::Error>(())
    }
    .await;
    // Never leave a frozen runner behind, whatever happened.
    stack.signal_runners(nix::sys::signal::Signal::SIGCONT);
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

#[tokio::test]
async fn a_session_refuses_prompts_past_its_queue_cap_and_stores_nothing() {
    let (stack, llm) = stack_with_llm(&[("MAX_QUEUED_PROMPTS", "3")])
        .await
        .unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-HOLD",
            Script::new(vec![Step::tool("bash", json!({"command": "sleep 618"}))]),
        );
        let session = api.create_session().await?;
        let mut stream = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-HOLD keep the queue waiting")
            .await?;
        stream
            .until(|b| matches!(b, EventBody::ToolCallStarted { .. }))
            .await?;
        let mut queued = Vec::new();
        for n in 0..3 {
            queued.push(
                api.send(&session.id, &format!("waiting {n}"))
                    .await?
                    .message_id,
            );
        }
        let path = format!("/api/sessions/{}/messages", session.id);
        let refused = api
            .raw(
                reqwest::Method::POST,
                &path,
                Some(r#"{"content":"one too many"}"#),
            )
            .await?;
        assert_eq!(refused.status, 429, "{:?}", refused.body);
        assert_eq!(refused.error_code(), Some("quota_exceeded"));
        let messages = api.messages(&session.id).await?;
        assert_eq!(messages.len(), 4, "the refused prompt is not stored");
        assert!(!messages.iter().any(|m| m.content == "one too many"));
        // Room again once a waiting prompt is cancelled.
        let cancelled = api
            .raw(
                reqwest::Method::DELETE,
                &format!("{path}/{}", queued[0]),
                None,
            )
            .await?;
        assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
        api.send(&session.id, "fits now").await?;
        api.abort(&session.id).await?;
        Ok(())
    })
    .await;
}
