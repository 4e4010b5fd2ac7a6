//! A turn from enqueue to finish with the runner's events taken in exactly once
//! (resent and out-of-order frames), its hello after a reconnect, and a restart of
//! the store in the middle.

use super::harness::*;

#[test]
fn a_turn_runs_from_enqueue_to_finish_and_each_runner_event_is_stored_once() {
    let session = Session::new();
    let store = session.open();

    let queued = enqueue(
        &store,
        1_000,
        prompt("m1", "Say hello", QueueMode::Followup, "u1"),
    );
    assert_eq!(
        queued,
        Some(QueuedPrompt {
            message_id: "m1".into(),
            position: 0
        })
    );
    let record = store.record().unwrap();
    assert_eq!(
        record.title, "Say hello",
        "the first prompt titles the session"
    );
    assert_eq!(record.worker_url.as_deref(), Some("http://worker.test"));

    let mut steps = TurnSteps::new(&store, 2_000, true);
    let frame = steps.start_next("t1", "e1".into(), None).unwrap();
    assert!(
        matches!(&frame, Some(SessionFrame::Prompt { turn_id, message_id, content, .. })
            if turn_id == "t1" && message_id == "m1" && content == "Say hello"),
        "{frame:?}"
    );
    assert!(steps.refresh_status().unwrap());
    assert_eq!(store.record().unwrap().status, SessionStatus::Running);
    assert!(
        start(&store, 2_001, "t2").is_none(),
        "one turn runs at a time"
    );

    assert_eq!(runner_sends(&store, 2_100, 1, "t1", text("Hel")), TAKEN);
    assert_eq!(runner_sends(&store, 2_200, 2, "t1", text("lo")), TAKEN);
    // The ack of 2 was lost: the runner resends it.
    assert_eq!(
        runner_sends(&store, 2_300, 2, "t1", text("lo")),
        Intake::Duplicate
    );
    // A frame past a gap is refused, so the runner resends from what is stored.
    assert_eq!(
        runner_sends(&store, 2_400, 4, "t1", text("!")),
        Intake::OutOfOrder { expected: 3 }
    );
    assert_eq!(store.epoch_acked("e1").unwrap(), Some(2));
    assert_eq!(
        runner_sends(
            &store,
            3_000,
            3,
            "t1",
            finished(TurnOutcome::Done, 10, 5, 900)
        ),
        Intake::Taken(TakenEvent {
            stored: true,
            refused_kind: false,
            finished_turn: true
        })
    );

    // Each delta was stored once, in order: the ended turn's log joins them into
    // one text that begins at the first one's seq (`compaction.rs`).
    let texts: Vec<(u64, String, u64)> = all_events(&store)
        .into_iter()
        .filter_map(|event| match event.body {
            EventBody::TextDelta { text } => Some((event.seq, text, event.seq)),
            EventBody::Text { text, from_seq } => Some((from_seq, text, event.seq)),
            _ => None,
        })
        .collect();
    let [(from_seq, text, seq)] = texts.as_slice() else {
        panic!("one joined text: {texts:?}");
    };
    assert_eq!(
        (text.as_str(), *seq),
        ("Hello", from_seq + 1),
        "each delta once, in order"
    );
    let seqs: Vec<u64> = all_events(&store).iter().map(|event| event.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64 + 1)
        .filter(|s| s != from_seq)
        .collect();
    assert_eq!(seqs, expected, "no seq but the joined delta's is missing");

    let message = store.queue_with("m1").unwrap().message("m1").unwrap();
    assert_eq!(message.state, MessageState::Done);
    assert_eq!(message.reply.as_deref(), Some("Hello"));
    assert_eq!(message.duration_ms, Some(900));
    assert_eq!(message.usage.map(|usage| usage.input_tokens), Some(10));
    let totals = store.usage_totals().unwrap();
    assert_eq!(
        (
            totals.turns,
            totals.input_tokens,
            totals.output_tokens,
            totals.duration_ms
        ),
        (1, 10, 5, 900)
    );
    assert_eq!(store.record().unwrap().status, SessionStatus::Idle);
    assert!(store.queue().unwrap().prompts().is_empty());
}

