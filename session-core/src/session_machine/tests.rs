//! The table's properties: one rule per pair, each phase's invariants after any
//! sequence of inputs, no queued prompt lost (started, or still queued), and every reachable state settling once the world answers the effects;
//! plus the journeys the `SessionAgent` relies on, step by step.

use std::collections::{HashSet, VecDeque};

use proptest::prelude::*;

use super::*;

/// A state the session can rest in: ready with nothing queued, asleep, archived.
fn at_rest(m: &Machine) -> bool {
    matches!(m.phase, Phase::Asleep | Phase::Archived) || (m.phase == Phase::Ready && m.queued == 0)
}

/// The world answering every effect with success (sandboxes come up, runners say
/// hello, turns end, snapshots are kept), and a user pressing "wake" on an error.
/// Answers how many steps it took to come to rest, or the state it got stuck in.
fn settle(mut m: Machine, mut pending: Vec<Effect>) -> Result<usize, Machine> {
    let mut answers: VecDeque<Input> = VecDeque::new();
    for step in 0..200 {
        for effect in pending.drain(..) {
            match effect {
                Effect::CreateSandbox | Effect::RestoreSandbox => {
                    answers.push_back(Input::SandboxCreated);
                    answers.push_back(Input::RunnerConnected);
                }
                Effect::StartTurn => answers.push_back(Input::TurnEnded),
                Effect::TakeSnapshot => answers.push_back(Input::SnapshotSaved),
                _ => {}
            }
        }
        if answers.is_empty() {
            if at_rest(&m) {
                return Ok(step);
            }
            // Nothing asked of the world is outstanding: what would come next.
            answers.push_back(match m.phase {
                Phase::Reconnecting | Phase::Provisioning | Phase::Waking => Input::RunnerConnected,
                Phase::Error => Input::WakeRequested,
                Phase::Sleeping => Input::SnapshotSaved,
                Phase::Running => Input::TurnEnded,
                Phase::Ready | Phase::Asleep | Phase::Archived => return Err(m),
            });
        }
        let input = answers.pop_front().expect("an answer");
        let (next, effects) = m.step(input);
        next.check().map_err(|_| next)?;
        m = next;
        pending = effects;
    }
    Err(m)
}

/// Counts what happened to prompts over a run.
#[derive(Default, Debug)]
struct Ledger {
    accepted: u32,
    started: u32,
}

impl Ledger {
    fn record(&mut self, before: &Machine, input: Input, effects: &[Effect]) {
        if input == Input::PromptQueued && before.phase != Phase::Archived {
            self.accepted += 1;
        }
        self.started += effects.iter().filter(|e| **e == Effect::StartTurn).count() as u32;
    }

    /// Every accepted prompt was started or is still queued.
    fn balances(&self, m: &Machine) -> bool {
        self.accepted == self.started + m.queued
    }
}

