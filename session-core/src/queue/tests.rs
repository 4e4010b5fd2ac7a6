//! Unit tests of the prompt queue rules.

use super::*;
use nightshift_protocol::api::{QueueMode, UsageTotals};
use nightshift_protocol::events::TokenUsage;

fn queue_of(ids: &[&str]) -> PromptQueue {
    let mut queue = PromptQueue::new();
    for (i, id) in ids.iter().enumerate() {
        queue.enqueue((*id).to_owned(), format!("prompt {id}"), i as i64);
    }
    queue
}

fn state(queue: &PromptQueue, id: &str) -> MessageState {
    queue.get(id).map(|p| p.message.state).unwrap()
}

#[test]
fn enqueue_reports_how_many_are_ahead() {
    let mut queue = PromptQueue::new();
    assert_eq!(queue.enqueue("a".into(), "x".into(), 1).1, 0);
    assert_eq!(queue.enqueue("b".into(), "y".into(), 2).1, 1);
    assert_eq!(queue.enqueue("c".into(), "z".into(), 3).1, 2);
    assert_eq!(queue.message("c").unwrap().position, Some(2));
}

#[test]
fn a_processing_prompt_is_not_counted_as_ahead() {
    let mut queue = queue_of(&["a", "b"]);
    queue.start_next("t1".into(), "e".into(), 5).unwrap();
    assert_eq!(queue.position("b"), Some(0));
    assert_eq!(queue.message("a").unwrap().position, None);
    let (_, position) = queue.enqueue("c".into(), "z".into(), 6);
    assert_eq!(position, 1);
}

#[test]
fn start_takes_the_oldest_and_only_one_at_a_time() {
    let mut queue = queue_of(&["a", "b"]);
    let started = queue.start_next("t1".into(), "e1".into(), 10).unwrap();
    assert_eq!(started.message.id, "a");
    assert_eq!(started.message.state, MessageState::Processing);
    assert_eq!(started.message.attempts, 1);
    assert_eq!(started.message.turn_id.as_deref(), Some("t1"));
    assert_eq!(started.message.started_at, Some(10));
    assert_eq!(started.runner_epoch.as_deref(), Some("e1"));
    assert!(queue.start_next("t2".into(), "e1".into(), 11).is_none());
    assert_eq!(state(&queue, "b"), MessageState::Queued);
}

#[test]
fn finish_records_outcome_and_frees_the_queue() {
    let mut queue = queue_of(&["a", "b"]);
    queue.start_next("t1".into(), "e".into(), 1).unwrap();
    let done = queue
        .finish("t1", TurnOutcome::Done, Some("hi".into()), None, 2)
        .unwrap();
    assert_eq!(done.message.state, MessageState::Done);
    assert_eq!(done.message.reply.as_deref(), Some("hi"));
    assert_eq!(done.message.finished_at, Some(2));
    assert_eq!(queue.next_to_dispatch(2).unwrap().message.id, "b");

    queue.start_next("t2".into(), "e".into(), 3).unwrap();
    let failed = queue
        .finish("t2", TurnOutcome::Failed, None, Some("boom".into()), 4)
        .unwrap();
    assert_eq!(failed.message.state, MessageState::Failed);
    assert_eq!(failed.message.error.as_deref(), Some("boom"));
}

#[test]
fn finish_of_an_unknown_or_finished_turn_is_refused() {
    let mut queue = queue_of(&["a"]);
    assert_eq!(
        queue.finish("t1", TurnOutcome::Done, None, None, 1),
        Err(QueueError::NoSuchTurn("t1".into()))
    );
    queue.start_next("t1".into(), "e".into(), 1).unwrap();
    queue
        .finish("t1", TurnOutcome::Aborted, None, None, 2)
        .unwrap();
    assert_eq!(state(&queue, "a"), MessageState::Aborted);
    assert!(
        queue
            .finish("t1", TurnOutcome::Done, None, None, 3)
            .is_err()
    );
    assert_eq!(state(&queue, "a"), MessageState::Aborted);
}

