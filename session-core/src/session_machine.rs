//! A session's life as one table: the phase it is in, what each input does to it,
//! and what its `SessionAgent` must do about it ([`Effect`]).
//!
//! [`TABLE`] is the whole of the rules. [`Machine::step`] looks up the row for the
//! current phase and the input; an input with no row changes nothing (a runner saying
//! hello twice, a snapshot answer arriving after the session moved on). Each row goes
//! to a phase, stays, or to one of three places decided by what is waiting
//! ([`To`]): whether a runner is there, a turn is running, prompts are queued, a
//! snapshot is kept. Those four facts travel with the phase in [`Machine`], so
//! "never lose a queued prompt" is a property of the table that the tests check over
//! random input sequences (`session_machine/tests.rs`), along with the invariants of
//! each phase ([`Machine::check`]) and that every state settles (ready with nothing
//! queued, asleep, or archived) once the world answers the effects.
//!
//! The phases (the API's statuses are their names): `provisioning` (a sandbox is on
//! its way), `ready` (a runner is there, nothing runs), `running`, `reconnecting` (the
//! runner's link dropped; queued work waits for it), `sleeping` (saving the sandbox),
//! `asleep` (the snapshot is kept, the sandbox stopped), `waking` (restoring it),
//! `error` (no sandbox could be had) and `archived` (the sandbox and its snapshots
//! are gone, the history and the queued prompts stay; it takes no new prompt).
//!
//! Plain data, no storage, no clock: the `SessionAgent` persists the [`Machine`],
//! feeds it inputs as facts arrive, and carries out the effects.

use serde::{Deserialize, Serialize};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Provisioning,
    Ready,
    Running,
    Reconnecting,
    Sleeping,
    Asleep,
    Waking,
    Error,
    Archived,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Provisioning,
        Phase::Ready,
        Phase::Running,
        Phase::Reconnecting,
        Phase::Sleeping,
        Phase::Asleep,
        Phase::Waking,
        Phase::Error,
        Phase::Archived,
    ];

    /// The wire name (the session's `status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Provisioning => "provisioning",
            Phase::Ready => "ready",
            Phase::Running => "running",
            Phase::Reconnecting => "reconnecting",
            Phase::Sleeping => "sleeping",
            Phase::Asleep => "asleep",
            Phase::Waking => "waking",
            Phase::Error => "error",
            Phase::Archived => "archived",
        }
    }
}

/// Something that happened to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The backend created the sandbox, or restored it from the snapshot.
    SandboxCreated,
    /// The backend could not create or restore it, or says it is gone for good.
    SandboxFailed,
    /// The sandbox's runner said hello on its link.
    RunnerConnected,
    /// The runner's link closed.
    RunnerLost,
    /// A user sent a prompt.
    PromptQueued,
    /// The running turn ended (finished, failed, aborted or given up on).
    TurnEnded,
    /// Nothing happened in the session for its idle time.
    IdleTimeout,
    /// The snapshot asked for is kept.
    SnapshotSaved,
    /// The snapshot asked for could not be made.
    SnapshotFailed,
    /// A user wants the sandbox (the wake button, an opened panel).
    WakeRequested,
    /// Its owner or an admin archived the session.
    Archive,
}

impl Input {
    pub const ALL: [Input; 11] = [
        Input::SandboxCreated,
        Input::SandboxFailed,
        Input::RunnerConnected,
        Input::RunnerLost,
        Input::PromptQueued,
        Input::TurnEnded,
        Input::IdleTimeout,
        Input::SnapshotSaved,
        Input::SnapshotFailed,
        Input::WakeRequested,
        Input::Archive,
    ];
}