fn any_input() -> impl Strategy<Value = Input> {
    proptest::sample::select(Input::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_inputs_keep_the_invariants_lose_no_prompt_and_settle(
        inputs in proptest::collection::vec(any_input(), 0..120)
    ) {
        let (mut m, mut last) = Machine::new();
        let mut ledger = Ledger::default();
        for input in inputs {
            let (next, effects) = m.step(input);
            prop_assert_eq!(next.check(), Ok(()), "{:?} --{:?}--> {:?}", m, input, next);
            ledger.record(&m, input, &effects);
            prop_assert!(ledger.balances(&next), "{:?} {:?}", ledger, next);
            m = next;
            last = effects;
        }
        // From wherever it got to, the world's answers bring it to rest.
        let before = m;
        let settled = settle(m, last);
        prop_assert!(settled.is_ok(), "stuck from {:?}: {:?}", before, settled);
    }
}

#[test]
fn one_rule_per_phase_and_input() {
    let mut seen = HashSet::new();
    for row in TABLE {
        assert!(
            seen.insert((row.from, row.on)),
            "two rules for {:?} on {:?}",
            row.from,
            row.on
        );
    }
    // Every phase but archived takes prompts (none is dropped on the floor), and
    // every phase can be archived.
    for phase in Phase::ALL {
        assert!(
            rule(phase, Input::PromptQueued).is_some(),
            "{phase:?} ignores prompts"
        );
        if phase != Phase::Archived {
            assert!(
                rule(phase, Input::Archive).is_some(),
                "{phase:?} cannot be archived"
            );
        }
    }
}

/// Every state reachable with up to three queued prompts, explored exhaustively,
/// settles (the property test above samples longer runs).
#[test]
fn every_reachable_state_settles() {
    let (start, _) = Machine::new();
    let mut seen = HashSet::new();
    let mut frontier = vec![start];
    seen.insert(start);
    while let Some(m) = frontier.pop() {
        for input in Input::ALL {
            if input == Input::PromptQueued && m.queued >= 3 {
                continue;
            }
            let (next, effects) = m.step(input);
            assert_eq!(next.check(), Ok(()), "{m:?} --{input:?}--> {next:?}");
            assert!(
                settle(next, effects).is_ok(),
                "stuck after {m:?} --{input:?}-->"
            );
            if seen.insert(next) {
                frontier.push(next);
            }
        }
    }
    // Every phase is reachable.
    let phases: HashSet<Phase> = seen.iter().map(|m| m.phase).collect();
    assert_eq!(phases.len(), Phase::ALL.len(), "{phases:?}");
}

fn run(m: Machine, inputs: &[Input]) -> (Machine, Vec<Vec<Effect>>) {
    let mut m = m;
    let mut all = Vec::new();
    for &input in inputs {
        let (next, effects) = m.step(input);
        m = next;
        all.push(effects);
    }
    (m, all)
}

fn ready() -> Machine {
    let (m, _) = Machine::new();
    let (m, _) = run(m, &[Input::SandboxCreated, Input::RunnerConnected]);
    assert_eq!(m.phase, Phase::Ready);
    m
}

#[test]
fn a_prompt_to_a_sleeping_session_wakes_it_and_runs() {
    let (m, effects) = run(ready(), &[Input::IdleTimeout, Input::SnapshotSaved]);
    assert_eq!(
        effects,
        [vec![Effect::TakeSnapshot], vec![Effect::StopSandbox]]
    );
    assert_eq!(
        (m.phase, m.snapshot, m.runner),
        (Phase::Asleep, true, false)
    );

    let (m, effects) = run(
        m,
        &[
            Input::PromptQueued,
            Input::SandboxCreated,
            Input::RunnerConnected,
            Input::TurnEnded,
        ],
    );
    assert_eq!(
        effects,
        [
            vec![Effect::RestoreSandbox],
            vec![],
            vec![Effect::StartTurn],
            vec![Effect::ArmIdleTimer]
        ]
    );
    assert_eq!((m.phase, m.queued), (Phase::Ready, 0));
}

#[test]
fn a_prompt_while_saving_keeps_the_sandbox_up() {
    let (m, effects) = run(
        ready(),
        &[
            Input::IdleTimeout,
            Input::PromptQueued,
            Input::SnapshotSaved,
        ],
    );
    assert_eq!(
        effects[2],
        [Effect::StartTurn],
        "not stopped: the prompt runs"
    );
    assert_eq!((m.phase, m.queued, m.snapshot), (Phase::Running, 0, true));
}

#[test]
fn a_failed_snapshot_keeps_the_session_awake() {
    let (m, effects) = run(ready(), &[Input::IdleTimeout, Input::SnapshotFailed]);
    assert_eq!(effects[1], [Effect::ArmIdleTimer]);
    assert_eq!((m.phase, m.snapshot), (Phase::Ready, false));
}

#[test]
fn a_turn_survives_a_dropped_link_and_queued_prompts_wait_for_it() {
    let (m, _) = run(
        ready(),
        &[Input::PromptQueued, Input::RunnerLost, Input::PromptQueued],
    );
    assert_eq!((m.phase, m.turn, m.queued), (Phase::Reconnecting, true, 1));
    let (m, effects) = run(m, &[Input::RunnerConnected, Input::TurnEnded]);
    assert_eq!(effects, [vec![], vec![Effect::StartTurn]]);
    assert_eq!((m.phase, m.queued), (Phase::Running, 0));
}

#[test]
fn a_lost_sandbox_fails_its_turn_and_a_prompt_recovers_from_the_snapshot() {
    let (m, _) = run(
        ready(),
        &[
            Input::IdleTimeout,
            Input::SnapshotSaved,
            Input::WakeRequested,
        ],
    );
    assert_eq!(m.phase, Phase::Waking);
    let (m, _) = run(m, &[Input::SandboxFailed]);
    assert_eq!(m.phase, Phase::Error);
    let (m, effects) = run(m, &[Input::PromptQueued]);
    assert_eq!(effects, [vec![Effect::RestoreSandbox]]);
    assert_eq!((m.phase, m.queued), (Phase::Waking, 1));

    // Without a snapshot, recovering asks for a new sandbox; a turn cut by the
    // sandbox's loss ends with it.
    let (m, _) = run(
        ready(),
        &[Input::PromptQueued, Input::RunnerLost, Input::SandboxFailed],
    );
    assert_eq!((m.phase, m.turn), (Phase::Error, false));
    let (m, effects) = run(m, &[Input::WakeRequested]);
    assert_eq!(effects, [vec![Effect::CreateSandbox]]);
    assert_eq!(m.phase, Phase::Provisioning);
}

#[test]
fn an_archived_session_refuses_prompts_and_runners() {
    let (m, effects) = run(
        ready(),
        &[Input::PromptQueued, Input::PromptQueued, Input::Archive],
    );
    assert_eq!(
        effects[2],
        [
            Effect::AbortTurn,
            Effect::DestroySandbox,
            Effect::DestroySnapshots
        ]
    );
    // The prompt still queued stays queued, for a restore to run.
    assert_eq!(
        m,
        Machine {
            phase: Phase::Archived,
            queued: 1,
            ..Machine::default()
        }
    );
    let (after, effects) = run(
        m,
        &[
            Input::PromptQueued,
            Input::RunnerConnected,
            Input::WakeRequested,
        ],
    );
    assert_eq!(
        effects,
        [
            vec![Effect::RefusePrompt],
            vec![Effect::RejectRunner],
            vec![]
        ]
    );
    assert_eq!(after, m);
}

#[test]
fn the_table_in_architecture_md_is_this_one() {
    let doc = include_str!("../../../ARCHITECTURE.md");
    assert!(
        doc.contains(&table_markdown()),
        "ARCHITECTURE.md's session table differs from session_machine::TABLE; \
         paste this in:\n{}",
        table_markdown()
    );
}
