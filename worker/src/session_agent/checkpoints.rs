//! Checkpoints after turns, and rewinds. The rules (which turn may be gone back
//! to, what a rewind changes) are `nightshift_session::turns::rewind` and
//! `store::checkpoints`; this file makes the backend calls around them.
//!
//! - After a turn ends (done, failed or aborted) the store holds a pending
//!   checkpoint for it; the next [`SessionAgent::dispatch`] first asks the backend
//!   for it (`POST /v1/sandboxes/{id}/checkpoints`), so the next prompt waits for it
//!   and the turn's own events never do. It is recorded kept (with a
//!   `checkpoint_saved` event) or failed (with an `error` event, unless the provider
//!   keeps no checkpoints at all); either way the queue moves on.
//! - `POST /rewind`: the checkpoint of the turn is restored (the backend stops the
//!   sandbox, restores and starts it, so a new runner starts and reads the
//!   conversation back), then the conversation is cut back and later turns are
//!   marked rewound. No prompt is dispatched while the files are being saved or
//!   restored (`files_busy`).
//! - `POST /fork-source`: what a new session forked from a turn starts with; the
//!   fork's own `/init` writes the conversation and keeps the checkpoint for its
//!   first sandbox (`routes/fork.rs` makes the new session).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::checkpoints::{
    CheckpointSource, RewindResponse, TurnRequest, valid_turn_id,
};
use nightshift_protocol::conversation::MAX_CONVERSATION_WRITE_ENTRIES;
use nightshift_protocol::events::EventBody;
use nightshift_session::turns::RewindRefusal;
use worker::{Request, Response};

use super::SessionAgent;
use super::storage::SessionRecord;
use crate::api_error::{ApiError, ApiResult, json};
use crate::body;
use crate::internal::{ForkInit, ForkSource};
use crate::sandbox_client::{self, CheckpointFailure};

/// Pending checkpoints settled per dispatch (more than one only after a restart).
const MAX_SETTLED: usize = 4;
/// How long a rewind waits for a checkpoint being taken, and how often it looks.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(15);
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(200);

impl SessionAgent {
    /// Takes the checkpoints of turns that ended. Returns whether the queue may move
    /// on (false while another call is saving or restoring the files).
    pub(super) async fn settle_checkpoints(&self) -> worker::Result<bool> {
        for _ in 0..MAX_SETTLED {
            if self.files_busy.get() {
                return Ok(false);
            }
            let Some(pending) = self.store.pending_checkpoint()? else {
                return Ok(true);
            };
            let record = self.store.record()?;
            let Some(sandbox_id) = record.sandbox.sandbox_id().map(str::to_owned) else {
                self.store
                    .checkpoint_failed(&pending.turn_id, "the session had no sandbox")?;
                continue;
            };
            self.files_busy.set(true);
            let taken = sandbox_client::take_checkpoint(&self.env, &sandbox_id).await;
            self.files_busy.set(false);
            let turn = Some(pending.turn_id.as_str());
            match taken {
                Ok(taken) => {
                    self.store
                        .checkpoint_kept(&pending.turn_id, &sandbox_id, &taken.id)?;
                    self.record_event(
                        turn,
                        EventBody::CheckpointSaved {
                            checkpoint_id: taken.id,
                            files: taken.files,
                            bytes_added: taken.bytes_added,
                            ms: taken.ms,
                        },
                    )?;
                }
                Err(CheckpointFailure::Unsupported) => self.store.checkpoint_failed(
                    &pending.turn_id,
                    "the sandbox's provider keeps no checkpoints",
                )?,
                Err(CheckpointFailure::Failed(error)) => {
                    self.store.checkpoint_failed(&pending.turn_id, &error)?;
                    self.record_event(
                        turn,
                        EventBody::Error {
                            message: format!(
                                "The files of this turn could not be kept, so the session cannot \
                                 be rewound or forked to it: {error}"
                            ),
                        },
                    )?;
                }
            }
        }
        Ok(self.store.pending_checkpoint()?.is_none())
    }

