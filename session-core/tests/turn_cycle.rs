//! The enqueue -> dispatch -> runner events -> finish cycle of a session, run with
//! the `SessionAgent`'s own store and turn steps over real SQLite (a file that
//! outlives each store, as Durable Object storage outlives the object): queue modes,
//! exactly-once intake of runner events, aborts, and a restart in the middle.

#[path = "support/sqlite.rs"]
mod sqlite;

use nightshift_protocol::api::{MessageState, QueueMode, SessionStatus};
use nightshift_protocol::events::{EventBody, SessionEvent, TokenUsage, TurnOutcome};
use nightshift_protocol::runner_link::SessionFrame;
use nightshift_session::event_log::{RunnerIntake, classify_runner_event};
use nightshift_session::lifecycle::SandboxState;
use nightshift_session::store::{SessionRecord, SessionStore};
use nightshift_session::turns::{NewPrompt, QueuedPrompt, TakenEvent, TurnSteps, UNSENT_REASON};
use sqlite::Sqlite;
use tempfile::TempDir;

const COLLECT_WINDOW_MS: i64 = 1_500;
const ABORT_TIMEOUT_MS: i64 = 15_000;
const MAX_QUEUED: usize = 10;

/// A session's database on disk; each [`Session::open`] is a fresh store over it,
/// as a Durable Object is after an eviction.
struct Session {
    dir: TempDir,
}

impl Session {
    /// A new, initialized session whose sandbox exists and whose runner has said
    /// hello before (so without a runner it is `reconnecting`).
    fn new() -> Self {
        let session = Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        let store = session.open();
        store
            .save_record(&SessionRecord {
                session_id: "s1".into(),
                owner_id: "owner".into(),
                initialized: true,
                sandbox: SandboxState::Created {
                    sandbox_id: "sb1".into(),
                },
                runner_ever_connected: true,
                status: SessionStatus::Reconnecting,
                ..SessionRecord::default()
            })
            .unwrap();
        session
    }

    fn open(&self) -> SessionStore<Sqlite> {
        SessionStore::open(Sqlite::open(&self.dir.path().join("session.sqlite")))
            .expect("the schema applies")
    }
}

fn prompt(id: &str, content: &str, mode: QueueMode, sent_by: &str) -> NewPrompt {
    NewPrompt {
        id: id.into(),
        content: content.into(),
        mode,
        sent_by: Some(sent_by.into()),
        worker_url: "http://worker.test".into(),
    }
}

fn enqueue(store: &SessionStore<Sqlite>, now: i64, new: NewPrompt) -> Option<QueuedPrompt> {
    TurnSteps::new(store, now, true)
        .enqueue(new, COLLECT_WINDOW_MS, MAX_QUEUED)
        .unwrap()
}

/// Starts the next prompt as `turn_id` on runner epoch `e1`, as a dispatch does;
/// returns the prompt's message id.
fn start(store: &SessionStore<Sqlite>, now: i64, turn_id: &str) -> Option<String> {
    let frame = TurnSteps::new(store, now, true)
        .start_next(turn_id, "e1".into(), None)
        .unwrap()?;
    let SessionFrame::Prompt { message_id, .. } = frame else {
        panic!("a dispatch sends a prompt frame, not {frame:?}");
    };
    Some(message_id)
}

/// What the runner link does with one event frame.
#[derive(Debug, PartialEq, Eq)]
enum Intake {
    Taken(TakenEvent),
    Duplicate,
    OutOfOrder { expected: u64 },
}

fn runner_sends(
    store: &SessionStore<Sqlite>,
    now: i64,
    local_seq: u64,
    turn_id: &str,
    event: EventBody,
) -> Intake {
    let acked = store.epoch_acked("e1").unwrap().unwrap_or(0);
    match classify_runner_event(acked, local_seq) {
        RunnerIntake::Accept => Intake::Taken(
            TurnSteps::new(store, now, true)
                .take_runner_event(turn_id, "e1", local_seq, event)
                .unwrap(),
        ),
        RunnerIntake::Duplicate => Intake::Duplicate,
        RunnerIntake::OutOfOrder { expected } => Intake::OutOfOrder { expected },
    }
}

fn text(text: &str) -> EventBody {
    EventBody::TextDelta { text: text.into() }
}

fn finished(outcome: TurnOutcome, input: u64, output: u64, duration_ms: u64) -> EventBody {
    EventBody::TurnFinished {
        outcome,
        usage: TokenUsage {
            input_tokens: input,
            output_tokens: output,
        },
        error: None,
        duration_ms,
    }
}

fn all_events(store: &SessionStore<Sqlite>) -> Vec<SessionEvent> {
    store.events_after(0, 1_000).unwrap()
}

fn state(store: &SessionStore<Sqlite>, id: &str) -> MessageState {
    store.queue_with(id).unwrap().message(id).unwrap().state
}

const TAKEN: Intake = Intake::Taken(TakenEvent {
    stored: true,
    refused_kind: false,
    finished_turn: false,
});

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

    let deltas: Vec<String> = all_events(&store)
        .into_iter()
        .filter_map(|event| match event.body {
            EventBody::TextDelta { text } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["Hel", "lo"], "each delta once, in order");
    let seqs: Vec<u64> = all_events(&store).iter().map(|event| event.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

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
