//! A session's database on disk and the shell's part of each step (classifying a
//! runner frame before taking it in), shared by the cycle's tests.

pub use super::sqlite::Sqlite;
pub use nightshift_protocol::api::{MessageState, QueueMode, SessionStatus};
pub use nightshift_protocol::events::{EventBody, SessionEvent, TokenUsage, TurnOutcome};
pub use nightshift_protocol::runner_link::SessionFrame;
pub use nightshift_session::event_log::{RunnerIntake, classify_runner_event};
pub use nightshift_session::lifecycle::SandboxState;
pub use nightshift_session::session_machine::{Machine, Phase};
pub use nightshift_session::store::{SessionRecord, SessionStore};
pub use nightshift_session::turns::{
    NewPrompt, QueuedPrompt, TakenEvent, TurnSteps, UNSENT_REASON,
};
use tempfile::TempDir;

pub const COLLECT_WINDOW_MS: i64 = 1_500;
pub const ABORT_TIMEOUT_MS: i64 = 15_000;
pub const MAX_QUEUED: usize = 10;

/// A session's database on disk; each [`Session::open`] is a fresh store over it,
/// as a Durable Object is after an eviction.
pub struct Session {
    dir: TempDir,
}

impl Session {
    /// A new, initialized session whose sandbox exists and whose runner has said
    /// hello before (so without a runner it is `reconnecting`).
    pub fn new() -> Self {
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
                machine: Machine {
                    phase: Phase::Reconnecting,
                    ..Machine::default()
                },
                ..SessionRecord::default()
            })
            .unwrap();
        session
    }

    pub fn open(&self) -> SessionStore<Sqlite> {
        SessionStore::open(Sqlite::open(&self.dir.path().join("session.sqlite")))
            .expect("the schema applies")
    }
}

pub fn prompt(id: &str, content: &str, mode: QueueMode, sent_by: &str) -> NewPrompt {
    NewPrompt {
        id: id.into(),
        content: content.into(),
        mode,
        sent_by: Some(sent_by.into()),
        worker_url: "http://worker.test".into(),
    }
}

pub fn enqueue(store: &SessionStore<Sqlite>, now: i64, new: NewPrompt) -> Option<QueuedPrompt> {
    TurnSteps::new(store, now, true)
        .enqueue(new, COLLECT_WINDOW_MS, MAX_QUEUED)
        .unwrap()
}

/// Starts the next prompt as `turn_id` on runner epoch `e1`, as a dispatch does;
/// returns the prompt's message id.
pub fn start(store: &SessionStore<Sqlite>, now: i64, turn_id: &str) -> Option<String> {
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
pub enum Intake {
    Taken(TakenEvent),
    Duplicate,
    OutOfOrder { expected: u64 },
}

pub fn runner_sends(
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

pub fn text(text: &str) -> EventBody {
    EventBody::TextDelta { text: text.into() }
}

pub fn finished(outcome: TurnOutcome, input: u64, output: u64, duration_ms: u64) -> EventBody {
    EventBody::TurnFinished {
        outcome,
        usage: TokenUsage {
            input_tokens: input,
            output_tokens: output,
            ..TokenUsage::default()
        },
        error: None,
        duration_ms,
    }
}

pub fn all_events(store: &SessionStore<Sqlite>) -> Vec<SessionEvent> {
    store.events_after(0, 1_000).unwrap()
}

pub fn state(store: &SessionStore<Sqlite>, id: &str) -> MessageState {
    store.queue_with(id).unwrap().message(id).unwrap().state
}

pub const TAKEN: Intake = Intake::Taken(TakenEvent {
    stored: true,
    refused_kind: false,
    finished_turn: false,
});
