//! Recorded OpenCode 1.18.33 event streams (from `opencode serve` against a scripted
//! OpenAI-compatible server, noise such as `plugin.added` removed) fed through the
//! mapper.

use serde_json::json;

use super::*;
use crate::llm::SseDecoder;

const SESSION: &str = "ses_dfd9dea29ffeoVus2goypJ5zsf";

fn recorded(name: &str) -> Vec<Value> {
    let text = match name {
        "write_with_permission" => include_str!("../testdata/write_with_permission.sse"),
        "question" => include_str!("../testdata/question.sse"),
        "bash_aborted" => include_str!("../testdata/bash_aborted.sse"),
        _ => unreachable!(),
    };
    let mut decoder = SseDecoder::new();
    // Fed in small pieces, as a socket delivers them.
    let mut events = Vec::new();
    for chunk in text.as_bytes().chunks(97) {
        events.extend(decoder.feed(chunk).unwrap());
    }
    events.extend(decoder.finish());
    events
        .into_iter()
        .map(|event| serde_json::from_str(&event.data).unwrap())
        .collect()
}

fn run(name: &str) -> (TurnMapper, Vec<Mapped>) {
    let mut mapper = TurnMapper::new(SESSION);
    let mut out = Vec::new();
    for event in recorded(name) {
        out.extend(mapper.map(&event, 0));
    }
    (mapper, out)
}

