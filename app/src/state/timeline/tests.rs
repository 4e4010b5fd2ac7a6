//! Unit tests of the timeline reducer, fed with events as the Worker serializes them.

use nightshift_protocol::api::{Message, MessageState, SessionStatus};
use nightshift_protocol::events::{EventBody, SessionEvent, TokenUsage, TurnOutcome};
use serde_json::json;

use super::{Entry, QuestionState, Timeline, TurnEnd, TurnItem};
use nightshift_protocol::api::{AgentKind, PermissionMode, UsageTotals};
use nightshift_protocol::events::QuestionKind;

/// Builds events with consecutive `seq`s, as one session's stream would carry them.
struct Stream {
    next_seq: u64,
}

impl Stream {
    fn new() -> Self {
        Stream { next_seq: 1 }
    }

    fn event(&mut self, turn_id: Option<&str>, body: EventBody) -> SessionEvent {
        let seq = self.next_seq;
        self.next_seq += 1;
        SessionEvent {
            seq,
            turn_id: turn_id.map(str::to_owned),
            at: seq as i64,
            body,
        }
    }

    /// An event parsed from the JSON the browser receives, so the tests also pin the
    /// wire shape the reducer relies on.
    fn wire(&mut self, turn_id: &str, mut body: serde_json::Value) -> SessionEvent {
        body["seq"] = json!(self.next_seq);
        body["turn_id"] = json!(turn_id);
        body["at"] = json!(0);
        self.next_seq += 1;
        serde_json::from_value(body).expect("test events are valid wire JSON")
    }
}

fn started(message_id: &str, content: &str) -> EventBody {
    EventBody::TurnStarted {
        message_id: message_id.into(),
        content: content.into(),
        attempt: 1,
    }
}

fn delta(text: &str) -> EventBody {
    EventBody::TextDelta { text: text.into() }
}

fn finished(outcome: TurnOutcome, error: Option<&str>) -> EventBody {
    EventBody::TurnFinished {
        outcome,
        usage: TokenUsage {
            input_tokens: 10,
            output_tokens: 3,
            ..TokenUsage::default()
        },
        error: error.map(str::to_owned),
        duration_ms: 1_200,
    }
}

#[test]
fn a_turn_collects_its_prompt_text_and_tool_calls_in_order() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(
        None,
        EventBody::PromptQueued {
            message_id: "m1".into(),
            content: "list files".into(),
            position: 0,
        },
    ));
    assert_eq!(timeline.queue().len(), 1);
    timeline.apply(stream.event(Some("t1"), started("m1", "list files")));
    assert!(timeline.queue().is_empty());
    timeline.apply(stream.event(Some("t1"), delta("Let me ")));
    timeline.apply(stream.event(Some("t1"), delta("look.\n")));
    timeline.apply(stream.wire(
        "t1",
        json!({"type": "tool_call_started", "call_id": "c1", "tool": "bash", "args": {"command": "ls"}}),
    ));
    assert!(timeline.has_running_turn());
    timeline.apply(stream.wire(
        "t1",
        json!({"type": "tool_call_finished", "call_id": "c1", "output": "a\nb\n", "is_error": false}),
    ));
    timeline.apply(stream.event(Some("t1"), delta("Two files.")));
    timeline.apply(stream.event(Some("t1"), finished(TurnOutcome::Done, None)));

    assert_eq!(timeline.entries(), [Entry::Turn(0)]);
    let turn = timeline.turn(0).expect("one turn");
    assert_eq!(turn.prompt.as_deref(), Some("list files"));
    assert_eq!(turn.items.len(), 3);
    assert_eq!(turn.items[0], TurnItem::Text("Let me look.\n".into()));
    let TurnItem::ToolCall(call) = &turn.items[1] else {
        panic!("expected a tool call")
    };
    assert_eq!(call.tool, "bash");
    assert_eq!(call.args, json!({"command": "ls"}));
    let result = call.result.as_ref().expect("the call finished");
    assert_eq!(result.output, "a\nb\n");
    assert_eq!(result.truncated_bytes, 0);
    assert_eq!(turn.items[2], TurnItem::Text("Two files.".into()));
    assert_eq!(
        turn.end,
        TurnEnd::Finished {
            outcome: TurnOutcome::Done,
            usage: TokenUsage {
                input_tokens: 10,
                output_tokens: 3,
                ..TokenUsage::default()
            },
            duration_ms: 1_200,
        }
    );
    assert!(!timeline.has_running_turn());
}

