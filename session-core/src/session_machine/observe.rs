//! Feeding the machine what the `SessionAgent` observes.
//!
//! The `SessionAgent` records facts as they happen (a runner said hello or its link
//! closed, a prompt was queued or started, a turn ended, the backend failed, the
//! session was archived), in its store, each in its own step. [`observe`] turns the
//! difference between what the machine last knew ([`Machine`]'s four facts) and what
//! is recorded now ([`Observed`]) into the machine's inputs, in a fixed order, and
//! steps the machine through them. The inputs nobody can observe in the store
//! (the idle timer ringing, a snapshot's answer, a wake button) are stepped
//! directly with [`Machine::step`].
//!
//! Queueing and starting are the store's: after the inputs, the machine's counts
//! are set to the recorded ones, and a work phase (`ready`, `running`,
//! `reconnecting`) is the one the recorded facts make (a prompt waiting for its
//! collect window is work: `running`). So whatever fact lands last, the phase
//! follows it, as the derived status did before the machine.

use super::{Effect, Input, Machine, Phase};

/// What the `SessionAgent`'s store says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// A runner is connected and said hello.
    pub runner: bool,
    /// A prompt is being processed.
    pub turn: bool,
    /// Prompts waiting to start.
    pub queued: u32,
    /// The last request to the backend (create or restore) failed.
    pub sandbox_failed: bool,
    /// The session was archived.
    pub archived: bool,
}

