//! The agent loop against a real HTTP server speaking the LLM streaming formats, with
//! real tools in a temporary workspace.

use std::time::{Duration, Instant};

use nightshift_protocol::events::TurnOutcome;
use nightshift_protocol::runner_link::LlmApi;
use serde_json::json;

use super::*;
use crate::link::EventQueue;
use crate::test_llm::{
    Reply, TestLlm, anthropic_text, anthropic_tool_call, openai_text, openai_tool_call,
};

struct Setup {
    workspace: tempfile::TempDir,
    agent: BuiltinAgent,
    queue: EventQueue,
}

fn setup() -> Setup {
    let workspace = tempfile::tempdir().unwrap();
    let tools = ToolSet::new(workspace.path(), "/workspace", Vec::new()).unwrap();
    let agent = BuiltinAgent::new(tools, "/workspace")
        .unwrap()
        .with_timing(LlmTimeouts::default(), Duration::from_millis(10))
        .unwrap();
    Setup {
        workspace,
        agent,
        queue: EventQueue::new(1000),
    }
}

fn input(llm: &TestLlm, api: LlmApi, turn_id: &str, content: &str) -> TurnInput {
    TurnInput {
        turn_id: turn_id.into(),
        message_id: format!("m-{turn_id}"),
        content: content.into(),
        llm: llm.config(api),
        agent: Default::default(),
        permission_mode: Default::default(),
    }
}

/// The turn's events but the per-call usage ones (see [`step_usages`]).
fn events(queue: &EventQueue) -> Vec<EventBody> {
    queue
        .after(0, 10_000)
        .into_iter()
        .map(|event| event.event)
        .filter(|event| !matches!(event, EventBody::StepUsage { .. }))
        .collect()
}

/// The usage each LLM call reported, in order.
fn step_usages(queue: &EventQueue) -> Vec<TokenUsage> {
    queue
        .after(0, 10_000)
        .into_iter()
        .filter_map(|event| match event.event {
            EventBody::StepUsage { usage } => Some(usage),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn openai_turn_runs_tools_streams_events_and_sums_usage() {
    let Setup {
        workspace,
        mut agent,
        queue,
    } = setup();
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call(
            "call_1",
            "write_file",
            &json!({"path": "hello.txt", "content": "hi there"}),
            10,
            5,
        )),
        Reply::stream(openai_tool_call(
            "call_2",
            "bash",
            &json!({"command": "cat hello.txt"}),
            12,
            6,
        )),
        Reply::stream(openai_text(&["Wrote ", "the file."], 20, 2)),
        Reply::stream(openai_text(&["Second turn."], 30, 1)),
    ])
    .await;
    let cancel = CancellationToken::new();
    let turn_events = TurnEvents::new(queue.clone(), "t1");

    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t1", "write hello"),
            &turn_events,
            &cancel,
        )
        .await;

    assert_eq!(
        end,
        TurnEnd::done(TokenUsage {
            input_tokens: 42,
            output_tokens: 13,
            ..TokenUsage::default()
        })
    );
    // Each LLM call's tokens went out as it ended, so spend caps see every step.
    let per_call = |input, output| TokenUsage {
        input_tokens: input,
        output_tokens: output,
        ..TokenUsage::default()
    };
    assert_eq!(
        step_usages(&queue),
        vec![per_call(10, 5), per_call(12, 6), per_call(20, 2)]
    );
    assert_eq!(
        std::fs::read_to_string(workspace.path().join("hello.txt")).unwrap(),
        "hi there"
    );
    assert_eq!(
        events(&queue),
        vec![
            EventBody::ToolCallStarted {
                call_id: "call_1".into(),
                tool: "write_file".into(),
                args: json!({"path": "hello.txt", "content": "hi there"}),
            },
            EventBody::ToolCallFinished {
                call_id: "call_1".into(),
                output: "Wrote 8 bytes to hello.txt".into(),
                is_error: false,
                truncated_bytes: 0,
            },
            EventBody::ToolCallStarted {
                call_id: "call_2".into(),
                tool: "bash".into(),
                args: json!({"command": "cat hello.txt"})
            },
            EventBody::ToolCallFinished {
                call_id: "call_2".into(),
                output: "hi there\n[exit code: 0]".into(),
                is_error: false,
                truncated_bytes: 0,
            },
            EventBody::TextDelta {
                text: "Wrote ".into()
            },
            EventBody::TextDelta {
                text: "the file.".into()
            },
        ]
    );
    assert!(
        queue
            .after(0, 100)
            .iter()
            .all(|event| event.turn_id == "t1")
    );

    // The tool results went back to the model with their call ids.
    let requests = llm.requests();
    assert_eq!(requests.len(), 3);
    let messages = requests[2].body["messages"].as_array().unwrap().clone();
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("/workspace")
    );
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "Wrote 8 bytes to hello.txt"})
    );
    assert_eq!(messages[5]["tool_call_id"], "call_2");

    // The conversation carries over to the next turn.
    let turn_events = TurnEvents::new(queue.clone(), "t2");
    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t2", "again"),
            &turn_events,
            &cancel,
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done);
    let messages = llm.requests()[3].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        messages.len(),
        8,
        "system, 2 prompts, 3 replies, 2 tool results: {messages:#?}"
    );
    assert_eq!(
        messages[6],
        json!({"role": "assistant", "content": "Wrote the file."})
    );
    assert_eq!(messages[7], json!({"role": "user", "content": "again"}));
}

