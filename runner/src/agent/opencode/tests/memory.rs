//! OpenCode's turns in the session's conversation, and a fresh OpenCode session
//! seeded from it, against a real `opencode serve` and an HTTP server keeping the
//! session's copy as the `SessionAgent` does (`GET`/`POST .../conversation`).

use std::sync::Mutex;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use nightshift_protocol::conversation::{
    ConversationEntry, ConversationPage, ConversationStored, ConversationWrite,
};
use serde_json::Value;

use super::*;
use crate::agent::ConversationMemory;
use crate::agent::opencode::seed::{MAX_SEED_BYTES, SEED_HEADING};
use crate::llm::ConversationItem;
use crate::repo::worker_api::WorkerApi;

type Entries = Arc<Mutex<Vec<ConversationEntry>>>;

/// The session's copy of the conversation behind a real HTTP server.
struct SessionCopy {
    entries: Entries,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SessionCopy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(serde::Deserialize)]
struct FromQuery {
    from: u64,
}

async fn read(State(entries): State<Entries>, Query(query): Query<FromQuery>) -> Response {
    let entries = entries.lock().unwrap();
    let from = (query.from as usize).min(entries.len());
    Json(ConversationPage {
        stored: entries.len() as u64,
        entries: entries[from..].to_vec(),
        next: None,
    })
    .into_response()
}

async fn write(State(entries): State<Entries>, Json(write): Json<ConversationWrite>) -> Response {
    let mut entries = entries.lock().unwrap();
    if write.from as usize > entries.len() {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": {"code": "conflict", "message": "past the end"}})),
        )
            .into_response();
    }
    entries.truncate(write.from as usize);
    entries.extend(write.entries);
    Json(ConversationStored {
        stored: entries.len() as u64,
    })
    .into_response()
}

impl SessionCopy {
    async fn start(entries: Vec<ConversationEntry>) -> SessionCopy {
        let entries: Entries = Arc::new(Mutex::new(entries));
        let app = axum::Router::new()
            .route("/api/sessions/s1/conversation", get(read).post(write))
            .with_state(entries.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/sessions/s1", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SessionCopy { entries, url, task }
    }

    fn memory(&self) -> ConversationMemory {
        let (_, token) = tokio::sync::watch::channel("runner-token".to_string());
        ConversationMemory::new(WorkerApi::new(self.url.clone(), token).unwrap())
    }

    fn items(&self) -> Vec<(String, ConversationItem)> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .map(|entry| (entry.message_id.clone(), entry.item.clone()))
            .collect()
    }
}

fn entry(message_id: &str, item: ConversationItem) -> ConversationEntry {
    ConversationEntry {
        message_id: message_id.into(),
        item,
    }
}

fn user(text: &str) -> ConversationItem {
    ConversationItem::User { text: text.into() }
}

fn reply(text: &str) -> ConversationItem {
    ConversationItem::Assistant {
        text: text.into(),
        tool_calls: Vec::new(),
    }
}

/// The text of each user message of an OpenAI-format request.
fn user_texts(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|message| message["role"] == "user")
        .map(|message| match &message["content"] {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            _ => String::new(),
        })
        .collect()
}

async fn run(setup: &mut Setup, llm: &TestLlm, turn_id: &str, content: &str) -> TurnEnd {
    let events = setup.events(turn_id);
    setup
        .agent
        .run_turn(
            input(
                llm,
                LlmApi::OpenAiCompatible,
                turn_id,
                content,
                PermissionMode::Allow,
            ),
            &events,
            &CancellationToken::new(),
        )
        .await
}

#[tokio::test]
#[ignore = "heavy (real opencode serve): run alone by `make test-unit`"]
async fn a_fresh_opencode_session_hears_the_earlier_turns_once_within_the_bound() {
    // The session so far: many old turns, then the built-in agent's last one.
    let mut earlier = Vec::new();
    for index in 0..100 {
        earlier.push(entry(
            &format!("old{index}"),
            user(&format!("old-{index}: {}", "x".repeat(1000))),
        ));
    }
    earlier.push(entry("m0", user("the codeword is PAPAYA")));
    earlier.push(entry("m0", reply("Noted: PAPAYA-REPLY.")));
    let copy = SessionCopy::start(earlier).await;
    let mut setup = setup();
    setup.agent = OpencodeAgent::new(settings(setup.workspace.path(), setup.state.path()))
        .with_memory(copy.memory());
    let llm = TestLlm::start(vec![
        Reply::stream(openai_text(&["It was PAPAYA."], 10, 2)),
        Reply::stream(openai_text(&["Nothing else."], 10, 2)),
    ])
    .await;

    let end = run(&mut setup, &llm, "t1", "what was the codeword?").await;
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    let users = user_texts(&requests[0].body);
    assert_eq!(users.len(), 2, "{users:#?}");
    let seed = &users[0];
    assert!(seed.starts_with(SEED_HEADING), "{seed}");
    assert!(seed.contains("the codeword is PAPAYA") && seed.contains("PAPAYA-REPLY"));
    assert!(
        seed.len() <= SEED_HEADING.len() + 100 + MAX_SEED_BYTES,
        "{}",
        seed.len()
    );
    assert!(!seed.contains("old-0:"), "the oldest turns are left out");
    assert_eq!(users[1], "what was the codeword?");

    // The next turn continues the same OpenCode session: the seed is not sent again.
    let end = run(&mut setup, &llm, "t2", "anything else?").await;
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    let body = llm.requests()[1].body.to_string();
    assert_eq!(
        body.matches("Earlier conversation of this session").count(),
        1
    );
    assert!(body.contains("It was PAPAYA."));

    // The session keeps OpenCode's turns after the earlier ones.
    let items = copy.items();
    assert_eq!(items.len(), 106, "{:#?}", &items[100..]);
    assert_eq!(
        items[102..].to_vec(),
        vec![
            ("m-t1".to_string(), user("what was the codeword?")),
            ("m-t1".to_string(), reply("It was PAPAYA.")),
            ("m-t2".to_string(), user("anything else?")),
            ("m-t2".to_string(), reply("Nothing else.")),
        ]
    );
}

