//! The adapter against a real `opencode serve` (the binary from `node_modules`, as
//! `npm ci` installs it) and a real HTTP server speaking the LLM wire formats. No
//! sandbox wrapper here: these run OpenCode as a plain child process in a temporary
//! workspace (the end-to-end tests run it inside bubblewrap).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nightshift_protocol::api::{AgentKind, PermissionMode};
use nightshift_protocol::events::{EventBody, QuestionKind, TurnOutcome};
use nightshift_protocol::runner_link::LlmApi;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::agent::QuestionBroker;
use crate::link::EventQueue;
use crate::test_llm::{Reply, TestLlm, anthropic_text, openai_text, openai_tool_call};

mod memory;

fn opencode_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        "node_modules/opencode-linux-x64/bin/opencode",
        "node_modules/opencode-linux-arm64/bin/opencode",
        "node_modules/.bin/opencode",
    ]
    .into_iter()
    .map(|relative| root.join(relative))
    .find(|path| path.is_file())
    .expect("the opencode binary is missing: run `npm ci` (or `make setup`) in the repository")
}

struct Setup {
    workspace: tempfile::TempDir,
    state: tempfile::TempDir,
    agent: OpencodeAgent,
    queue: EventQueue,
    broker: Arc<QuestionBroker>,
}

fn setup() -> Setup {
    let workspace = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let agent = OpencodeAgent::new(settings(workspace.path(), state.path()));
    Setup {
        workspace,
        state,
        agent,
        queue: EventQueue::new(10_000),
        broker: Arc::new(QuestionBroker::new()),
    }
}

/// A runner's OpenCode settings in `workspace`, with its own directory (and
/// OpenCode's home) under `state`.
fn settings(workspace: &Path, state: &Path) -> OpencodeSettings {
    OpencodeSettings {
        binary: Some(opencode_binary()),
        wrapper: Vec::new(),
        workspace_dir: workspace.to_path_buf(),
        state_dir: state.join("opencode"),
        start_timeout: Duration::from_secs(90),
        poll_interval: Duration::from_millis(500),
        bridge: None,
        sockets_dir: None,
        masked_dir: None,
        browser: crate::tools::browser::BrowserTools::new(
            crate::tools::browser::devtools::Devtools::Direct(
                crate::tools::browser::devtools::DEVTOOLS_PORT,
            ),
        ),
    }
}

impl Setup {
    fn events(&self, turn_id: &str) -> TurnEvents {
        TurnEvents::with_questions(
            self.queue.clone(),
            turn_id,
            self.broker.clone(),
            Duration::from_secs(60),
        )
    }

    fn emitted(&self, turn_id: &str) -> Vec<EventBody> {
        self.queue
            .after(0, 10_000)
            .into_iter()
            .filter(|event| event.turn_id == turn_id)
            .map(|event| event.event)
            .collect()
    }
}

fn input(
    llm: &TestLlm,
    api: LlmApi,
    turn_id: &str,
    content: &str,
    mode: PermissionMode,
) -> TurnInput {
    TurnInput {
        turn_id: turn_id.into(),
        message_id: format!("m-{turn_id}"),
        content: content.into(),
        llm: llm.config(api),
        agent: AgentKind::Opencode,
        permission_mode: mode,
    }
}

fn text_of(events: &[EventBody]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            EventBody::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_tool_call_writes_the_file_and_the_key_stays_behind_the_proxy() {
    let mut setup = setup();
    let target = setup.workspace.path().join("hello.txt");
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call(
            "call_1",
            "write",
            &json!({"filePath": target.display().to_string(), "content": "hi from opencode\n"}),
            10,
            5,
        )),
        Reply::stream(openai_text(&["Wrote ", "it."], 20, 2)),
    ])
    .await;
    let events = setup.events("t1");
    let end = setup
        .agent
        .run_turn(
            input(
                &llm,
                LlmApi::OpenAiCompatible,
                "t1",
                "write it",
                PermissionMode::Allow,
            ),
            &events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "hi from opencode\n"
    );
    let emitted = setup.emitted("t1");
    assert!(emitted.iter().any(|e| matches!(e,
        EventBody::ToolCallStarted { call_id, tool, .. } if call_id == "call_1" && tool == "write")));
    assert!(emitted.iter().any(|e| matches!(e,
        EventBody::ToolCallFinished { call_id, is_error: false, .. } if call_id == "call_1")));
    assert_eq!(text_of(&emitted), "Wrote it.");
    assert_eq!(end.usage.input_tokens, 30);
    assert_eq!(end.usage.output_tokens, 7);

    // The LLM saw the real key; OpenCode's configuration holds only the proxy's.
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].headers["authorization"], "Bearer test-key");
    assert_eq!(requests[0].body["model"], "test-model");
    let written =
        std::fs::read_to_string(setup.state.path().join("opencode/opencode.json")).unwrap();
    assert!(!written.contains("test-key"));
    assert!(written.contains("nightshift/test-model"));
}

