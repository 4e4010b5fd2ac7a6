//! What a finished turn tells, read from the store as the `SessionAgent` reads it:
//! the prompt the turn ran (its sender) and the reply it streamed.

use super::harness::*;
use nightshift_protocol::inbox::InboxKind;
use nightshift_session::access_facts::AccessFacts;
use nightshift_session::notices::{TurnFacts, notice_for};

#[test]
fn a_finished_turn_tells_the_user_who_sent_its_prompt_with_its_reply() {
    let session = Session::new();
    let store = session.open();
    enqueue(&store, 0, prompt("m1", "work", QueueMode::Followup, "u2"));
    start(&store, 10, "t1");
    runner_sends(&store, 20, 1, "t1", text("all "));
    runner_sends(&store, 21, 2, "t1", text("done"));
    runner_sends(&store, 30, 3, "t1", finished(TurnOutcome::Done, 1, 1, 5));

    let prompt = store
        .prompt_of_turn("t1")
        .unwrap()
        .expect("the turn's prompt");
    assert_eq!(prompt.message.id, "m1");
    assert!(store.prompt_of_turn("t2").unwrap().is_none());
    let turn = TurnFacts {
        sender: prompt.message.sent_by.clone(),
        reply: store.turn_reply("t1").unwrap(),
    };
    // The finish is followed by other events (the status change): find it.
    let last = all_events(&store)
        .into_iter()
        .find(|event| matches!(event.body, EventBody::TurnFinished { .. }))
        .unwrap();
    let access = AccessFacts {
        owner_id: "u1".into(),
        shares: Default::default(),
    };
    let notice = notice_for(&last.body, &access, &turn).expect("a notice");
    assert_eq!(notice.kind, InboxKind::TurnFinished);
    assert_eq!(notice.recipients, vec!["u2".to_owned()]);
    assert_eq!(notice.text, "all done");
}
