//! An ended turn's text deltas joined in storage: each run becomes one `text` event
//! at the run's last `seq`, other events (of the turn and of others) stay as they
//! were, the reply is unchanged, and compacting again changes nothing.

use super::harness::*;

fn tool(call_id: &str) -> EventBody {
    EventBody::ToolCallStarted {
        call_id: call_id.into(),
        tool: "bash".into(),
        args: serde_json::json!({"command": "ls"}),
    }
}

fn joined(text: &str, from_seq: u64) -> EventBody {
    EventBody::Text {
        text: text.into(),
        from_seq,
    }
}

#[test]
fn an_ended_turn_keeps_one_text_per_run_and_everything_else() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 1_000, prompt("m1", "go", QueueMode::Followup, "u1"));
    start(&store, 1_100, "t1").expect("the prompt starts");
    let before = all_events(&store);
    let first_runner_seq = before.last().map_or(0, |e| e.seq) + 1;

    for (local_seq, body) in [
        text("Let "),
        text("me "),
        text("look."),
        tool("c1"),
        text("Done"),
        text("."),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            runner_sends(&store, 1_200, local_seq as u64 + 1, "t1", body),
            TAKEN
        );
    }
    // Three deltas, tool, two deltas: seqs s..s+5; an event of no turn comes in the
    // middle of the second run (the status, a repository update) and stays.
    let during = TurnSteps::new(&store, 1_250, true)
        .record_event(
            None,
            EventBody::Error {
                message: "a notice of no turn".into(),
            },
        )
        .unwrap();
    assert_eq!(
        runner_sends(&store, 1_300, 7, "t1", text("!")),
        TAKEN,
        "the run goes on across another turn's event"
    );
    let finished_at = runner_sends(
        &store,
        1_400,
        8,
        "t1",
        finished(TurnOutcome::Done, 5, 6, 300),
    );
    assert!(matches!(
        finished_at,
        Intake::Taken(TakenEvent {
            finished_turn: true,
            ..
        })
    ));

    let after = all_events(&store);
    let s = first_runner_seq;
    let turn_events: Vec<(u64, EventBody)> = after
        .iter()
        .filter(|e| e.seq >= s && (e.turn_id.as_deref() == Some("t1") || e.seq == during.seq))
        .map(|e| (e.seq, e.body.clone()))
        .collect();
    assert_eq!(
        turn_events,
        vec![
            (s + 2, joined("Let me look.", s)),
            (s + 3, tool("c1")),
            (during.seq, during.body.clone()),
            (s + 7, joined("Done.!", s + 4)),
            (s + 8, finished(TurnOutcome::Done, 5, 6, 300)),
        ]
    );
    assert_eq!(
        store.turn_reply("t1").unwrap().as_deref(),
        Some("Let me look.Done.!")
    );
    let message = store
        .queue_with("m1")
        .unwrap()
        .message("m1")
        .unwrap()
        .clone();
    assert_eq!(message.reply.as_deref(), Some("Let me look.Done.!"));
    // Earlier events are untouched, and the next seq follows the last one.
    assert_eq!(&after[..before.len()], before.as_slice());
    assert_eq!(
        store.compact_turn("t1").unwrap(),
        nightshift_session::store::Compaction::default(),
        "compacting again changes nothing"
    );
    assert_eq!(all_events(&store), after);
}

#[test]
fn an_interrupted_turn_is_compacted_and_its_prompt_runs_under_a_new_turn() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 1_000, prompt("m1", "go", QueueMode::Followup, "u1"));
    start(&store, 1_100, "t1").expect("the prompt starts");
    runner_sends(&store, 1_200, 1, "t1", text("half "));
    runner_sends(&store, 1_200, 2, "t1", text("an answer"));
    TurnSteps::new(&store, 1_300, false)
        .interrupt_turn("t1", "the runner went away")
        .unwrap();
    let t1: Vec<EventBody> = all_events(&store)
        .into_iter()
        .filter(|e| e.turn_id.as_deref() == Some("t1"))
        .map(|e| e.body)
        .collect();
    assert!(
        matches!(t1.as_slice(), [EventBody::TurnStarted { .. }, EventBody::Text { text, .. }, EventBody::TurnInterrupted { .. }] if text == "half an answer"),
        "{t1:#?}"
    );
    assert_eq!(
        start(&store, 1_400, "t2").as_deref(),
        Some("m1"),
        "the prompt runs again"
    );
}

#[test]
fn compaction_can_be_turned_off() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 1_000, prompt("m1", "go", QueueMode::Followup, "u1"));
    start(&store, 1_100, "t1").expect("the prompt starts");
    for (i, body) in [text("a"), text("b"), finished(TurnOutcome::Done, 1, 1, 1)]
        .into_iter()
        .enumerate()
    {
        TurnSteps::new(&store, 1_200, true)
            .compacting(false)
            .take_runner_event("t1", "e1", i as u64 + 1, body)
            .unwrap();
    }
    let deltas = all_events(&store)
        .iter()
        .filter(|e| matches!(e.body, EventBody::TextDelta { .. }))
        .count();
    assert_eq!(deltas, 2);
}