#[tokio::test]
async fn permission_requests_and_questions_round_trip_through_the_user() {
    let mut setup = setup();
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call(
            "call_b",
            "bash",
            &json!({"command": "echo approved > approved.txt", "description": "write a file"}),
            10,
            5,
        )),
        Reply::stream(openai_tool_call(
            "call_q",
            "question",
            &json!({"questions": [{"question": "Which colour?", "header": "Colour",
                    "options": [{"label": "red", "description": "warm"}, {"label": "blue", "description": "cool"}]}]}),
            10,
            5,
        )),
        Reply::stream(openai_text(&["Blue it is."], 10, 2)),
    ])
    .await;
    let events = setup.events("t1");
    let broker = setup.broker.clone();
    let queue = setup.queue.clone();
    let answerer = tokio::spawn(async move {
        let mut answered = 0;
        for _ in 0..3600 {
            for event in queue.after(0, 10_000) {
                if let EventBody::QuestionAsked {
                    question_id, kind, ..
                } = event.event
                {
                    let answer = match kind {
                        QuestionKind::Permission => "allow",
                        QuestionKind::Question => "blue",
                    };
                    if broker.answer(&question_id, answer.into()) {
                        answered += 1;
                    }
                }
            }
            if answered == 2 {
                return answered;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        answered
    });
    let end = setup
        .agent
        .run_turn(
            input(
                &llm,
                LlmApi::OpenAiCompatible,
                "t1",
                "go",
                PermissionMode::Ask,
            ),
            &events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(answerer.await.unwrap(), 2);
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    assert_eq!(
        std::fs::read_to_string(setup.workspace.path().join("approved.txt"))
            .unwrap()
            .trim(),
        "approved"
    );
    let emitted = setup.emitted("t1");
    assert!(emitted.iter().any(|e| matches!(e,
        EventBody::QuestionAsked { kind: QuestionKind::Permission, text, .. } if text.contains("bash"))));
    assert!(emitted.iter().any(|e| matches!(e,
        EventBody::QuestionAsked { kind: QuestionKind::Question, text, options, .. }
            if text.contains("Which colour?") && options == &vec!["red".to_string(), "blue".to_string()])));
    // OpenCode told the model the answer.
    let last = llm.requests().last().unwrap().body.to_string();
    assert!(last.contains("blue"), "{last}");
}

#[tokio::test]
async fn abort_stops_a_long_command_and_the_next_turn_works() {
    let mut setup = setup();
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call(
            "call_s",
            "bash",
            &json!({"command": "sleep 60", "description": "wait"}),
            10,
            5,
        )),
        Reply::stream(openai_text(&["Again."], 10, 2)),
    ])
    .await;
    let cancel = CancellationToken::new();
    let events = setup.events("t1");
    let aborter = cancel.clone();
    let queue = setup.queue.clone();
    let aborted_at = Arc::new(std::sync::Mutex::new(None));
    let aborted_at_writer = aborted_at.clone();
    tokio::spawn(async move {
        for _ in 0..3600 {
            if queue.after(0, 10_000).iter().any(|e| {
                matches!(&e.event, EventBody::ToolCallStarted { call_id, .. } if call_id == "call_s")
            }) {
                tokio::time::sleep(Duration::from_millis(300)).await;
                *aborted_at_writer.lock().unwrap() = Some(std::time::Instant::now());
                aborter.cancel();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let end = setup
        .agent
        .run_turn(
            input(
                &llm,
                LlmApi::OpenAiCompatible,
                "t1",
                "wait",
                PermissionMode::Allow,
            ),
            &events,
            &cancel,
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Aborted, "{end:?}");
    // The `SessionAgent` gives an abort 15 s before it ends the turn itself.
    let aborted_at = aborted_at.lock().unwrap().expect("aborted");
    assert!(
        aborted_at.elapsed() < Duration::from_secs(15),
        "the abort took {:?}",
        aborted_at.elapsed()
    );
    assert!(setup.emitted("t1").iter().any(|e| matches!(e,
        EventBody::ToolCallFinished { call_id, .. } if call_id == "call_s")));

    let events = setup.events("t2");
    let end = setup
        .agent
        .run_turn(
            input(
                &llm,
                LlmApi::OpenAiCompatible,
                "t2",
                "again",
                PermissionMode::Allow,
            ),
            &events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    assert_eq!(text_of(&setup.emitted("t2")), "Again.");
}

#[tokio::test]
async fn opencode_killed_mid_turn_fails_the_turn_and_the_next_one_works() {
    let mut setup = setup();
    let llm = TestLlm::start(vec![
        Reply::stream(openai_text(&["Up."], 10, 2)),
        Reply::Stream {
            chunks: openai_text(&["Thinking"], 10, 2)[..2].to_vec(),
            pause: Duration::from_millis(10),
            hang: true,
        },
        Reply::stream(anthropic_text(&["Back."], 10, 2)),
    ])
    .await;
    // A first turn starts the server.
    let events = setup.events("t1");
    let end = setup
        .agent
        .run_turn(
            input(
                &llm,
                LlmApi::OpenAiCompatible,
                "t1",
                "hi",
                PermissionMode::Allow,
            ),
            &events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    let pid = setup.agent.server_pid().unwrap();

    let killer_queue = setup.queue.clone();
    tokio::spawn(async move {
        for _ in 0..3600 {
            if killer_queue
                .after(0, 10_000)
                .iter()
                .any(|e| e.turn_id == "t2" && matches!(&e.event, EventBody::TextDelta { .. }))
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
                    nix::sys::signal::Signal::SIGKILL,
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let events = setup.events("t2");
    let end = setup
        .agent
        .run_turn(
            input(
                &llm,
                LlmApi::OpenAiCompatible,
                "t2",
                "think",
                PermissionMode::Allow,
            ),
            &events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Failed, "{end:?}");
    assert!(end.error.as_deref().unwrap().contains(DIED), "{end:?}");
    assert!(
        setup.agent.restarting.is_some(),
        "OpenCode is started again right away"
    );

    // The next turn starts a new server (and speaks Anthropic through the proxy).
    let events = setup.events("t3");
    let end = setup
        .agent
        .run_turn(
            input(
                &llm,
                LlmApi::Anthropic,
                "t3",
                "back?",
                PermissionMode::Allow,
            ),
            &events,
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    assert_eq!(text_of(&setup.emitted("t3")), "Back.");
    let last = llm.requests().last().unwrap().clone();
    assert_eq!(last.path, "/v1/messages");
    assert_eq!(last.headers["x-api-key"], "test-key");
    assert_ne!(setup.agent.server_pid(), Some(pid));
}

/// A stand-in OpenCode server that never sends `session.idle` (nor an idle status)
/// and streams only part of its reply: the turn must end by polling the status and
/// show the rest of the reply from the session's messages.
mod without_idle {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::Router;
    use axum::body::Body;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::Response;
    use axum::routing::{get, post};
    use futures::stream;

    use super::*;

    #[derive(Default)]
    struct Fake {
        prompted: AtomicBool,
        prompted_signal: tokio::sync::Notify,
    }

    fn sse(event: Value) -> Result<String, std::convert::Infallible> {
        Ok(format!("data: {event}\n\n"))
    }

    async fn events(State(fake): State<Arc<Fake>>) -> Response {
        let first = stream::iter(vec![sse(
            json!({"type": "server.connected", "properties": {}}),
        )]);
        let after_prompt = stream::once(async move {
            if !fake.prompted.load(Ordering::SeqCst) {
                fake.prompted_signal.notified().await;
            }
            let s = "ses_fake";
            let events = [
                json!({"type": "session.status", "properties": {"sessionID": s, "status": {"type": "busy"}}}),
                json!({"type": "message.updated", "properties": {"sessionID": s,
                    "info": {"id": "msg_a", "role": "assistant", "tokens": {"input": 0, "output": 0}}}}),
                json!({"type": "message.part.updated", "properties": {"sessionID": s,
                    "part": {"id": "prt_t", "messageID": "msg_a", "sessionID": s, "type": "text", "text": ""}}}),
                json!({"type": "message.part.delta", "properties": {"sessionID": s,
                    "messageID": "msg_a", "partID": "prt_t", "field": "text", "delta": "Hello"}}),
            ];
            Ok::<_, std::convert::Infallible>(
                events
                    .iter()
                    .map(|event| format!("data: {event}\n\n"))
                    .collect::<String>(),
            )
        });
        let body = first.chain(after_prompt).chain(stream::pending());
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(body))
            .unwrap()
    }

    async fn prompt(State(fake): State<Arc<Fake>>) -> StatusCode {
        fake.prompted.store(true, Ordering::SeqCst);
        fake.prompted_signal.notify_waiters();
        StatusCode::NO_CONTENT
    }

    async fn status(State(fake): State<Arc<Fake>>) -> axum::Json<Value> {
        // Busy until prompted and a moment after; then idle (absent from the map).
        if fake.prompted.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            axum::Json(json!({}))
        } else {
            axum::Json(json!({"ses_fake": {"type": "busy"}}))
        }
    }

    async fn messages() -> axum::Json<Value> {
        axum::Json(json!([
            {"info": {"id": "msg_old", "role": "assistant", "tokens": {"input": 100, "output": 100}},
             "parts": [{"id": "prt_old", "messageID": "msg_old", "type": "text", "text": "an earlier turn"}]},
            {"info": {"id": "msg_u", "role": "user"}, "parts": []},
            {"info": {"id": "msg_a", "role": "assistant",
                      "tokens": {"input": 7, "output": 3, "reasoning": 0, "cache": {"read": 0, "write": 0}}},
             "parts": [{"id": "prt_t", "messageID": "msg_a", "type": "text", "text": "Hello world"}]}
        ]))
    }

    #[tokio::test]
    async fn a_turn_without_session_idle_ends_by_polling_and_catches_up() {
        let fake = Arc::new(Fake::default());
        let app = Router::new()
            .route("/event", get(events))
            .route("/session/ses_fake/prompt_async", post(prompt))
            .route("/session/status", get(status))
            .route("/session/ses_fake/message", get(messages))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        // A stand-in process: the turn watches it, it never exits on its own.
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("fake-opencode");
        std::fs::write(&binary, "#!/bin/sh\nexec sleep 600\n").unwrap();
        std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let launch = Launch {
            binary,
            wrapper: Vec::new(),
            workspace_dir: dir.path().to_path_buf(),
            home_without_wrapper: dir.path().join("home"),
            log_path: dir.path().join("log"),
            port,
            password: "pw".into(),
            config: "{}".into(),
        };
        let server = RunningServer {
            process: ServerProcess::start(&launch).unwrap(),
            _forward: None,
            client: OpencodeClient::new(reqwest::Client::new(), port, "pw".into()),
            inputs: ConfigInputs {
                api: LlmApi::OpenAiCompatible,
                model: "m".into(),
                permission_mode: PermissionMode::Allow,
                proxy_url: String::new(),
                proxy_token: String::new(),
                mcp_url: String::new(),
                mcp_token: String::new(),
            },
            log_path: launch.log_path.clone(),
        };
        let queue = EventQueue::new(100);
        let events = TurnEvents::new(queue.clone(), "t1");
        let cancel = CancellationToken::new();
        let mut turn = Turn {
            server: &server,
            died: false,
            session_id: "ses_fake".into(),
            events: &events,
            cancel: &cancel,
            mapper: TurnMapper::new("ses_fake"),
            body: None,
            decoder: SseDecoder::new(),
            asks: JoinSet::new(),
            asks_cancel: cancel.child_token(),
            permission_mode: PermissionMode::Allow,
            poll_interval: Duration::from_millis(200),
        };
        let llm = TestLlm::start(Vec::new()).await;
        let end = tokio::time::timeout(
            Duration::from_secs(30),
            turn.run(&input(
                &llm,
                LlmApi::OpenAiCompatible,
                "t1",
                "hi",
                PermissionMode::Allow,
            )),
        )
        .await
        .expect("the turn ended without session.idle");
        assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
        let emitted: Vec<EventBody> = queue.after(0, 100).into_iter().map(|e| e.event).collect();
        assert_eq!(text_of(&emitted), "Hello world", "{emitted:?}");
        assert_eq!(end.usage.input_tokens, 7, "only this turn's messages count");
        assert_eq!(end.usage.output_tokens, 3);
    }
}

#[tokio::test]
async fn a_server_left_by_a_killed_runner_is_stopped_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("opencode.pid");
    let spawn = |script: &str| {
        tokio::process::Command::new("bash")
            .args(["-c", script])
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut left_over = spawn("sleep 30; : OPENCODE_SERVER_PASSWORD");
    let mut unrelated = spawn("sleep 30; : something else");

    std::fs::write(&pid_file, unrelated.id().unwrap().to_string()).unwrap();
    stop_left_over(&pid_file);
    assert!(!pid_file.exists());
    std::fs::write(&pid_file, left_over.id().unwrap().to_string()).unwrap();
    stop_left_over(&pid_file);

    let status = tokio::time::timeout(Duration::from_secs(10), left_over.wait())
        .await
        .expect("the left-over server was stopped")
        .unwrap();
    assert!(!status.success());
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "an unrelated process is left alone"
    );
}
