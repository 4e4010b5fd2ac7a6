//! The machine over the store: a session that becomes idle starts its idle clock,
//! sleeps on `idle_timeout` and `snapshot_saved`, a prompt queued while it is asleep
//! makes it `waking` (kept in the store, so a restarted object still restores it),
//! and a failed restore is an `error` that keeps the prompt.

use nightshift_protocol::sandbox::SandboxSnapshot;
use nightshift_session::session_machine::{Effect, Input};

use super::harness::*;

fn snapshot() -> SandboxSnapshot {
    SandboxSnapshot {
        sandbox_id: "sb1".into(),
        kind: "directory".into(),
        runner_version: "0.1.0".into(),
        image: None,
        made_at: 0,
        bytes: Some(10),
    }
}

#[test]
fn an_idle_session_sleeps_and_a_prompt_wakes_it_from_the_store() {
    let session = Session::new();
    let store = session.open();
    // The runner says hello: ready, with the idle clock started.
    TurnSteps::new(&store, 1_000, true)
        .refresh_status()
        .unwrap();
    let record = store.record().unwrap();
    assert_eq!(
        (record.status, record.idle_since),
        (SessionStatus::Idle, Some(1_000))
    );

    let effects = TurnSteps::new(&store, 5_000, true)
        .step_machine(Input::IdleTimeout)
        .unwrap();
    assert_eq!(effects, [Effect::TakeSnapshot]);
    assert_eq!(store.record().unwrap().status, SessionStatus::Sleeping);
    // The backend's sleep stops the runner.
    TurnSteps::new(&store, 5_100, false)
        .refresh_status()
        .unwrap();
    let mut record = store.record().unwrap();
    record.snapshot = Some(snapshot());
    store.save_record(&record).unwrap();
    let effects = TurnSteps::new(&store, 5_200, false)
        .step_machine(Input::SnapshotSaved)
        .unwrap();
    assert_eq!(effects, [Effect::StopSandbox]);
    let record = store.record().unwrap();
    assert_eq!(
        (record.status, record.idle_since),
        (SessionStatus::Asleep, None)
    );

    // A prompt wakes it: the phase is stored, so whoever reads the store next
    // restores the sandbox.
    TurnSteps::new(&store, 6_000, false)
        .enqueue(prompt("m1", "wake up", QueueMode::Followup, "u1"), 0, 10)
        .unwrap();
    TurnSteps::new(&store, 6_000, false)
        .refresh_status()
        .unwrap();
    let reopened = session.open();
    assert_eq!(reopened.record().unwrap().status, SessionStatus::Waking);

    // The backend cannot restore it: error, with the reason, the prompt kept.
    let mut record = reopened.record().unwrap();
    record.sandbox = SandboxState::Failed {
        reason: "the sandbox backend could not restore the sandbox".into(),
    };
    reopened.save_record(&record).unwrap();
    TurnSteps::new(&reopened, 7_000, false)
        .refresh_status()
        .unwrap();
    let record = reopened.record().unwrap();
    assert_eq!(record.status, SessionStatus::Error);
    assert!(
        record.snapshot.is_some(),
        "the snapshot is kept for a retry"
    );
    assert_eq!(state(&reopened, "m1"), MessageState::Queued);

    // Another prompt tries the restore again: the failed request is forgotten.
    TurnSteps::new(&reopened, 8_000, false)
        .enqueue(prompt("m2", "again", QueueMode::Followup, "u1"), 0, 10)
        .unwrap();
    TurnSteps::new(&reopened, 8_000, false)
        .refresh_status()
        .unwrap();
    let record = reopened.record().unwrap();
    assert_eq!(record.status, SessionStatus::Waking);
    assert_eq!(record.sandbox, SandboxState::NotRequested);
}