    /// `POST /rewind` ([`TurnRequest`]).
    pub(super) async fn rewind(&self, req: &mut Request) -> ApiResult<Response> {
        let TurnRequest { turn } = body::read_json(req).await?;
        if !valid_turn_id(&turn) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "`turn` is not a turn id",
            ));
        }
        // The last turn's checkpoint is usually being taken right after it ended:
        // wait for it a little rather than refuse.
        let mut waited = std::time::Duration::ZERO;
        while self.files_busy.get() && waited < BUSY_WAIT {
            worker::Delay::from(BUSY_POLL).await;
            waited += BUSY_POLL;
        }
        if !self.settle_checkpoints().await? {
            return Err(ApiError::new(
                ErrorCode::TurnRunning,
                "the session's files are being saved or restored; try again in a moment",
            ));
        }
        let record = self.store.record()?;
        let plan = self
            .turn_steps(&record)
            .plan_rewind(&turn)?
            .map_err(|refusal| refused(&turn, &refusal))?;
        kept_in_current_sandbox(&record, &plan.sandbox_id, &turn)?;
        self.files_busy.set(true);
        let restored =
            sandbox_client::restore_checkpoint(&self.env, &plan.sandbox_id, &plan.checkpoint_id)
                .await;
        self.files_busy.set(false);
        if let Err(failure) = restored {
            let message = match failure {
                CheckpointFailure::Unsupported => {
                    "the sandbox's provider keeps no checkpoints".into()
                }
                CheckpointFailure::Failed(error) => error,
            };
            return Err(ApiError::new(
                ErrorCode::SandboxUnavailable,
                format!("the files of turn {turn} could not be restored: {message}"),
            ));
        }
        self.steps(|steps| steps.apply_rewind(&plan))?;
        self.dispatch().await?;
        self.publish();
        Ok(json(
            200,
            &RewindResponse {
                turn_id: plan.turn_id,
                rewound_turns: plan.later_turns,
            },
        ))
    }
}

impl SessionAgent {
    /// `POST /fork-source` ([`TurnRequest`]): what a new session forked from the
    /// turn starts with (its checkpoint, the conversation up to it, the settings).
    pub(super) async fn fork_source(&self, req: &mut Request) -> ApiResult<Response> {
        let TurnRequest { turn } = body::read_json(req).await?;
        if !valid_turn_id(&turn) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "`turn` is not a turn id",
            ));
        }
        let record = self.store.record()?;
        if !record.initialized || record.deleted {
            return Err(ApiError::not_found("no such session"));
        }
        let plan = self
            .turn_steps(&record)
            .plan_fork(&turn)?
            .map_err(|refusal| refused(&turn, &refusal))?;
        kept_in_current_sandbox(&record, &plan.sandbox_id, &turn)?;
        let mut conversation = Vec::new();
        let mut from = 0;
        while from < plan.conversation_len {
            let page = self.store.read_conversation(from)?;
            let Some(next) = page.next.or(Some(page.stored)) else {
                break;
            };
            conversation.extend(page.entries);
            if next <= from {
                break;
            }
            from = next;
        }
        conversation.truncate(usize::try_from(plan.conversation_len).unwrap_or(usize::MAX));
        Ok(json(
            200,
            &ForkSource {
                title: record.title.clone(),
                agent: record.agent,
                model: record.model.clone(),
                permission_mode: record.permission_mode,
                repo: record.repo.clone(),
                fork: ForkInit {
                    from_checkpoint: CheckpointSource {
                        sandbox: plan.sandbox_id,
                        checkpoint: plan.checkpoint_id,
                    },
                    conversation,
                },
            },
        ))
    }

    /// At `/init` of a fork: its conversation is its parent's up to the turn, and
    /// its first sandbox will start from the parent's checkpoint.
    pub(super) fn start_fork(&self, record: &mut SessionRecord, fork: &ForkInit) -> ApiResult<()> {
        for (index, chunk) in fork
            .conversation
            .chunks(MAX_CONVERSATION_WRITE_ENTRIES)
            .enumerate()
        {
            let from = (index * MAX_CONVERSATION_WRITE_ENTRIES) as u64;
            if let Err(refusal) = self.store.write_conversation(from, chunk)? {
                return Err(ApiError::new(ErrorCode::InvalidRequest, refusal.message()));
            }
        }
        record.from_checkpoint = Some(fork.from_checkpoint.clone());
        Ok(())
    }
}

/// A refusal as the caller hears it (stable codes: docs/API.md).
pub(super) fn refused(turn: &str, refusal: &RewindRefusal) -> ApiError {
    let code = match refusal {
        RewindRefusal::TurnRunning => ErrorCode::TurnRunning,
        RewindRefusal::UnknownTurn => ErrorCode::NotFound,
        RewindRefusal::Rewound | RewindRefusal::NoCheckpoint { .. } => ErrorCode::NoCheckpoint,
    };
    ApiError::new(code, refusal.message(turn))
}

/// A turn's checkpoint is usable only in the sandbox it was taken in, while the
/// session still has that sandbox (not after it was replaced); an asleep session
/// still has its stopped one.
fn kept_in_current_sandbox(record: &SessionRecord, sandbox_id: &str, turn: &str) -> ApiResult<()> {
    if record.files_sandbox_id() == Some(sandbox_id) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::NoCheckpoint,
            format!(
                "the checkpoint of turn {turn} was kept in a sandbox the session no longer has"
            ),
        ))
    }
}