fn emitted(out: &[Mapped]) -> Vec<EventBody> {
    out.iter()
        .filter_map(|m| match m {
            Mapped::Emit(body) => Some(body.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_tool_call_with_a_permission_request_then_text() {
    let (mapper, out) = run("write_with_permission");
    let asks: Vec<&Ask> = out
        .iter()
        .filter_map(|m| match m {
            Mapped::Ask(ask) => Some(ask),
            _ => None,
        })
        .collect();
    assert_eq!(asks.len(), 1);
    assert!(
        matches!(asks[0], Ask::Permission { request_id, text, options }
            if request_id.starts_with("per_") && text.contains("external_directory")
                && text.contains("/workspace/*") && options.len() == 3),
        "{asks:?}"
    );
    let events = emitted(&out);
    let started = events
        .iter()
        .position(|e| {
            matches!(e, EventBody::ToolCallStarted { tool, args, .. }
            if tool == "write" && args["filePath"] == "/workspace/hello.txt")
        })
        .expect("tool_call_started");
    let finished = events
        .iter()
        .position(|e| matches!(e, EventBody::ToolCallFinished { call_id, is_error: false, .. } if call_id == "call_1"))
        .expect("tool_call_finished");
    assert!(started < finished);
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            EventBody::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        text, "Hello from scripted",
        "the prompt itself is not echoed"
    );
    assert_eq!(out.last(), Some(&Mapped::Idle));
    // Two LLM calls of 10 + 3 tokens each.
    assert_eq!(
        mapper.usage(),
        TokenUsage {
            input_tokens: 20,
            output_tokens: 6,
            ..TokenUsage::default()
        }
    );
    assert_eq!(mapper.error(), None);
}

#[test]
fn a_question_becomes_an_ask_with_its_options() {
    let (_, out) = run("question");
    let ask = out
        .iter()
        .find_map(|m| match m {
            Mapped::Ask(Ask::Question {
                request_id,
                questions,
            }) => Some((request_id.clone(), questions.clone())),
            _ => None,
        })
        .expect("a question");
    assert!(ask.0.starts_with("que_"));
    assert_eq!(
        ask.1,
        vec![AskedQuestion {
            text: "Colour: Which colour?".into(),
            options: vec!["red".into(), "blue".into()],
        }]
    );
    assert!(emitted(&out).iter().any(|e| matches!(e,
        EventBody::ToolCallStarted { tool, .. } if tool == "question")));
}

#[test]
fn an_aborted_command_is_an_abort_not_an_error() {
    let (mut mapper, out) = run("bash_aborted");
    assert!(mapper.aborted());
    assert_eq!(mapper.error(), None);
    assert!(out.contains(&Mapped::Idle));
    let events = emitted(&out);
    assert!(
        events.iter().any(|e| matches!(e,
        EventBody::ToolCallFinished { output, .. } if output.contains("User aborted the command")))
    );
    assert!(
        mapper.close_open_tools("aborted").is_empty(),
        "nothing left open"
    );
}

#[test]
fn text_deltas_of_unknown_or_reasoning_parts_are_not_shown() {
    let mut mapper = TurnMapper::new("s");
    let assistant = json!({"type": "message.updated", "properties": {"sessionID": "s",
        "info": {"id": "m1", "role": "assistant", "tokens": {"input": 1, "output": 2, "reasoning": 0, "cache": {"read": 0, "write": 0}}}}});
    assert!(mapper.map(&assistant, 0).is_empty());
    let reasoning = json!({"type": "message.part.updated", "properties": {"sessionID": "s",
        "part": {"id": "p1", "messageID": "m1", "type": "reasoning", "text": ""}}});
    mapper.map(&reasoning, 0);
    let delta = |part: &str| {
        json!({"type": "message.part.delta", "properties": {"sessionID": "s",
        "messageID": "m1", "partID": part, "field": "text", "delta": "thinking"}})
    };
    assert!(mapper.map(&delta("p1"), 0).is_empty());
    assert!(mapper.map(&delta("p9"), 0).is_empty());
    // Another session's text is not this turn's.
    let other = json!({"type": "message.part.delta", "properties": {"sessionID": "other",
        "messageID": "m1", "partID": "p1", "field": "text", "delta": "x"}});
    assert!(mapper.map(&other, 0).is_empty());
}

#[test]
fn a_text_part_seen_only_whole_is_shown_once() {
    let mut mapper = TurnMapper::new("s");
    mapper.map(
        &json!({"type": "message.updated", "properties": {"sessionID": "s", "info": {"id": "m1", "role": "assistant"}}}),
        0,
    );
    let part = |text: &str| {
        json!({"type": "message.part.updated", "properties": {"sessionID": "s",
        "part": {"id": "p1", "messageID": "m1", "type": "text", "text": text}}})
    };
    assert_eq!(
        mapper.map(&part("Hel"), 0),
        vec![Mapped::Emit(EventBody::TextDelta { text: "Hel".into() })]
    );
    let delta = json!({"type": "message.part.delta", "properties": {"sessionID": "s",
        "messageID": "m1", "partID": "p1", "field": "text", "delta": "lo"}});
    assert_eq!(
        mapper.map(&delta, 0),
        vec![Mapped::Emit(EventBody::TextDelta { text: "lo".into() })]
    );
    assert_eq!(
        mapper.map(&part("Hello!"), 0),
        vec![Mapped::Emit(EventBody::TextDelta { text: "!".into() })]
    );
    assert!(mapper.map(&part("Hello!"), 0).is_empty());
}

#[test]
fn errors_retries_and_idle_before_busy() {
    let mut mapper = TurnMapper::new("s");
    let idle = json!({"type": "session.idle", "properties": {"sessionID": "s"}});
    assert!(
        mapper.map(&idle, 0).is_empty(),
        "idle before the turn began"
    );
    let retry = json!({"type": "session.status", "properties": {"sessionID": "s",
        "status": {"type": "retry", "attempt": 2, "message": "Rate limited", "next": 5_000}}});
    assert_eq!(
        mapper.map(&retry, 1_000),
        vec![Mapped::Emit(EventBody::Retrying {
            attempt: 2,
            max_attempts: 0,
            delay_ms: 4_000,
            reason: "Rate limited".into()
        })]
    );
    let error = json!({"type": "session.error", "properties": {"sessionID": "s",
        "error": {"name": "APIError", "data": {"message": "Bad request: model not found"}}}});
    mapper.map(&error, 0);
    assert_eq!(
        mapper.error(),
        Some("OpenCode: Bad request: model not found")
    );
    assert_eq!(mapper.map(&idle, 0), vec![Mapped::Idle]);
}

#[test]
fn open_tools_are_closed_and_a_failed_tool_is_an_error() {
    let mut mapper = TurnMapper::new("s");
    mapper.map(
        &json!({"type": "message.updated", "properties": {"sessionID": "s", "info": {"id": "m1", "role": "assistant"}}}),
        0,
    );
    let tool = |call: &str, state: Value| {
        json!({"type": "message.part.updated", "properties": {"sessionID": "s",
        "part": {"id": format!("p{call}"), "messageID": "m1", "type": "tool", "tool": "bash", "callID": call, "state": state}}})
    };
    mapper.map(
        &tool(
            "a",
            json!({"status": "running", "input": {"command": "sleep 9"}}),
        ),
        0,
    );
    let failed = mapper.map(
        &tool(
            "b",
            json!({"status": "error", "input": {}, "error": "no such file"}),
        ),
        0,
    );
    assert_eq!(failed.len(), 2, "started, then finished: {failed:?}");
    assert!(
        matches!(&failed[1], Mapped::Emit(EventBody::ToolCallFinished { is_error: true, output, .. }) if output == "no such file")
    );
    let closed = mapper.close_open_tools("OpenCode stopped");
    assert_eq!(closed.len(), 1);
    assert!(
        matches!(&closed[0], EventBody::ToolCallFinished { call_id, is_error: true, .. } if call_id == "a")
    );
}

#[test]
fn permission_answers_map_to_opencode_replies() {
    assert_eq!(permission_reply("allow"), "once");
    assert_eq!(permission_reply("Always"), "always");
    assert_eq!(permission_reply("deny"), "reject");
    assert_eq!(permission_reply("whatever"), "reject");
}