#[tokio::test]
async fn anthropic_turn_runs_a_tool_and_answers() {
    let Setup {
        workspace,
        mut agent,
        queue,
    } = setup();
    std::fs::write(workspace.path().join("notes.txt"), "alpha\nbeta\n").unwrap();
    let llm = TestLlm::start(vec![
        Reply::stream(anthropic_tool_call(
            "toolu_1",
            "grep",
            &json!({"pattern": "bet"}),
            100,
            10,
        )),
        Reply::stream(anthropic_text(&["Found ", "beta."], 150, 4)),
    ])
    .await;
    let turn_events = TurnEvents::new(queue.clone(), "t1");
    let end = agent
        .run_turn(
            input(&llm, LlmApi::Anthropic, "t1", "find beta"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;

    assert_eq!(
        end,
        TurnEnd::done(TokenUsage {
            input_tokens: 250,
            output_tokens: 14,
            ..TokenUsage::default()
        })
    );
    let all = events(&queue);
    assert_eq!(
        all[1],
        EventBody::ToolCallFinished {
            call_id: "toolu_1".into(),
            output: "notes.txt:2: beta".into(),
            is_error: false,
            truncated_bytes: 0
        }
    );
    assert_eq!(
        all[2..],
        [
            EventBody::TextDelta {
                text: "Found ".into()
            },
            EventBody::TextDelta {
                text: "beta.".into()
            }
        ]
    );

    let second = &llm.requests()[1].body;
    assert_eq!(second["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(
        second["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "notes.txt:2: beta", "is_error": false})
    );
}

#[tokio::test]
async fn failures_before_any_output_are_retried() {
    let Setup {
        workspace: _workspace,
        mut agent,
        queue,
    } = setup();
    let llm = TestLlm::start(vec![
        Reply::status(500, "boom"),
        Reply::Status {
            status: 429,
            body: r#"{"error":{"message":"rate limited"}}"#.into(),
            retry_after: Some(1),
        },
        Reply::stream(openai_text(&["ok"], 1, 1)),
    ])
    .await;
    let turn_events = TurnEvents::new(queue.clone(), "t1");
    let started = Instant::now();
    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t1", "hi"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done);
    assert_eq!(llm.requests().len(), 3);
    // The server's Retry-After (1 s) wins over the test's 10 ms backoff.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let events = events(&queue);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        matches!(&events[0], EventBody::Retrying { attempt: 1, max_attempts: 4, delay_ms: 10, reason }
            if reason.contains("500")),
        "{events:?}"
    );
    assert!(
        matches!(&events[1], EventBody::Retrying { attempt: 2, max_attempts: 4, delay_ms: 1000, reason }
            if reason.contains("rate limited")),
        "{events:?}"
    );
    assert_eq!(events[2], EventBody::TextDelta { text: "ok".into() });
}

#[tokio::test]
async fn retries_stop_after_the_last_attempt() {
    let Setup {
        workspace: _workspace,
        mut agent,
        queue,
    } = setup();
    let llm = TestLlm::start(vec![Reply::status(503, "busy"); 5]).await;
    let turn_events = TurnEvents::new(queue.clone(), "t1");
    let end = agent
        .run_turn(
            input(&llm, LlmApi::Anthropic, "t1", "hi"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Failed);
    assert!(end.error.unwrap().contains("503"));
    assert_eq!(llm.requests().len(), 4, "four attempts in all");
    let retries = events(&queue)
        .into_iter()
        .filter(|event| matches!(event, EventBody::Retrying { .. }))
        .count();
    assert_eq!(retries, 3);
}

#[tokio::test]
async fn ask_user_waits_for_the_answer_and_gives_it_to_the_model() {
    let Setup {
        workspace: _workspace,
        mut agent,
        queue,
    } = setup();
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call(
            "call_q",
            "ask_user",
            &json!({"question": "Tabs or spaces?", "options": ["tabs", "spaces"]}),
            5,
            2,
        )),
        Reply::stream(openai_text(&["Spaces it is."], 8, 3)),
    ])
    .await;
    let broker = std::sync::Arc::new(crate::agent::QuestionBroker::new());
    let turn_events =
        TurnEvents::with_questions(queue.clone(), "t1", broker.clone(), Duration::from_secs(30));
    let answerer = tokio::spawn(async move {
        while broker.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(broker.answer("ask_call_q", "spaces".into()));
    });
    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t1", "format it"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;
    answerer.await.unwrap();
    assert_eq!(end.outcome, TurnOutcome::Done);
    let events = events(&queue);
    assert!(events.iter().any(|event| matches!(event,
        EventBody::QuestionAsked { question_id, text, options, timeout_ms: 30_000, .. }
            if question_id == "ask_call_q" && text == "Tabs or spaces?" && options.len() == 2)));
    assert!(events.iter().any(|event| matches!(event,
        EventBody::ToolCallFinished { output, is_error: false, .. } if output.contains("spaces"))));
    let second = &llm.requests()[1].body;
    assert!(
        second.to_string().contains("The user answered: spaces"),
        "{second}"
    );
}