#[tokio::test]
#[ignore = "heavy (real opencode serve): run alone by `make test-unit`"]
async fn an_opencode_session_found_in_the_home_is_continued_without_a_seed() {
    let copy = SessionCopy::start(Vec::new()).await;
    let mut setup = setup();
    setup.agent = OpencodeAgent::new(settings(setup.workspace.path(), setup.state.path()))
        .with_memory(copy.memory());
    let llm = TestLlm::start(vec![
        Reply::stream(openai_tool_call(
            "call_1",
            "bash",
            &json!({"command": "echo MANGO-OUTPUT", "description": "say it"}),
            10,
            5,
        )),
        Reply::stream(openai_text(&["Noted."], 10, 2)),
        Reply::stream(openai_text(&["MANGO."], 10, 2)),
    ])
    .await;
    let end = run(&mut setup, &llm, "t1", "the codeword is MANGO").await;
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    assert!(
        llm.requests()[0]
            .body
            .to_string()
            .matches("the codeword is MANGO")
            .count()
            == 1,
        "a first turn has nothing to be seeded with"
    );
    // The turn's prompt, tool step and reply are in the session's copy.
    let items = copy.items();
    assert_eq!(items.len(), 4, "{items:#?}");
    assert_eq!(items[0], ("m-t1".into(), user("the codeword is MANGO")));
    assert!(matches!(&items[1].1,
        ConversationItem::Assistant { tool_calls, .. } if tool_calls.len() == 1 && tool_calls[0].id == "call_1" && tool_calls[0].name == "bash"));
    assert!(matches!(&items[2].1,
        ConversationItem::ToolResult { call_id, content, is_error: false } if call_id == "call_1" && content.contains("MANGO-OUTPUT")));
    assert_eq!(items[3], ("m-t1".into(), reply("Noted.")));

    // A runner started again (the home is kept) continues OpenCode's own session.
    setup.agent = OpencodeAgent::new(settings(setup.workspace.path(), setup.state.path()))
        .with_memory(copy.memory());
    let end = run(&mut setup, &llm, "t2", "what was the codeword?").await;
    assert_eq!(end.outcome, TurnOutcome::Done, "{end:?}");
    let requests = llm.requests();
    let last = requests.last().unwrap().body.to_string();
    assert!(
        !last.contains("Earlier conversation of this session"),
        "{last}"
    );
    assert_eq!(
        user_texts(&requests.last().unwrap().body),
        ["the codeword is MANGO", "what was the codeword?"]
    );
    assert_eq!(copy.items().len(), 6);
}

#[tokio::test]
#[ignore = "heavy (real opencode serve): run alone by `make test-unit`"]
async fn an_agent_whose_turn_follows_the_other_agents_reads_the_copy_again_before_writing() {
    let copy = SessionCopy::start(Vec::new()).await;
    let mut builtin = copy.memory();
    let mut builtin_conversation = Vec::new();
    builtin.begin_turn(&mut builtin_conversation, "m1").await;
    builtin_conversation.extend([user("one"), reply("builtin's reply")]);
    builtin.save(&builtin_conversation, "m1").await;

    // OpenCode's turn reads the built-in agent's and writes after it.
    let mut opencode = copy.memory();
    let mut opencode_conversation = Vec::new();
    opencode.begin_turn(&mut opencode_conversation, "m2").await;
    assert_eq!(opencode_conversation.len(), 2);
    opencode_conversation.extend([user("two"), reply("OpenCode's reply")]);
    opencode.save(&opencode_conversation, "m2").await;

    // The built-in agent's next turn holds OpenCode's too, and keeps it.
    builtin.forget(&mut builtin_conversation);
    builtin.begin_turn(&mut builtin_conversation, "m3").await;
    assert_eq!(builtin_conversation, opencode_conversation);
    builtin_conversation.extend([user("three"), reply("builtin again")]);
    builtin.save(&builtin_conversation, "m3").await;
    let ids: Vec<String> = copy.items().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["m1", "m1", "m2", "m2", "m3", "m3"]);
}