/// What the `SessionAgent` must do after a step, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Ask the backend for a new sandbox.
    CreateSandbox,
    /// Ask the backend for a sandbox restored from the latest snapshot.
    RestoreSandbox,
    /// Send the next queued prompt to the runner.
    StartTurn,
    /// (Re)arm the idle timer.
    ArmIdleTimer,
    /// Snapshot the sandbox (workspace, home, repository; with the runner's and the
    /// image's versions).
    TakeSnapshot,
    /// Stop the sandbox (its snapshot is kept) and close the runner's link.
    StopSandbox,
    /// Abort the running turn, if any.
    AbortTurn,
    /// Destroy the sandbox and close the runner's link.
    DestroySandbox,
    /// Destroy every snapshot of the session.
    DestroySnapshots,
    /// Refuse the prompt that just came, saying why (it never joins the queue).
    RefusePrompt,
    /// Close the link of a runner that has no business here.
    RejectRunner,
}

/// Where a row goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    Stay,
    Go(Phase),
    /// To work: `reconnecting` without a runner; else `running` if a turn runs,
    /// `running` with [`Effect::StartTurn`] if prompts wait, else `ready` with
    /// [`Effect::ArmIdleTimer`].
    Work,
    /// After a snapshot is kept: to work if prompts came meanwhile and the runner is
    /// still there; `waking` with [`Effect::RestoreSandbox`] if prompts came but the
    /// saving stopped the sandbox (a backend whose sleep saves and stops in one
    /// call); else `asleep` with [`Effect::StopSandbox`].
    Rest,
    /// Out of `error`: `waking` with [`Effect::RestoreSandbox`] when a snapshot is
    /// kept, else `provisioning` with [`Effect::CreateSandbox`].
    Recover,
}

/// One rule: in phase `from`, `on` goes `to`, doing `effects` first.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub from: Phase,
    pub on: Input,
    pub to: To,
    pub effects: &'static [Effect],
}

const fn row(from: Phase, on: Input, to: To, effects: &'static [Effect]) -> Row {
    Row {
        from,
        on,
        to,
        effects,
    }
}

use Effect as E;
use Input as I;
use Phase as P;

/// Archiving ends everything but the history; queued prompts stay queued (shown as
/// such) for a restore from a checkpoint to run.
const ARCHIVE: &[Effect] = &[E::AbortTurn, E::DestroySandbox, E::DestroySnapshots];

/// The rules. One row per (phase, input) at most; a pair without a row is ignored.
pub const TABLE: &[Row] = &[
    row(P::Provisioning, I::RunnerConnected, To::Work, &[]),
    row(P::Provisioning, I::SandboxFailed, To::Go(P::Error), &[]),
    row(P::Provisioning, I::PromptQueued, To::Stay, &[]),
    row(P::Provisioning, I::Archive, To::Go(P::Archived), ARCHIVE),
    row(P::Ready, I::PromptQueued, To::Work, &[]),
    row(P::Ready, I::RunnerLost, To::Go(P::Reconnecting), &[]),
    row(P::Ready, I::WakeRequested, To::Stay, &[E::ArmIdleTimer]),
    row(
        P::Ready,
        I::IdleTimeout,
        To::Go(P::Sleeping),
        &[E::TakeSnapshot],
    ),
    row(P::Ready, I::Archive, To::Go(P::Archived), ARCHIVE),
    row(P::Running, I::PromptQueued, To::Stay, &[]),
    row(P::Running, I::TurnEnded, To::Work, &[]),
    row(P::Running, I::RunnerLost, To::Go(P::Reconnecting), &[]),
    row(P::Running, I::Archive, To::Go(P::Archived), ARCHIVE),
    row(P::Reconnecting, I::RunnerConnected, To::Work, &[]),
    row(P::Reconnecting, I::PromptQueued, To::Stay, &[]),
    row(P::Reconnecting, I::TurnEnded, To::Stay, &[]),
    row(
        P::Reconnecting,
        I::SandboxFailed,
        To::Go(P::Error),
        &[E::AbortTurn],
    ),
    row(P::Reconnecting, I::Archive, To::Go(P::Archived), ARCHIVE),
    row(P::Sleeping, I::SnapshotSaved, To::Rest, &[]),
    row(P::Sleeping, I::SnapshotFailed, To::Work, &[]),
    row(P::Sleeping, I::PromptQueued, To::Stay, &[]),
    row(P::Sleeping, I::RunnerLost, To::Stay, &[]),
    row(P::Sleeping, I::RunnerConnected, To::Stay, &[]),
    row(P::Sleeping, I::Archive, To::Go(P::Archived), ARCHIVE),
    row(
        P::Asleep,
        I::PromptQueued,
        To::Go(P::Waking),
        &[E::RestoreSandbox],
    ),
    row(
        P::Asleep,
        I::WakeRequested,
        To::Go(P::Waking),
        &[E::RestoreSandbox],
    ),
    row(P::Asleep, I::RunnerConnected, To::Stay, &[E::RejectRunner]),
    row(P::Asleep, I::Archive, To::Go(P::Archived), ARCHIVE),
    row(P::Waking, I::RunnerConnected, To::Work, &[]),
    row(P::Waking, I::SandboxFailed, To::Go(P::Error), &[]),
    row(P::Waking, I::PromptQueued, To::Stay, &[]),
    row(P::Waking, I::Archive, To::Go(P::Archived), ARCHIVE),
    row(P::Error, I::PromptQueued, To::Recover, &[]),
    row(P::Error, I::WakeRequested, To::Recover, &[]),
    row(P::Error, I::RunnerConnected, To::Work, &[]),
    row(P::Error, I::Archive, To::Go(P::Archived), ARCHIVE),
    row(P::Archived, I::PromptQueued, To::Stay, &[E::RefusePrompt]),
    row(
        P::Archived,
        I::RunnerConnected,
        To::Stay,
        &[E::RejectRunner],
    ),
];