#[tokio::test]
async fn an_unanswered_question_expires_and_the_turn_goes_on() {
    let Setup {
        workspace: _workspace,
        mut agent,
        queue,
    } = setup();
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call(
            "call_q",
            "ask_user",
            &json!({"question": "Which branch?"}),
            5,
            2,
        )),
        Reply::stream(openai_text(&["Assuming main."], 8, 3)),
    ])
    .await;
    let turn_events = TurnEvents::with_questions(
        queue.clone(),
        "t1",
        std::sync::Arc::new(crate::agent::QuestionBroker::new()),
        Duration::from_millis(50),
    );
    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t1", "merge"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done);
    let events = events(&queue);
    assert!(events.iter().any(|event| matches!(event,
        EventBody::QuestionExpired { question_id } if question_id == "ask_call_q")));
    assert!(events.iter().any(|event| matches!(event,
        EventBody::ToolCallFinished { is_error: true, output, .. } if output.contains("did not answer"))));
}

#[tokio::test]
async fn a_refused_call_fails_the_turn_without_retrying() {
    let Setup {
        workspace: _workspace,
        mut agent,
        queue,
    } = setup();
    let llm = TestLlm::start(vec![Reply::status(
        401,
        r#"{"error":{"message":"invalid x-api-key"}}"#,
    )])
    .await;
    let turn_events = TurnEvents::new(queue.clone(), "t1");
    let end = agent
        .run_turn(
            input(&llm, LlmApi::Anthropic, "t1", "hi"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Failed);
    let error = end.error.unwrap();
    assert!(
        error.contains("401") && error.contains("invalid x-api-key"),
        "{error}"
    );
    assert!(!error.contains("test-key"));
    assert_eq!(llm.requests().len(), 1);
    assert!(events(&queue).is_empty());
}

#[tokio::test]
async fn bad_tool_arguments_go_back_to_the_model_as_an_error() {
    let Setup {
        workspace: _workspace,
        mut agent,
        queue,
    } = setup();
    let mut broken = openai_tool_call("call_1", "read_file", &json!({"path": "x"}), 1, 1);
    // Cut the arguments' second half, as a model hitting its length limit would.
    broken.remove(2);
    let llm = TestLlm::start(vec![
        Reply::stream(broken),
        Reply::stream(openai_text(&["sorry"], 1, 1)),
    ])
    .await;
    let turn_events = TurnEvents::new(queue.clone(), "t1");
    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t1", "read"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done);
    let EventBody::ToolCallFinished {
        output, is_error, ..
    } = &events(&queue)[1]
    else {
        panic!("expected a tool result")
    };
    assert!(*is_error);
    assert!(
        output.starts_with("the arguments are not valid JSON"),
        "{output}"
    );
}

#[tokio::test]
async fn abort_during_a_command_stops_it_and_keeps_the_conversation_valid() {
    let Setup {
        workspace: _workspace,
        mut agent,
        queue,
    } = setup();
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call(
            "call_1",
            "bash",
            &json!({"command": "sleep 30"}),
            1,
            1,
        )),
        Reply::stream(openai_text(&["next"], 1, 1)),
    ])
    .await;
    let cancel = CancellationToken::new();
    let aborter = {
        let (queue, cancel) = (queue.clone(), cancel.clone());
        tokio::spawn(async move {
            while !events(&queue)
                .iter()
                .any(|e| matches!(e, EventBody::ToolCallStarted { .. }))
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let turn_events = TurnEvents::new(queue.clone(), "t1");
    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t1", "wait"),
            &turn_events,
            &cancel,
        )
        .await;
    aborter.await.unwrap();

    assert_eq!(end.outcome, TurnOutcome::Aborted, "{:#?}", events(&queue));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let EventBody::ToolCallFinished { output, .. } = &events(&queue)[1] else {
        panic!("expected a tool result")
    };
    assert!(output.contains("[aborted"), "{output}");
    assert!(matches!(
        agent.conversation().last(),
        Some(ConversationItem::ToolResult { .. })
    ));

    // The next turn starts from a conversation the API accepts: the call has its result.
    let turn_events = TurnEvents::new(queue.clone(), "t2");
    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t2", "go on"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done);
    let messages = llm.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[4], json!({"role": "user", "content": "go on"}));
}

