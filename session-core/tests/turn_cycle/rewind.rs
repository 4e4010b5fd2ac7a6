//! Checkpoints after turns and rewinds over real SQLite: every finished turn waits
//! for its checkpoint with the conversation's length at its end; a rewind is refused
//! while a turn runs, for unknown, rewound or checkpoint-less turns, and otherwise
//! cuts the conversation back (setting the rest aside), marks later turns rewound and
//! records a `rewound` event.

use nightshift_protocol::api::QueueMode;
use nightshift_protocol::conversation::{ConversationEntry, ConversationItem};
use nightshift_protocol::events::{EventBody, TurnOutcome};
use nightshift_session::store::SessionStore;
use nightshift_session::turns::{RewindRefusal, TurnSteps};

use crate::harness::{Session, all_events, enqueue, finished, prompt, runner_sends, start};
use crate::sqlite::Sqlite;

fn said(message_id: &str, text: &str) -> ConversationEntry {
    ConversationEntry {
        message_id: message_id.into(),
        item: ConversationItem::User { text: text.into() },
    }
}

/// Runs prompt `message_id` as `turn_id` to its end, writing two conversation
/// entries first (as the runner does before it reports the turn finished).
fn run_turn(store: &SessionStore<Sqlite>, now: i64, seq: u64, message_id: &str, turn_id: &str) {
    enqueue(
        store,
        now,
        prompt(message_id, "do it", QueueMode::Followup, "u1"),
    )
    .unwrap();
    start(store, now, turn_id).unwrap();
    let from = store.conversation_len().unwrap();
    let entries = [said(message_id, "prompt"), said(message_id, "reply")];
    store.write_conversation(from, &entries).unwrap().unwrap();
    runner_sends(
        store,
        now,
        seq,
        turn_id,
        finished(TurnOutcome::Done, 1, 1, 1),
    );
}

fn steps(store: &SessionStore<Sqlite>) -> TurnSteps<'_, Sqlite> {
    TurnSteps::new(store, 50, true)
}

#[test]
fn a_finished_turn_waits_for_its_checkpoint_with_the_conversation_at_its_end() {
    let session = Session::new();
    let store = session.open();
    run_turn(&store, 10, 1, "m1", "t1");
    let pending = store.pending_checkpoint().unwrap().unwrap();
    assert_eq!(pending.turn_id, "t1");
    assert_eq!(pending.conversation_len, 2);
    assert_eq!(
        steps(&store).plan_rewind("t1").unwrap(),
        Err(RewindRefusal::NoCheckpoint {
            why: "it is still being taken".into()
        })
    );
    store.checkpoint_kept("t1", "sbx_1", "cp_1").unwrap();
    assert!(store.pending_checkpoint().unwrap().is_none());

    run_turn(&store, 20, 2, "m2", "t2");
    store.checkpoint_failed("t2", "the disk is full").unwrap();
    let refusal = steps(&store).plan_rewind("t2").unwrap().unwrap_err();
    assert!(refusal.message("t2").contains("the disk is full"));
    assert_eq!(
        steps(&store).plan_rewind("t9").unwrap(),
        Err(RewindRefusal::UnknownTurn)
    );
}

#[test]
fn a_rewind_cuts_the_conversation_and_sets_later_turns_aside() {
    let session = Session::new();
    let store = session.open();
    run_turn(&store, 10, 1, "m1", "t1");
    store.checkpoint_kept("t1", "sbx_1", "cp_1").unwrap();
    run_turn(&store, 20, 2, "m2", "t2");
    store.checkpoint_kept("t2", "sbx_1", "cp_2").unwrap();

    // Not while a turn runs.
    enqueue(&store, 30, prompt("m3", "more", QueueMode::Followup, "u1")).unwrap();
    start(&store, 30, "t3").unwrap();
    assert_eq!(
        steps(&store).plan_rewind("t1").unwrap(),
        Err(RewindRefusal::TurnRunning)
    );
    // A fork may start from an earlier turn meanwhile.
    assert_eq!(
        steps(&store)
            .plan_fork("t1")
            .unwrap()
            .unwrap()
            .checkpoint_id,
        "cp_1"
    );
    runner_sends(&store, 40, 3, "t3", finished(TurnOutcome::Aborted, 0, 0, 1));
    store.checkpoint_kept("t3", "sbx_1", "cp_3").unwrap();

    let plan = steps(&store).plan_rewind("t1").unwrap().unwrap();
    assert_eq!(plan.checkpoint_id, "cp_1");
    assert_eq!(plan.sandbox_id, "sbx_1");
    assert_eq!(plan.conversation_len, 2);
    assert_eq!(plan.later_turns, ["t2", "t3"]);
    let mut rewinding = steps(&store);
    rewinding.apply_rewind(&plan).unwrap();
    assert!(matches!(
        &rewinding.events[..],
        [event] if event.turn_id.as_deref() == Some("t1")
            && event.body == EventBody::Rewound { rewound_turns: vec!["t2".into(), "t3".into()] }
    ));

    let reopened = session.open();
    let page = reopened.read_conversation(0).unwrap();
    assert_eq!(page.entries, [said("m1", "prompt"), said("m1", "reply")]);
    assert_eq!(reopened.rewound_conversation_len().unwrap(), 2);
    assert!(matches!(
        all_events(&reopened).last().map(|event| &event.body),
        Some(EventBody::Rewound { .. })
    ));
    assert_eq!(
        steps(&reopened).plan_rewind("t2").unwrap(),
        Err(RewindRefusal::Rewound)
    );
    // Going back to the same turn again sets nothing more aside.
    assert!(
        steps(&reopened)
            .plan_rewind("t1")
            .unwrap()
            .unwrap()
            .later_turns
            .is_empty()
    );
}

#[test]
fn deleting_the_session_forgets_checkpoints_and_rewound_entries() {
    let session = Session::new();
    let store = session.open();
    run_turn(&store, 10, 1, "m1", "t1");
    store.checkpoint_kept("t1", "sbx_1", "cp_1").unwrap();
    store.rewind_conversation(0, 20).unwrap();
    store.wipe(9).unwrap();
    assert!(store.turn_checkpoint("t1").unwrap().is_none());
    assert_eq!(store.rewound_conversation_len().unwrap(), 0);
}