#[test]
fn replayed_events_are_ignored() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    let events = [
        stream.event(Some("t1"), started("m1", "hi")),
        stream.event(Some("t1"), delta("Hel")),
        stream.event(Some("t1"), delta("lo")),
    ];
    for event in events.iter().cloned() {
        assert!(timeline.apply(event));
    }
    // A reconnect replays from an earlier point; nothing may render twice.
    for event in events.iter().skip(1).cloned() {
        assert!(!timeline.apply(event));
    }
    assert_eq!(timeline.last_seq(), 3);
    assert_eq!(
        timeline.turn(0).map(|turn| turn.items.clone()),
        Some(vec![TurnItem::Text("Hello".into())])
    );
}

#[test]
fn every_change_to_a_turn_bumps_its_revision() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(Some("t1"), started("m1", "hi")));
    let before = timeline.turn(0).map(|turn| turn.revision);
    timeline.apply(stream.event(Some("t1"), delta("x")));
    assert_ne!(timeline.turn(0).map(|turn| turn.revision), before);
}

#[test]
fn an_error_repeated_by_turn_finished_shows_once() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(Some("t1"), started("m1", "hi")));
    timeline.apply(stream.event(
        Some("t1"),
        EventBody::Error {
            message: "no LLM configured".into(),
        },
    ));
    timeline.apply(stream.event(
        Some("t1"),
        finished(TurnOutcome::Failed, Some("no LLM configured")),
    ));
    let turn = timeline.turn(0).expect("one turn");
    assert_eq!(
        turn.items,
        vec![TurnItem::Error("no LLM configured".into())]
    );

    // An error only `turn_finished` names is still shown.
    timeline.apply(stream.event(Some("t2"), started("m2", "again")));
    timeline.apply(stream.event(
        Some("t2"),
        finished(TurnOutcome::Failed, Some("rate limited")),
    ));
    let turn = timeline.turn(1).expect("two turns");
    assert_eq!(turn.items, vec![TurnItem::Error("rate limited".into())]);
}

#[test]
fn a_reached_spend_cap_shows_in_its_turn_and_step_usage_shows_nothing() {
    use nightshift_protocol::usage::{CapHit, CapMeasure, CapScope};
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(Some("t1"), started("m1", "loop")));
    timeline.apply(stream.event(
        Some("t1"),
        EventBody::StepUsage {
            usage: TokenUsage::default(),
        },
    ));
    let cap = CapHit {
        scope: CapScope::Session,
        measure: CapMeasure::Cost,
        limit: 10_000,
        used: 12_000,
    };
    timeline.apply(stream.event(
        Some("t1"),
        EventBody::CapReached {
            cap,
            message: cap.message(),
        },
    ));
    timeline.apply(stream.event(Some("t1"), finished(TurnOutcome::Aborted, None)));
    let turn = timeline.turn(0).expect("one turn");
    assert_eq!(turn.items, vec![TurnItem::Error(cap.message())]);
}

#[test]
fn an_interrupted_turn_requeues_its_prompt_and_the_retry_is_a_new_turn() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(Some("t1"), started("m1", "build it")));
    timeline.apply(stream.event(Some("t1"), delta("Working")));
    timeline.apply(stream.event(
        Some("t1"),
        EventBody::TurnInterrupted {
            message_id: "m1".into(),
            reason: "runner restarted".into(),
        },
    ));
    assert!(!timeline.has_running_turn());
    assert_eq!(timeline.queue().prompts()[0].content, "build it");
    assert_eq!(
        timeline.turn(0).map(|turn| turn.end.clone()),
        Some(TurnEnd::Interrupted {
            reason: "runner restarted".into()
        })
    );

    timeline.apply(stream.event(
        Some("t2"),
        EventBody::TurnStarted {
            message_id: "m1".into(),
            content: "build it".into(),
            attempt: 2,
        },
    ));
    assert!(timeline.queue().is_empty());
    assert_eq!(timeline.entries(), [Entry::Turn(0), Entry::Turn(1)]);
    assert_eq!(timeline.turn(1).map(|turn| turn.attempt), Some(2));
    assert!(timeline.has_running_turn());
}