#[test]
fn a_restart_mid_turn_loses_nothing_and_still_refuses_resends() {
    let session = Session::new();
    {
        let store = session.open();
        enqueue(&store, 0, prompt("m1", "one", QueueMode::Followup, "u1"));
        enqueue(&store, 1, prompt("m2", "two", QueueMode::Followup, "u1"));
        start(&store, 10, "t1");
        runner_sends(&store, 20, 1, "t1", text("par"));
        runner_sends(&store, 30, 2, "t1", text("tial"));
    }
    // The object is evicted; a new one opens the same storage (the schema and its
    // upgrades run again, harmlessly).
    let store = session.open();
    assert_eq!(store.epoch_acked("e1").unwrap(), Some(2));
    assert_eq!(state(&store, "m1"), MessageState::Processing);
    assert_eq!(state(&store, "m2"), MessageState::Queued);
    assert_eq!(store.record().unwrap().title, "one");
    assert_eq!(
        runner_sends(&store, 40, 2, "t1", text("tial")),
        Intake::Duplicate
    );
    assert_eq!(
        runner_sends(&store, 50, 3, "t1", finished(TurnOutcome::Done, 2, 3, 40)),
        Intake::Taken(TakenEvent {
            stored: true,
            refused_kind: false,
            finished_turn: true
        })
    );
    assert_eq!(
        store
            .queue_with("m1")
            .unwrap()
            .message("m1")
            .unwrap()
            .reply
            .as_deref(),
        Some("partial")
    );
    let before = all_events(&store).last().unwrap().seq;
    drop(store);
    let store = session.open();
    assert_eq!(start(&store, 60, "t2").as_deref(), Some("m2"));
    assert_eq!(
        all_events(&store).last().unwrap().seq,
        before + 1,
        "numbering goes on after a restart"
    );
}

#[test]
fn a_runner_may_not_write_the_session_agents_own_event_kinds() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 0, prompt("m1", "job", QueueMode::Followup, "u1"));
    start(&store, 10, "t1");
    let before = all_events(&store).len();
    let forged = EventBody::StatusChanged {
        status: SessionStatus::Idle,
    };
    assert_eq!(
        runner_sends(&store, 20, 1, "t1", forged),
        Intake::Taken(TakenEvent {
            stored: false,
            refused_kind: true,
            finished_turn: false
        })
    );
    assert_eq!(all_events(&store).len(), before, "nothing stored");
    assert_eq!(
        store.epoch_acked("e1").unwrap(),
        Some(1),
        "but numbering goes on"
    );
}

#[test]
fn a_hello_decides_the_fate_of_the_running_turn_by_the_runners_epoch() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 0, prompt("m1", "one", QueueMode::Followup, "u1"));
    start(&store, 10, "t1");

    // The same runner process reconnects: the turn goes on.
    let mut steps = TurnSteps::new(&store, 20, true);
    assert_eq!(steps.runner_said_hello("e1", Some("t1")).unwrap(), None);
    assert_eq!(state(&store, "m1"), MessageState::Processing);

    // A new process that still runs the turn adopts it: its events are of its epoch.
    assert_eq!(steps.runner_said_hello("e2", Some("t1")).unwrap(), None);
    assert_eq!(
        store
            .queue()
            .unwrap()
            .processing()
            .unwrap()
            .runner_epoch
            .as_deref(),
        Some("e2")
    );

    // A new process that knows nothing of it: the turn goes back to the queue, and
    // a turn the runner works on that is not ours is stopped.
    let abort = steps.runner_said_hello("e3", Some("stale")).unwrap();
    assert_eq!(abort.as_deref(), Some("stale"));
    assert_eq!(state(&store, "m1"), MessageState::Queued);
    assert!(matches!(
        steps.events.last().map(|event| &event.body),
        Some(EventBody::TurnInterrupted { message_id, .. }) if message_id == "m1"
    ));
}

#[test]
fn an_unsent_prompt_goes_back_to_the_front_and_runs_again() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 0, prompt("m1", "first", QueueMode::Followup, "u1"));
    enqueue(&store, 1, prompt("m2", "second", QueueMode::Followup, "u1"));
    start(&store, 10, "t1");
    TurnSteps::new(&store, 11, true)
        .interrupt_turn("t1", UNSENT_REASON)
        .unwrap();
    assert_eq!(state(&store, "m1"), MessageState::Queued);
    let mut steps = TurnSteps::new(&store, 20, true);
    let frame = steps.start_next("t2", "e1".into(), None).unwrap();
    assert!(
        matches!(frame, Some(SessionFrame::Prompt { ref message_id, .. }) if message_id == "m1")
    );
    assert!(matches!(
        steps.events[0].body,
        EventBody::TurnStarted { attempt: 2, .. }
    ));
}
