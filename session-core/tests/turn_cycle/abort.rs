//! Aborts: one the runner does not confirm in time, and one with no runner to tell.

use super::harness::*;

#[test]
fn an_abort_the_runner_does_not_confirm_ends_the_turn_once() {
    let session = Session::new();
    let store = session.open();
    enqueue(
        &store,
        0,
        prompt("m1", "long job", QueueMode::Followup, "u1"),
    );
    enqueue(&store, 1, prompt("m2", "next", QueueMode::Followup, "u1"));
    start(&store, 10, "t1");
    runner_sends(&store, 20, 1, "t1", text("working"));

    let mut steps = TurnSteps::new(&store, 1_000, true);
    assert_eq!(steps.running_turn().unwrap().as_deref(), Some("t1"));
    steps.abort_sent("t1").unwrap();
    // A second abort of the same turn keeps the first deadline.
    TurnSteps::new(&store, 5_000, true)
        .abort_sent("t1")
        .unwrap();
    assert_eq!(store.record().unwrap().abort_requested.unwrap().at, 1_000);

    TurnSteps::new(&store, 1_000 + ABORT_TIMEOUT_MS - 1, true)
        .settle_abort(ABORT_TIMEOUT_MS)
        .unwrap();
    assert_eq!(
        state(&store, "m1"),
        MessageState::Processing,
        "the runner still has time"
    );

    let mut steps = TurnSteps::new(&store, 1_000 + ABORT_TIMEOUT_MS, true);
    steps.settle_abort(ABORT_TIMEOUT_MS).unwrap();
    assert!(matches!(&steps.events[0].body, EventBody::Error { .. }));
    assert!(matches!(
        &steps.events[1].body,
        EventBody::TurnFinished {
            outcome: TurnOutcome::Aborted,
            ..
        }
    ));
    let message = store.queue_with("m1").unwrap().message("m1").unwrap();
    assert_eq!(message.state, MessageState::Aborted);
    assert_eq!(
        message.reply.as_deref(),
        Some("working"),
        "what it said so far stays"
    );
    assert_eq!(store.record().unwrap().abort_requested, None);

    // The runner's late `turn_finished` is taken in (acknowledged) but not stored:
    // a turn has exactly one.
    assert_eq!(
        runner_sends(
            &store,
            20_000,
            2,
            "t1",
            finished(TurnOutcome::Aborted, 0, 0, 0)
        ),
        Intake::Taken(TakenEvent {
            stored: false,
            refused_kind: false,
            finished_turn: false
        })
    );
    assert_eq!(store.epoch_acked("e1").unwrap(), Some(2));
    let finishes = all_events(&store)
        .iter()
        .filter(|event| matches!(event.body, EventBody::TurnFinished { .. }))
        .count();
    assert_eq!(finishes, 1);
    assert_eq!(start(&store, 20_001, "t2").as_deref(), Some("m2"));
}

#[test]
fn an_abort_with_no_runner_to_tell_ends_the_turn_at_once() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 0, prompt("m1", "job", QueueMode::Followup, "u1"));
    start(&store, 10, "t1");
    let mut steps = TurnSteps::new(&store, 20, false);
    steps.end_turn_here("t1", None).unwrap();
    assert_eq!(state(&store, "m1"), MessageState::Aborted);
    assert_eq!(
        store.record().unwrap().status,
        SessionStatus::Reconnecting,
        "no runner, no turn: waiting for the runner"
    );
    assert!(
        !steps
            .events
            .iter()
            .any(|event| matches!(event.body, EventBody::Error { .. })),
        "no reason, no error event"
    );
}