#[test]
fn status_changes_and_session_notices_are_kept() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    assert_eq!(timeline.status(), None);
    timeline.apply(stream.event(
        None,
        EventBody::StatusChanged {
            status: SessionStatus::Idle,
        },
    ));
    timeline.apply(stream.event(
        None,
        EventBody::Error {
            message: "sandbox failed".into(),
        },
    ));
    timeline.apply(stream.event(
        None,
        EventBody::StatusChanged {
            status: SessionStatus::Error,
        },
    ));
    assert_eq!(timeline.status(), Some(SessionStatus::Error));
    assert_eq!(timeline.entries(), [Entry::Notice(0)]);
    assert_eq!(
        timeline.notice(0).map(|notice| notice.message.as_str()),
        Some("sandbox failed")
    );
    assert!(timeline.has_notice("sandbox failed"));
    assert!(!timeline.has_notice("something else"));
}

#[test]
fn events_of_an_unknown_turn_still_render() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    // The stream's history may begin mid-turn; the text must not be dropped.
    timeline.apply(stream.event(Some("t9"), delta("partial")));
    timeline.apply(stream.wire(
        "t9",
        json!({"type": "tool_call_finished", "call_id": "c7", "output": "x", "is_error": true, "truncated_bytes": 5}),
    ));
    let turn = timeline.turn(0).expect("a turn was made up");
    assert_eq!(turn.prompt, None);
    assert_eq!(turn.items.len(), 2);
    let TurnItem::ToolCall(call) = &turn.items[1] else {
        panic!("expected a tool call")
    };
    assert_eq!(
        call.result
            .as_ref()
            .map(|result| (result.is_error, result.truncated_bytes)),
        Some((true, 5))
    );
}

#[test]
fn messages_snapshot_and_cancel_feed_the_queue() {
    let mut timeline = Timeline::default();
    let queued = Message {
        id: "m1".into(),
        content: "later".into(),
        state: MessageState::Queued,
        position: Some(0),
        turn_id: None,
        attempts: 0,
        reply: None,
        error: None,
        created_at: 0,
        started_at: None,
        finished_at: None,
        mode: Default::default(),
        usage: None,
        duration_ms: None,
        sent_by: None,
    };
    timeline.merge_messages(std::slice::from_ref(&queued));
    assert_eq!(timeline.queue().prompts()[0].content, "later");
    timeline.cancel_accepted("m1");
    assert!(timeline.queue().is_empty());
}

fn asked(question_id: &str, timeout_ms: u64) -> EventBody {
    EventBody::QuestionAsked {
        question_id: question_id.into(),
        kind: QuestionKind::Question,
        text: "Which colour?".into(),
        options: vec!["red".into(), "blue".into()],
        timeout_ms,
    }
}

#[test]
fn questions_open_and_close_by_answer_expiry_or_the_end_of_the_turn() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(Some("t1"), started("m1", "ask me")));
    timeline.apply(stream.event(Some("t1"), asked("q1", 60_000)));
    timeline.apply(stream.event(Some("t1"), asked("q2", 60_000)));
    timeline.apply(stream.event(Some("t1"), asked("q3", 60_000)));
    let open: Vec<_> = timeline
        .open_questions()
        .iter()
        .map(|q| q.question_id.clone())
        .collect();
    assert_eq!(open, ["q1", "q2", "q3"]);
    let TurnItem::Question(question) = &timeline.turns()[0].items[0] else {
        panic!("the question is an item of its turn");
    };
    // `at` of the event (its seq in these tests) plus the timeout.
    assert_eq!(question.expires_at, 2 + 60_000);
    assert_eq!(question.options, ["red", "blue"]);

    timeline.apply(stream.event(
        Some("t1"),
        EventBody::QuestionAnswered {
            question_id: "q1".into(),
            answer: "blue".into(),
            answered_by: None,
        },
    ));
    timeline.apply(stream.event(
        Some("t1"),
        EventBody::QuestionExpired {
            question_id: "q2".into(),
        },
    ));
    let states: Vec<_> = timeline.turns()[0]
        .items
        .iter()
        .filter_map(|item| match item {
            TurnItem::Question(q) => Some(q.state.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            QuestionState::Answered {
                answer: "blue".into()
            },
            QuestionState::Expired,
            QuestionState::Open
        ]
    );
    timeline.apply(stream.event(Some("t1"), finished(TurnOutcome::Done, None)));
    assert!(timeline.open_questions().is_empty());
}