#[test]
fn only_queued_prompts_can_be_cancelled() {
    let mut queue = queue_of(&["a", "b", "c"]);
    queue.start_next("t1".into(), "e".into(), 1).unwrap();
    let cancelled = queue.cancel("b", 2).unwrap();
    assert_eq!(cancelled.message.state, MessageState::Cancelled);
    assert_eq!(queue.position("c"), Some(0));
    assert_eq!(
        queue.cancel("a", 3),
        Err(QueueError::NotQueued {
            id: "a".into(),
            state: MessageState::Processing
        })
    );
    assert!(matches!(
        queue.cancel("b", 3),
        Err(QueueError::NotQueued { .. })
    ));
    assert_eq!(
        queue.cancel("zzz", 3),
        Err(QueueError::NotFound("zzz".into()))
    );
}

#[test]
fn an_interrupted_prompt_goes_back_to_the_front() {
    let mut queue = queue_of(&["a", "b", "c"]);
    queue.start_next("t1".into(), "e1".into(), 1).unwrap();
    let back = queue.interrupt("t1").unwrap();
    assert_eq!(back.message.state, MessageState::Queued);
    assert_eq!(back.runner_epoch, None);
    assert_eq!(queue.position("a"), Some(0));
    assert_eq!(queue.position("b"), Some(1));
    let again = queue.start_next("t2".into(), "e2".into(), 2).unwrap();
    assert_eq!(again.message.id, "a");
    assert_eq!(again.message.attempts, 2);
    assert_eq!(again.message.turn_id.as_deref(), Some("t2"));
}

#[test]
fn a_later_prompt_after_an_interruption_still_goes_to_the_back() {
    let mut queue = queue_of(&["a", "b"]);
    queue.start_next("t1".into(), "e1".into(), 1).unwrap();
    queue.interrupt("t1").unwrap();
    let (_, position) = queue.enqueue("c".into(), "z".into(), 2);
    assert_eq!(position, 2);
    let order: Vec<_> = queue
        .messages()
        .into_iter()
        .map(|m| (m.id, m.position))
        .collect();
    assert_eq!(
        order,
        vec![
            ("a".into(), Some(0)),
            ("b".into(), Some(1)),
            ("c".into(), Some(2))
        ]
    );
}

#[test]
fn interrupt_needs_the_processing_turn() {
    let mut queue = queue_of(&["a"]);
    assert!(queue.interrupt("t1").is_err());
    queue.start_next("t1".into(), "e1".into(), 1).unwrap();
    assert!(queue.interrupt("t0").is_err());
    assert_eq!(state(&queue, "a"), MessageState::Processing);
}

#[test]
fn adopt_moves_the_turn_to_a_new_epoch() {
    let mut queue = queue_of(&["a"]);
    queue.start_next("t1".into(), "e1".into(), 1).unwrap();
    let adopted = queue.adopt("t1", "e2".into()).unwrap();
    assert_eq!(adopted.runner_epoch.as_deref(), Some("e2"));
    assert_eq!(adopted.message.state, MessageState::Processing);
}