/// Steps `machine` through the inputs that make it agree with `observed`: the new
/// machine and every effect, in order.
pub fn observe(machine: Machine, observed: &Observed) -> (Machine, Vec<Effect>) {
    let mut m = machine;
    let mut effects = Vec::new();
    let mut feed = |m: &mut Machine, input: Input| {
        let (next, more) = m.step(input);
        *m = next;
        effects.extend(more);
    };
    if observed.archived && m.phase != Phase::Archived {
        feed(&mut m, Input::Archive);
    }
    if observed.sandbox_failed && !observed.runner {
        feed(&mut m, Input::SandboxFailed);
    }
    if observed.runner && !m.runner {
        feed(&mut m, Input::RunnerConnected);
    } else if !observed.runner && m.runner {
        feed(&mut m, Input::RunnerLost);
    }
    // Only a turn the machine knew of before can have ended: one its own steps just
    // started (`start_turn`) is the object's to start next.
    if machine.turn && m.turn && !observed.turn {
        feed(&mut m, Input::TurnEnded);
    }
    // New prompts: more waiting (or started since) than the machine counted. A turn
    // the store still holds outside the work phases (its runner went with the
    // sandbox) is not a new prompt.
    let counts_turn = matches!(m.phase, Phase::Ready | Phase::Running | Phase::Reconnecting);
    let known = m.queued + u32::from(m.turn);
    let now = observed.queued + u32::from(observed.turn && counts_turn);
    for _ in known..now {
        feed(&mut m, Input::PromptQueued);
    }
    let before = m.phase;
    m.queued = observed.queued;
    m.turn = observed.turn;
    match m.phase {
        Phase::Ready | Phase::Running | Phase::Reconnecting => {
            m.runner = observed.runner;
            m.phase = if !m.runner {
                Phase::Reconnecting
            } else if m.turn || m.queued > 0 {
                Phase::Running
            } else {
                Phase::Ready
            };
            if m.phase == Phase::Ready && before != Phase::Ready {
                effects.push(Effect::ArmIdleTimer);
            }
        }
        // A runner seen in these phases is one the machine refused (or one whose
        // link the object is about to close): the phase's invariants hold.
        Phase::Asleep | Phase::Archived | Phase::Provisioning | Phase::Waking | Phase::Error => {
            m.runner = false;
            m.turn = false;
        }
        Phase::Sleeping => {
            m.runner = observed.runner;
            m.turn = false;
        }
    }
    effects.dedup();
    (m, effects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(runner: bool, turn: bool, queued: u32) -> Observed {
        Observed {
            runner,
            turn,
            queued,
            ..Observed::default()
        }
    }

    #[test]
    fn a_runner_then_a_prompt_then_its_end_walk_the_work_phases() {
        let (m, _) = Machine::new();
        let (m, effects) = observe(m, &seen(true, false, 0));
        assert_eq!(
            (m.phase, effects),
            (Phase::Ready, vec![Effect::ArmIdleTimer])
        );
        let (m, _) = observe(m, &seen(true, false, 1));
        assert_eq!(m.phase, Phase::Running);
        let (m, _) = observe(m, &seen(true, true, 0));
        assert_eq!(m.phase, Phase::Running);
        let (m, effects) = observe(m, &seen(true, false, 0));
        assert_eq!(
            (m.phase, effects),
            (Phase::Ready, vec![Effect::ArmIdleTimer])
        );
        assert_eq!(m.check(), Ok(()));
    }

    #[test]
    fn observing_the_same_facts_again_changes_nothing() {
        let (m, _) = Machine::new();
        let (m, _) = observe(m, &seen(true, true, 2));
        let (again, effects) = observe(m, &seen(true, true, 2));
        assert_eq!((again, effects), (m, vec![]));
    }

    #[test]
    fn a_prompt_to_an_asleep_session_wakes_it_and_runs_once_the_runner_is_back() {
        let (m, _) = observe(Machine::new().0, &seen(true, false, 0));
        let (m, _) = m.step(Input::IdleTimeout);
        let (m, _) = observe(m, &seen(false, false, 0));
        assert_eq!(m.phase, Phase::Sleeping);
        let (m, effects) = m.step(Input::SnapshotSaved);
        assert_eq!(
            (m.phase, effects),
            (Phase::Asleep, vec![Effect::StopSandbox])
        );
        let (m, effects) = observe(m, &seen(false, false, 1));
        assert_eq!(
            (m.phase, m.queued, effects),
            (Phase::Waking, 1, vec![Effect::RestoreSandbox])
        );
        let (m, effects) = observe(m, &seen(true, false, 1));
        assert_eq!(
            (m.phase, effects),
            (Phase::Running, vec![Effect::StartTurn])
        );
    }

    #[test]
    fn a_failed_wake_is_an_error_that_keeps_the_prompts() {
        let mut m = Machine {
            phase: Phase::Waking,
            queued: 2,
            snapshot: true,
            ..Machine::default()
        };
        (m, _) = observe(
            m,
            &Observed {
                queued: 2,
                sandbox_failed: true,
                ..Observed::default()
            },
        );
        assert_eq!((m.phase, m.queued), (Phase::Error, 2));
        let (m, effects) = observe(m, &seen(false, false, 3));
        assert_eq!(
            (m.phase, effects),
            (Phase::Waking, vec![Effect::RestoreSandbox])
        );
    }

    #[test]
    fn a_prompt_while_saving_is_restored_when_the_save_stopped_the_runner() {
        let (m, _) = observe(Machine::new().0, &seen(true, false, 0));
        let (m, _) = m.step(Input::IdleTimeout);
        let (m, _) = observe(m, &seen(false, false, 1));
        let (m, effects) = m.step(Input::SnapshotSaved);
        assert_eq!(
            (m.phase, effects),
            (Phase::Waking, vec![Effect::RestoreSandbox])
        );
    }

    #[test]
    fn archiving_is_seen_whatever_the_phase() {
        let (m, _) = observe(Machine::new().0, &seen(true, true, 1));
        let (m, effects) = observe(
            m,
            &Observed {
                archived: true,
                queued: 1,
                ..Observed::default()
            },
        );
        assert_eq!(m.phase, Phase::Archived);
        assert!(effects.contains(&Effect::DestroySnapshots));
        assert_eq!(m.check(), Ok(()));
    }
}