#[test]
fn retries_settings_edits_and_totals() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(
        None,
        EventBody::PromptQueued {
            message_id: "m1".into(),
            content: "one".into(),
            position: 0,
        },
    ));
    timeline.apply(stream.event(
        None,
        EventBody::PromptsMerged {
            message_id: "m1".into(),
            merged_ids: vec!["m2".into()],
            content: "one\n\ntwo".into(),
        },
    ));
    assert_eq!(timeline.queue().prompts()[0].content, "one\n\ntwo");
    timeline.apply(stream.event(
        None,
        EventBody::PromptQueued {
            message_id: "s".into(),
            content: "steer".into(),
            position: 0,
        },
    ));
    assert_eq!(timeline.queue().prompts()[0].message_id, "s");
    timeline.apply(stream.event(
        None,
        EventBody::PromptEdited {
            message_id: "s".into(),
            content: "steer harder".into(),
        },
    ));
    assert_eq!(timeline.queue().prompts()[0].content, "steer harder");

    timeline.apply(stream.event(Some("t1"), started("s", "steer harder")));
    timeline.apply(stream.event(
        Some("t1"),
        EventBody::Retrying {
            attempt: 1,
            max_attempts: 4,
            delay_ms: 500,
            reason: "429".into(),
        },
    ));
    assert!(matches!(&timeline.turns()[0].items[0], TurnItem::Retry(r) if r.attempt == 1));
    timeline.apply(stream.event(Some("t1"), finished(TurnOutcome::Aborted, None)));
    timeline.apply(stream.event(Some("t2"), started("m1", "one\n\ntwo")));
    timeline.apply(stream.event(Some("t2"), finished(TurnOutcome::Done, None)));
    assert_eq!(
        timeline.usage_totals(),
        UsageTotals {
            input_tokens: 20,
            output_tokens: 6,
            turns: 2,
            duration_ms: 2_400
        }
    );

    assert!(timeline.settings().is_none());
    timeline.apply(stream.event(
        None,
        EventBody::SessionUpdated {
            agent: AgentKind::Opencode,
            model: Some("m".into()),
            permission_mode: PermissionMode::Allow,
        },
    ));
    let settings = timeline.settings().expect("announced");
    assert_eq!(settings.agent, AgentKind::Opencode);
    assert_eq!(settings.model.as_deref(), Some("m"));
}

#[test]
fn a_turn_the_runner_did_not_time_is_timed_from_its_events() {
    let mut timeline = Timeline::default();
    let at = |seq: u64, at: i64, body: EventBody| SessionEvent {
        seq,
        turn_id: Some("t".into()),
        at,
        body,
    };
    timeline.apply(at(1, 1_000, started("m", "p")));
    timeline.apply(at(
        2,
        3_500,
        EventBody::TurnFinished {
            outcome: TurnOutcome::Done,
            usage: TokenUsage::default(),
            error: None,
            duration_ms: 0,
        },
    ));
    assert_eq!(timeline.usage_totals().duration_ms, 2_500);
}