#[tokio::test]
async fn abort_during_the_stream_keeps_what_was_shown() {
    let Setup {
        workspace: _workspace,
        mut agent,
        queue,
    } = setup();
    let mut chunks = openai_text(&["thinking about it"], 1, 1);
    chunks.truncate(2);
    let llm = TestLlm::start(vec![Reply::Stream {
        chunks,
        pause: Duration::ZERO,
        hang: true,
    }])
    .await;
    let cancel = CancellationToken::new();
    {
        let (queue, cancel) = (queue.clone(), cancel.clone());
        tokio::spawn(async move {
            while events(&queue).is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            cancel.cancel();
        });
    }
    let turn_events = TurnEvents::new(queue.clone(), "t1");
    let end = tokio::time::timeout(
        Duration::from_secs(10),
        agent.run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t1", "think"),
            &turn_events,
            &cancel,
        ),
    )
    .await
    .unwrap();
    assert_eq!(end.outcome, TurnOutcome::Aborted);
    assert_eq!(
        agent.conversation().last(),
        Some(&ConversationItem::Assistant {
            text: "thinking about it".into(),
            tool_calls: vec![]
        })
    );
}

#[tokio::test]
async fn the_step_cap_fails_the_turn() {
    let Setup {
        workspace: _workspace,
        agent,
        queue,
    } = setup();
    let mut agent = agent.with_max_steps(2);
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call("c1", "list", &json!({}), 1, 1)),
        Reply::stream(openai_tool_call("c2", "list", &json!({}), 1, 1)),
    ])
    .await;
    let turn_events = TurnEvents::new(queue.clone(), "t1");
    let end = agent
        .run_turn(
            input(&llm, LlmApi::OpenAiCompatible, "t1", "loop"),
            &turn_events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Failed);
    assert!(end.error.unwrap().starts_with("Stopped after 2 LLM calls"));
    assert_eq!(
        end.usage,
        TokenUsage {
            input_tokens: 2,
            output_tokens: 2,
            ..TokenUsage::default()
        }
    );
}
