//! Archiving: a running turn ends, the sandbox is forgotten, tokens stop working,
//! the history stays, and archiving twice changes nothing.

use super::harness::*;
use nightshift_session::turns::{ARCHIVED_TURN_REASON, ArchiveStep, archived_refusal};

#[test]
fn archiving_ends_the_running_turn_and_keeps_the_history() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 0, prompt("m1", "work", QueueMode::Followup, "u1"));
    enqueue(&store, 1, prompt("m2", "later", QueueMode::Followup, "u1"));
    start(&store, 10, "t1");
    runner_sends(&store, 20, 1, "t1", text("halfway"));
    let generation = store.record().unwrap().sandbox_generation;
    assert_eq!(archived_refusal(&store.record().unwrap()), None);

    let mut steps = TurnSteps::new(&store, 1_000, true);
    assert_eq!(
        steps.archive().unwrap(),
        ArchiveStep::Archived {
            sandbox_id: Some("sb1".into())
        }
    );
    let record = store.record().unwrap();
    assert_eq!(record.archived_at, Some(1_000));
    assert_eq!(record.status, SessionStatus::Archived);
    assert_eq!(record.sandbox, SandboxState::NotRequested);
    assert_eq!(record.runner_connection, None);
    assert!(
        record.sandbox_generation > generation,
        "tokens of the old sandbox stop working"
    );
    assert!(archived_refusal(&record).is_some());
    assert_eq!(state(&store, "m1"), MessageState::Aborted);
    assert_eq!(
        state(&store, "m2"),
        MessageState::Queued,
        "queued work stays for a restore"
    );
    let events = all_events(&store);
    assert!(events.iter().any(|event| matches!(
        &event.body,
        EventBody::TurnFinished { outcome: TurnOutcome::Aborted, error: Some(reason), .. }
            if reason == ARCHIVED_TURN_REASON
    )));
    assert!(matches!(
        events.last().map(|event| &event.body),
        Some(EventBody::StatusChanged {
            status: SessionStatus::Archived
        })
    ));
    assert!(
        events
            .iter()
            .any(|event| matches!(&event.body, EventBody::TextDelta { text } if text == "halfway")),
        "what the turn said stays readable"
    );
}

#[test]
fn archiving_twice_changes_nothing() {
    let session = Session::new();
    let store = session.open();
    TurnSteps::new(&store, 1_000, false).archive().unwrap();
    let record = store.record().unwrap();
    let events = all_events(&store).len();

    let reopened = session.open();
    let mut steps = TurnSteps::new(&reopened, 9_000, false);
    assert_eq!(steps.archive().unwrap(), ArchiveStep::AlreadyArchived);
    assert!(steps.events.is_empty());
    assert_eq!(reopened.record().unwrap(), record);
    assert_eq!(all_events(&reopened).len(), events);
}
