//! Queue modes, the queue's cap, cancelling and editing waiting prompts, and a
//! database from before the later columns.

use super::harness::*;

#[test]
fn queue_modes_order_merge_and_cap_the_prompts() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 0, prompt("a", "A", QueueMode::Followup, "u1"));
    assert_eq!(start(&store, 10, "t-a").as_deref(), Some("a"));

    enqueue(&store, 20, prompt("b", "B", QueueMode::Followup, "u1"));
    let steer = enqueue(&store, 30, prompt("c", "C", QueueMode::Steer, "u1")).unwrap();
    assert_eq!(
        steer.position, 0,
        "a steering prompt goes ahead of the queue"
    );

    // Two `collect` prompts of one sender within the window become one.
    let first = enqueue(&store, 40, prompt("d", "D1", QueueMode::Collect, "u2")).unwrap();
    let merged = enqueue(&store, 50, prompt("e", "D2", QueueMode::Collect, "u2")).unwrap();
    assert_eq!(merged.message_id, "d");
    assert_eq!(merged.position, first.position);
    assert!(
        store.queue_with("e").unwrap().get("e").is_none(),
        "a merged prompt is not stored on its own"
    );
    assert!(all_events(&store).iter().any(|event| matches!(&event.body,
        EventBody::PromptsMerged { message_id, merged_ids, content }
            if message_id == "d" && merged_ids == &["e".to_owned()] && content == "D1\n\nD2")));

    // The cap counts waiting prompts; a refused prompt leaves nothing behind.
    let before = all_events(&store).len();
    let refused = TurnSteps::new(&store, 60, true)
        .enqueue(
            prompt("f", "F", QueueMode::Followup, "u1"),
            COLLECT_WINDOW_MS,
            3,
        )
        .unwrap();
    assert_eq!(refused, None);
    assert!(store.queue_with("f").unwrap().get("f").is_none());
    assert_eq!(all_events(&store).len(), before);

    // Runs go: a, then c (steered ahead), then b, then the collected d.
    runner_sends(&store, 100, 1, "t-a", finished(TurnOutcome::Done, 1, 1, 5));
    assert_eq!(start(&store, 110, "t-c").as_deref(), Some("c"));
    runner_sends(&store, 120, 2, "t-c", finished(TurnOutcome::Done, 1, 1, 5));
    assert_eq!(start(&store, 130, "t-b").as_deref(), Some("b"));
    runner_sends(
        &store,
        140,
        3,
        "t-b",
        finished(TurnOutcome::Failed, 1, 1, 5),
    );
    assert_eq!(state(&store, "b"), MessageState::Failed);
    // The collect prompt's window (last merge at 50) holds it until 1_550.
    assert_eq!(start(&store, 1_549, "t-d"), None);
    assert_eq!(start(&store, 1_550, "t-d").as_deref(), Some("d"));
    assert_eq!(store.usage_totals().unwrap().turns, 3);
}

#[test]
fn only_a_waiting_prompt_can_be_cancelled_or_edited() {
    let session = Session::new();
    let store = session.open();
    enqueue(
        &store,
        0,
        prompt("m1", "running", QueueMode::Followup, "u1"),
    );
    enqueue(
        &store,
        1,
        prompt("m2", "waiting", QueueMode::Followup, "u1"),
    );
    enqueue(&store, 2, prompt("m3", "doomed", QueueMode::Followup, "u1"));
    start(&store, 10, "t1");

    let mut steps = TurnSteps::new(&store, 20, true);
    let edited = steps
        .edit("m2", "waiting, edited".into(), Some("u2".into()))
        .unwrap()
        .unwrap();
    assert_eq!(edited.content, "waiting, edited");
    assert_eq!(
        edited.sent_by.as_deref(),
        Some("u2"),
        "an edit makes it the editor's"
    );
    let cancelled = steps.cancel("m3").unwrap().unwrap();
    assert_eq!(cancelled.state, MessageState::Cancelled);
    assert!(matches!(&steps.events[..], [
        SessionEvent { body: EventBody::PromptEdited { message_id: edited, .. }, .. },
        SessionEvent { body: EventBody::PromptCancelled { message_id: cancelled }, .. },
    ] if edited == "m2" && cancelled == "m3"));

    let before = all_events(&store).len();
    let mut steps = TurnSteps::new(&store, 30, true);
    assert!(
        steps.cancel("m1").unwrap().is_err(),
        "a running prompt is not cancelled"
    );
    assert!(steps.edit("m1", "x".into(), None).unwrap().is_err());
    assert!(steps.cancel("nope").unwrap().is_err());
    assert_eq!(state(&store, "m1"), MessageState::Processing);
    assert_eq!(all_events(&store).len(), before, "a refusal stores nothing");

    runner_sends(&store, 40, 1, "t1", finished(TurnOutcome::Done, 1, 1, 1));
    assert_eq!(start(&store, 50, "t2").as_deref(), Some("m2"));
    assert_eq!(
        start(&store, 60, "t3"),
        None,
        "the cancelled prompt never runs"
    );
}

#[test]
fn a_database_from_before_the_later_columns_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    Sqlite::open(&path).execute_batch(
        "CREATE TABLE prompts (id TEXT PRIMARY KEY, content TEXT NOT NULL, state TEXT NOT NULL,
            queue_order INTEGER NOT NULL, turn_id TEXT, runner_epoch TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, reply TEXT, error TEXT,
            created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER);
         INSERT INTO prompts (id, content, state, queue_order, created_at)
            VALUES ('old', 'from before', 'queued', 1, 5);",
    );
    let store = SessionStore::open(Sqlite::open(&path)).unwrap();
    let message = store.queue().unwrap().message("old").unwrap();
    assert_eq!(message.mode, QueueMode::Followup);
    assert_eq!(message.sent_by, None);
    let steer = enqueue(&store, 10, prompt("new", "now", QueueMode::Steer, "u1")).unwrap();
    assert_eq!(steer.position, 0);
    assert_eq!(
        store
            .queue()
            .unwrap()
            .message("new")
            .unwrap()
            .sent_by
            .as_deref(),
        Some("u1")
    );
}