#[test]
fn messages_are_listed_oldest_first() {
    let queue = queue_of(&["a", "b", "c"]);
    let ids: Vec<_> = queue.messages().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

fn add(queue: &mut PromptQueue, id: &str, mode: QueueMode, now: i64) -> Enqueued {
    queue.enqueue_with_mode(id.into(), format!("prompt {id}"), mode, now, 1_500)
}

#[test]
fn a_steer_prompt_goes_ahead_of_everything_queued() {
    let mut queue = queue_of(&["a", "b", "c"]);
    queue.start_next("t1".into(), "e".into(), 1).unwrap();
    let steer = add(&mut queue, "s", QueueMode::Steer, 2);
    assert_eq!(steer.position(), 0);
    assert_eq!(queue.position("b"), Some(1));
    queue
        .finish("t1", TurnOutcome::Aborted, None, None, 3)
        .unwrap();
    let next = queue.start_next("t2".into(), "e".into(), 4).unwrap();
    assert_eq!(next.message.id, "s");
    assert_eq!(next.message.mode, QueueMode::Steer);
    // A later steer goes ahead of an earlier one that has not started yet.
    add(&mut queue, "s2", QueueMode::Steer, 5);
    add(&mut queue, "s3", QueueMode::Steer, 6);
    assert_eq!(queue.position("s3"), Some(0));
    assert_eq!(queue.position("s2"), Some(1));
}

#[test]
fn collect_prompts_within_the_window_merge_into_one() {
    let mut queue = PromptQueue::new();
    let first = add(&mut queue, "a", QueueMode::Collect, 1_000);
    assert!(matches!(first, Enqueued::Added { .. }));
    // The window is open: nothing starts yet.
    assert!(queue.next_to_dispatch(1_100).is_none());
    assert_eq!(queue.collect_deadline(1_100), Some(2_500));
    let second = add(&mut queue, "b", QueueMode::Collect, 2_000);
    let Enqueued::Merged {
        prompt, merged_id, ..
    } = second
    else {
        panic!("the second collect prompt should merge");
    };
    assert_eq!(prompt.message.id, "a");
    assert_eq!(merged_id, "b");
    assert_eq!(prompt.message.content, "prompt a\n\nprompt b");
    // Each merge keeps the window open a little longer.
    assert_eq!(queue.collect_deadline(2_100), Some(3_500));
    assert!(queue.start_next("t".into(), "e".into(), 3_499).is_none());
    let started = queue.start_next("t".into(), "e".into(), 3_500).unwrap();
    assert_eq!(started.message.id, "a");
    assert_eq!(queue.prompts().len(), 1);
}

#[test]
fn collect_after_the_window_or_after_the_start_is_a_new_prompt() {
    let mut queue = PromptQueue::new();
    add(&mut queue, "a", QueueMode::Collect, 0);
    assert!(matches!(
        add(&mut queue, "b", QueueMode::Collect, 1_500),
        Enqueued::Added { .. }
    ));
    queue.start_next("t".into(), "e".into(), 5_000).unwrap();
    // "b" is queued with its window closed, so a new collect prompt opens its own.
    assert!(matches!(
        add(&mut queue, "c", QueueMode::Collect, 5_001),
        Enqueued::Added { .. }
    ));
    // A followup never merges and a collect prompt never merges into one.
    assert!(matches!(
        add(&mut queue, "d", QueueMode::Followup, 5_002),
        Enqueued::Added { .. }
    ));
    assert!(matches!(
        add(&mut queue, "e", QueueMode::Collect, 5_003),
        Enqueued::Merged { ref prompt, .. } if prompt.message.id == "c"
    ));
}

#[test]
fn only_queued_prompts_can_be_edited() {
    let mut queue = queue_of(&["a", "b"]);
    queue.start_next("t1".into(), "e".into(), 1).unwrap();
    let edited = queue.edit("b", "better".into(), None).unwrap();
    assert_eq!(edited.message.content, "better");
    assert_eq!(queue.message("b").unwrap().content, "better");
    assert!(matches!(
        queue.edit("a", "x".into(), None),
        Err(QueueError::NotQueued { .. })
    ));
    assert_eq!(
        queue.edit("zzz", "x".into(), None),
        Err(QueueError::NotFound("zzz".into()))
    );
}

#[test]
fn usage_totals_add_up_finished_turns() {
    let mut queue = queue_of(&["a", "b", "c", "d"]);
    queue.start_next("t1".into(), "e".into(), 100).unwrap();
    queue
        .finish_turn(
            "t1",
            TurnResult {
                outcome: TurnOutcome::Done,
                reply: None,
                error: None,
                usage: Some(TokenUsage {
                    input_tokens: 10,
                    output_tokens: 3,
                    ..TokenUsage::default()
                }),
                duration_ms: Some(40),
            },
            200,
        )
        .unwrap();
    queue.start_next("t2".into(), "e".into(), 300).unwrap();
    // No duration from the runner: measured from the start.
    let aborted = queue
        .finish_turn(
            "t2",
            TurnResult {
                outcome: TurnOutcome::Aborted,
                reply: None,
                error: None,
                usage: Some(TokenUsage {
                    input_tokens: 5,
                    output_tokens: 1,
                    ..TokenUsage::default()
                }),
                duration_ms: None,
            },
            350,
        )
        .unwrap();
    assert_eq!(aborted.message.duration_ms, Some(50));
    queue.cancel("d", 400).unwrap();
    queue.start_next("t3".into(), "e".into(), 500).unwrap();
    let totals = queue.usage_totals();
    assert_eq!(
        totals,
        UsageTotals {
            input_tokens: 15,
            output_tokens: 4,
            turns: 2,
            duration_ms: 90
        }
    );
}

#[test]
fn senders_are_recorded_and_a_collect_merge_never_mixes_senders() {
    let mut queue = PromptQueue::new();
    let sent = |queue: &mut PromptQueue, id: &str, mode, by: &str, now| {
        queue.enqueue_sent_by(id.into(), id.into(), mode, Some(by.into()), now, 1_500)
    };
    sent(&mut queue, "c1", QueueMode::Collect, "alice", 1);
    // Bob's collect prompt is his own, with a window of its own.
    let own = sent(&mut queue, "c2", QueueMode::Collect, "bob", 2);
    assert!(matches!(own, Enqueued::Added { .. }));
    assert_eq!(own.prompt().message.sent_by.as_deref(), Some("bob"));
    assert_eq!(queue.get("c1").unwrap().message.content, "c1");
    // Alice's next one merges into hers, past Bob's.
    let merged = sent(&mut queue, "c3", QueueMode::Collect, "alice", 3);
    assert!(matches!(merged, Enqueued::Merged { .. }));
    assert_eq!(merged.prompt().message.id, "c1");
    assert_eq!(merged.prompt().message.sent_by.as_deref(), Some("alice"));
    // And Bob's merges into his.
    let merged = sent(&mut queue, "c4", QueueMode::Collect, "bob", 3);
    assert_eq!(merged.prompt().message.id, "c2");
    let steer = sent(&mut queue, "s", QueueMode::Steer, "carol", 3);
    assert_eq!(steer.prompt().message.sent_by.as_deref(), Some("carol"));
    let started = queue.start_next("t".into(), "e".into(), 4).unwrap();
    assert_eq!(started.message.id, "s");
    assert_eq!(started.message.sent_by.as_deref(), Some("carol"));
    let listed = queue.messages();
    assert_eq!(listed[0].sent_by.as_deref(), Some("alice"));
    // Without a sender (prompts stored before senders were recorded): none.
    queue.enqueue("f".into(), "f".into(), 5);
    assert_eq!(queue.get("f").unwrap().message.sent_by, None);
}

#[test]
fn an_edited_prompt_belongs_to_whoever_edited_it() {
    let mut queue = PromptQueue::new();
    queue.enqueue_sent_by(
        "p".into(),
        "alice's text".into(),
        QueueMode::Followup,
        Some("alice".into()),
        1,
        1_500,
    );
    let edited = queue
        .edit("p", "bob's text".into(), Some("bob".into()))
        .unwrap();
    assert_eq!(edited.message.sent_by.as_deref(), Some("bob"));
    assert_eq!(
        queue.get("p").unwrap().message.sent_by.as_deref(),
        Some("bob")
    );
}

#[test]
fn a_full_queue_admits_only_a_merge_into_an_open_collect_prompt() {
    let mut queue = queue_of(&["a", "b"]);
    assert_eq!(queue.queued_count(), 2);
    assert!(queue.admits(QueueMode::Followup, None, 10, 3));
    assert!(!queue.admits(QueueMode::Followup, None, 10, 2));
    assert!(!queue.admits(QueueMode::Steer, None, 10, 2));
    // An open collect prompt of the same sender takes more text without growing
    // the queue; another sender's would add a prompt.
    queue.enqueue_sent_by(
        "c".into(),
        "collect".into(),
        QueueMode::Collect,
        Some("alice".into()),
        20,
        1_000,
    );
    assert_eq!(queue.queued_count(), 3);
    assert!(queue.admits(QueueMode::Collect, Some("alice"), 30, 3));
    assert!(!queue.admits(QueueMode::Collect, Some("bob"), 30, 3));
    assert!(!queue.admits(QueueMode::Collect, Some("alice"), 5_000, 3));
}