/// The rule for `phase` and `input`, if there is one.
pub fn rule(phase: Phase, input: Input) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.from == phase && r.on == input)
}

/// A session's phase and the four facts the table's choices depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Machine {
    pub phase: Phase,
    /// Prompts waiting to be started.
    pub queued: u32,
    /// A turn was started and has not ended (it may outlive a dropped link).
    pub turn: bool,
    /// A runner is connected.
    pub runner: bool,
    /// A snapshot of the sandbox is kept.
    pub snapshot: bool,
}

impl Machine {
    /// A new session: provisioning, its sandbox asked for.
    pub fn new() -> (Machine, Vec<Effect>) {
        (Machine::default(), vec![Effect::CreateSandbox])
    }

    /// Applies `input`: the new machine and what to do, in order.
    pub fn step(self, input: Input) -> (Machine, Vec<Effect>) {
        let Some(row) = rule(self.phase, input) else {
            return (self, Vec::new());
        };
        let mut next = self;
        match input {
            Input::PromptQueued if self.phase != Phase::Archived => {
                next.queued = next.queued.saturating_add(1)
            }
            Input::TurnEnded => next.turn = false,
            Input::RunnerConnected if !row.effects.contains(&Effect::RejectRunner) => {
                next.runner = true
            }
            Input::RunnerLost => next.runner = false,
            Input::SnapshotSaved => next.snapshot = true,
            _ => {}
        }
        let mut effects = Vec::new();
        for &effect in row.effects {
            next.apply(effect);
            effects.push(effect);
        }
        match row.to {
            To::Stay => {}
            To::Go(phase) => next.phase = phase,
            To::Work => next.go_to_work(&mut effects),
            To::Rest => {
                if next.queued > 0 && next.runner {
                    next.go_to_work(&mut effects);
                } else if next.queued > 0 {
                    next.phase = Phase::Waking;
                    effects.push(Effect::RestoreSandbox);
                } else {
                    next.phase = Phase::Asleep;
                    next.apply(Effect::StopSandbox);
                    effects.push(Effect::StopSandbox);
                }
            }
            To::Recover => {
                let (phase, effect) = if next.snapshot {
                    (Phase::Waking, Effect::RestoreSandbox)
                } else {
                    (Phase::Provisioning, Effect::CreateSandbox)
                };
                next.phase = phase;
                effects.push(effect);
            }
        }
        (next, effects)
    }