#[test]
fn an_image_event_becomes_an_image_in_its_turn_and_a_bad_reference_is_dropped() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(Some("t1"), started("m1", "look")));
    timeline.apply(stream.wire(
        "t1",
        json!({"type": "image", "call_id": "c1", "artifact": "0f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b", "width": 800, "height": 600}),
    ));
    timeline.apply(stream.wire(
        "t1",
        json!({"type": "image", "artifact": "../../../api/me", "width": 1, "height": 1}),
    ));
    let turn = timeline.turn(0).expect("the turn");
    let images: Vec<_> = turn
        .items
        .iter()
        .filter_map(|item| match item {
            TurnItem::Image(image) => Some(image.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].artifact, "0f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!((images[0].width, images[0].height), (800, 600));
}

fn joined(text: &str, from_seq: u64) -> SessionEvent {
    // The compacted log keeps the run's last seq for the joined event.
    serde_json::from_value(json!({
        "seq": 0, "turn_id": "t1", "at": 0,
        "type": "text", "text": text, "from_seq": from_seq
    }))
    .expect("a joined text event is valid wire JSON")
}

fn texts(timeline: &Timeline) -> Vec<String> {
    timeline.turns()[0]
        .items
        .iter()
        .filter_map(|item| match item {
            TurnItem::Text(text) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_reconnect_inside_a_compacted_run_replaces_its_partial_text() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(Some("t1"), started("m1", "go")));
    timeline.apply(stream.event(
        Some("t1"),
        EventBody::ToolCallStarted {
            call_id: "c1".into(),
            tool: "bash".into(),
            args: json!({}),
        },
    ));
    // seq 3, 4: two deltas of a run, then the stream dropped. The run went on to
    // seq 6 and was joined at seq 6 from seq 3.
    timeline.apply(stream.event(Some("t1"), delta("Hel")));
    timeline.apply(stream.event(Some("t1"), delta("lo")));
    let mut event = joined("Hello there", 3);
    event.seq = 6;
    assert!(timeline.apply(event));
    assert_eq!(texts(&timeline), ["Hello there"]);
}

#[test]
fn a_joined_run_after_a_tool_result_keeps_the_text_before_it() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    timeline.apply(stream.event(Some("t1"), started("m1", "go"))); // 1
    timeline.apply(stream.event(Some("t1"), delta("Before. "))); // 2
    timeline.apply(stream.event(
        Some("t1"),
        EventBody::QuestionExpired {
            question_id: "q-none".into(),
        },
    )); // 3: no item of its own, so the text item goes on
    timeline.apply(stream.event(Some("t1"), delta("Af"))); // 4
    let mut event = joined("After.", 4);
    event.seq = 7;
    timeline.apply(event);
    assert_eq!(texts(&timeline), ["Before. After."]);
}

#[test]
fn a_fresh_view_of_a_compacted_turn_reads_each_run_once() {
    let mut timeline = Timeline::default();
    let mut stream = Stream::new();
    timeline.apply(stream.event(Some("t1"), started("m1", "go")));
    let mut first = joined("Hello", 2);
    first.seq = 5;
    timeline.apply(first);
    assert_eq!(texts(&timeline), ["Hello"]);
    let mut again = joined("Hello", 2);
    again.seq = 5;
    assert!(!timeline.apply(again), "a replayed seq changes nothing");
    assert_eq!(texts(&timeline), ["Hello"]);
}

#[test]
fn a_kept_checkpoint_marks_its_turn_and_a_rewind_greys_the_later_ones() {
    let mut stream = Stream::new();
    let mut timeline = Timeline::default();
    for (turn, message) in [("t1", "m1"), ("t2", "m2"), ("t3", "m3")] {
        timeline.apply(stream.event(Some(turn), started(message, "do it")));
        timeline.apply(stream.event(Some(turn), finished(TurnOutcome::Done, None)));
    }
    timeline.apply(stream.wire(
        "t1",
        json!({"type": "checkpoint_saved", "checkpoint_id": "cp_1", "files": 3, "bytes_added": 10, "ms": 2}),
    ));
    assert_eq!(
        timeline.turn(0).unwrap().checkpoint.as_deref(),
        Some("cp_1")
    );
    assert_eq!(timeline.turn(1).unwrap().checkpoint, None);

    let before = timeline.turn(1).unwrap().revision;
    timeline.apply(stream.wire(
        "t1",
        json!({"type": "rewound", "rewound_turns": ["t2", "t3"]}),
    ));
    let rewound: Vec<bool> = (0..3).map(|i| timeline.turn(i).unwrap().rewound).collect();
    assert_eq!(rewound, [false, true, true]);
    assert!(
        timeline.turn(1).unwrap().revision > before,
        "the view redraws it"
    );
}
