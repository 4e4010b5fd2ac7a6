//! Going back to a finished turn, or starting a new session from one: which
//! checkpoint and how much of the conversation that means, who is refused and why,
//! and what the session records once the sandbox's files are back.

use nightshift_protocol::events::EventBody;

use super::TurnSteps;
use crate::store::checkpoints::KEPT;
use crate::store::{Sql, TurnCheckpoint};

/// Why a rewind or fork to a turn cannot be done (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewindRefusal {
    /// A turn is running (rewind only): its events and files would be cut mid-way.
    TurnRunning,
    /// No finished turn of this session has that id.
    UnknownTurn,
    /// The turn was itself set aside by an earlier rewind.
    Rewound,
    /// The turn has no checkpoint to go back to (still being taken, or it failed).
    NoCheckpoint { why: String },
}

impl RewindRefusal {
    pub fn message(&self, turn_id: &str) -> String {
        match self {
            RewindRefusal::TurnRunning => {
                "a turn is running; abort it or wait for it to end before rewinding".into()
            }
            RewindRefusal::UnknownTurn => format!("this session has no finished turn {turn_id:?}"),
            RewindRefusal::Rewound => {
                format!("turn {turn_id} was rewound; go back to a turn before it instead")
            }
            RewindRefusal::NoCheckpoint { why } => {
                format!("turn {turn_id} has no checkpoint to go back to: {why}")
            }
        }
    }
}

/// What going back to a turn takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewindPlan {
    pub turn_id: String,
    /// The sandbox that holds the checkpoint.
    pub sandbox_id: String,
    pub checkpoint_id: String,
    /// The conversation's entries `[0, conversation_len)` are that turn's.
    pub conversation_len: u64,
    /// The turns after it, which a rewind sets aside.
    pub later_turns: Vec<String>,
}

impl<S: Sql> TurnSteps<'_, S> {
    /// What rewinding to `turn_id` takes, or why it cannot be done.
    pub fn plan_rewind(
        &self,
        turn_id: &str,
    ) -> Result<Result<RewindPlan, RewindRefusal>, S::Error> {
        if self.store.queue()?.processing().is_some() {
            return Ok(Err(RewindRefusal::TurnRunning));
        }
        self.plan(turn_id)
    }

    /// What forking from `turn_id` takes (a running turn does not matter: the
    /// checkpoint was taken when that earlier turn ended).
    pub fn plan_fork(&self, turn_id: &str) -> Result<Result<RewindPlan, RewindRefusal>, S::Error> {
        self.plan(turn_id)
    }

    fn plan(&self, turn_id: &str) -> Result<Result<RewindPlan, RewindRefusal>, S::Error> {
        let Some(turn) = self.store.turn_checkpoint(turn_id)? else {
            return Ok(Err(RewindRefusal::UnknownTurn));
        };
        if turn.rewound {
            return Ok(Err(RewindRefusal::Rewound));
        }
        let (Some(sandbox_id), Some(checkpoint_id)) = (&turn.sandbox_id, &turn.checkpoint_id)
        else {
            return Ok(Err(no_checkpoint(&turn)));
        };
        if turn.state != KEPT {
            return Ok(Err(no_checkpoint(&turn)));
        }
        let later_turns = self
            .store
            .turns_after(&turn)?
            .into_iter()
            .map(|later| later.turn_id)
            .collect();
        Ok(Ok(RewindPlan {
            turn_id: turn.turn_id.clone(),
            sandbox_id: sandbox_id.clone(),
            checkpoint_id: checkpoint_id.clone(),
            conversation_len: turn.conversation_len,
            later_turns,
        }))
    }

    /// After the sandbox's files are back: the conversation goes back to the turn
    /// (later entries set aside), later turns are marked rewound, and a `rewound`
    /// event says so.
    pub fn apply_rewind(&mut self, plan: &RewindPlan) -> Result<(), S::Error> {
        self.store
            .rewind_conversation(plan.conversation_len, self.now)?;
        for later in &plan.later_turns {
            self.store.mark_rewound(later)?;
        }
        self.record_event(
            Some(&plan.turn_id),
            EventBody::Rewound {
                rewound_turns: plan.later_turns.clone(),
            },
        )?;
        Ok(())
    }
}

fn no_checkpoint(turn: &TurnCheckpoint) -> RewindRefusal {
    let why = match turn.state.as_str() {
        "pending" => "it is still being taken".to_string(),
        _ => turn
            .error
            .clone()
            .unwrap_or_else(|| "it could not be taken".into()),
    };
    RewindRefusal::NoCheckpoint { why }
}