    fn go_to_work(&mut self, effects: &mut Vec<Effect>) {
        if !self.runner {
            self.phase = Phase::Reconnecting;
        } else if self.turn {
            self.phase = Phase::Running;
        } else if self.queued > 0 {
            self.phase = Phase::Running;
            self.apply(Effect::StartTurn);
            effects.push(Effect::StartTurn);
        } else {
            self.phase = Phase::Ready;
            effects.push(Effect::ArmIdleTimer);
        }
    }

    /// What an effect changes of the facts, as the `SessionAgent` carries it out.
    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::StartTurn => {
                self.queued = self.queued.saturating_sub(1);
                self.turn = true;
            }
            Effect::StopSandbox | Effect::DestroySandbox => self.runner = false,
            Effect::AbortTurn => self.turn = false,
            Effect::DestroySnapshots => self.snapshot = false,
            Effect::CreateSandbox
            | Effect::RestoreSandbox
            | Effect::ArmIdleTimer
            | Effect::TakeSnapshot
            | Effect::RefusePrompt
            | Effect::RejectRunner => {}
        }
    }

    /// What must hold in each phase; `Err` names the broken rule.
    pub fn check(&self) -> Result<(), &'static str> {
        let Machine {
            phase,
            queued,
            turn,
            runner,
            snapshot,
        } = *self;
        let ok = match phase {
            Phase::Provisioning | Phase::Waking | Phase::Error => !runner && !turn,
            Phase::Ready => runner && !turn && queued == 0,
            Phase::Running => runner && turn,
            Phase::Reconnecting => !runner,
            Phase::Sleeping => !turn,
            Phase::Asleep => snapshot && !runner && !turn && queued == 0,
            Phase::Archived => !runner && !turn && !snapshot,
        };
        if ok {
            Ok(())
        } else {
            Err(match phase {
                Phase::Provisioning | Phase::Waking | Phase::Error => {
                    "no runner and no turn before a sandbox is there"
                }
                Phase::Ready => "ready means a runner, no turn, nothing queued",
                Phase::Running => "running means a runner and a turn",
                Phase::Reconnecting => "reconnecting means no runner",
                Phase::Sleeping => "no turn while sleeping",
                Phase::Asleep => "asleep means a snapshot and nothing else",
                Phase::Archived => "archived keeps nothing but history",
            })
        }
    }
}

impl Phase {
    /// The session's status on the wire: the phase's name, but `ready`, which
    /// clients have always known as `idle`.
    pub fn status(self) -> nightshift_protocol::api::SessionStatus {
        use nightshift_protocol::api::SessionStatus as S;
        match self {
            Phase::Provisioning => S::Provisioning,
            Phase::Ready => S::Idle,
            Phase::Running => S::Running,
            Phase::Reconnecting => S::Reconnecting,
            Phase::Sleeping => S::Sleeping,
            Phase::Asleep => S::Asleep,
            Phase::Waking => S::Waking,
            Phase::Error => S::Error,
            Phase::Archived => S::Archived,
        }
    }
}

/// [`TABLE`] as a Markdown table (ARCHITECTURE.md carries it; a test keeps the two
/// the same).
pub fn table_markdown() -> String {
    let mut out = String::from("| in | on | goes to | does |\n| --- | --- | --- | --- |\n");
    for row in TABLE {
        let to = match row.to {
            To::Stay => "(stays)".to_owned(),
            To::Go(phase) => format!("`{}`", phase.as_str()),
            To::Work => "work".to_owned(),
            To::Rest => "rest".to_owned(),
            To::Recover => "recover".to_owned(),
        };
        let effects: Vec<String> = row.effects.iter().map(snake).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            row.from.as_str(),
            snake(&row.on),
            to,
            effects.join(", ")
        ));
    }
    out
}

fn snake(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

mod observe;
pub use observe::{Observed, observe};

#[cfg(test)]
mod tests;
