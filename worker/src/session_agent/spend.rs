//! The session's spend: the running turn's tokens and cost, written to the ledger
//! at every LLM call and once more when the turn ends, the spend caps checked at
//! each of those steps and before a prompt is queued, and the sandbox's lifetime.
//!
//! The running turn's spend so far lives under one storage key ([`TURN_KEY`]) from
//! dispatch to the turn's end, so an evicted object goes on counting. A step that
//! reaches a cap records `cap_reached` in the turn and aborts it (the runner stops
//! at its next step; the turn ends `aborted`); later prompts are refused with
//! `spend_cap_reached`, naming the cap, until an admin raises it or the period ends.
//! The rules are `nightshift_session::spend`'s.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::agent::TokenUsage;
use nightshift_protocol::events::EventBody;
use nightshift_protocol::usage::SpendCaps;
use nightshift_session::spend::caps::cap_reached;
use nightshift_session::spend::pricing::turn_cost;
use serde::{Deserialize, Serialize};

use super::SessionAgent;
use crate::api_error::{ApiError, ApiResult};
use crate::clock;
use crate::spend::{ledger, report, settings};

/// The storage key of the running turn's spend.
const TURN_KEY: &str = "spend_turn";

/// The running turn's spend so far (the session id is the object's own).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RunningTurn {
    turn_id: String,
    user_id: String,
    model: String,
    started_at: i64,
    usage: TokenUsage,
}

/// A change of the session's sandbox, for its time in the ledger.
#[derive(Debug, Clone, Copy)]
pub enum SandboxTime {
    /// Sandbox `generation` exists (provisioned, restored).
    Started { generation: u64 },
    /// The session's sandbox stopped or was destroyed (slept, archived, deleted).
    Stopped,
}

impl SessionAgent {
    /// A turn started for `user_id`'s prompt on `model`: its spend counts from now.
    pub(super) async fn spend_turn_started(&self, turn_id: &str, user_id: &str, model: &str) {
        let turn = RunningTurn {
            turn_id: turn_id.to_owned(),
            user_id: user_id.to_owned(),
            model: model.to_owned(),
            started_at: clock::now_ms(),
            usage: TokenUsage::default(),
        };
        if let Err(error) = self.state.storage().put(TURN_KEY, &turn).await {
            worker::console_error!("keeping the turn's spend failed: {error}");
        }
    }

    async fn running_turn(&self, turn_id: &str) -> Option<RunningTurn> {
        let turn: Option<RunningTurn> = self.state.storage().get(TURN_KEY).await.ok().flatten();
        turn.filter(|turn| turn.turn_id == turn_id)
    }

    /// One LLM call of `turn_id` used `usage`: counted, written, and the caps
    /// checked; a cap reached stops the turn with `cap_reached`.
    pub(super) async fn spend_on_step(&self, turn_id: &str, usage: TokenUsage) -> ApiResult<()> {
        let Some(mut turn) = self.running_turn(turn_id).await else {
            return Ok(());
        };
        turn.usage.add(usage);
        self.state.storage().put(TURN_KEY, &turn).await?;
        let spend = settings::read(&self.env).await?;
        self.write_turn(&turn, &spend.prices, None).await?;
        let session_id = self.store.record()?.session_id;
        let spent =
            report::spent_so_far(&self.env, &session_id, &turn.user_id, clock::now_ms()).await?;
        let Some(hit) = cap_reached(&spend.caps, &spent) else {
            return Ok(());
        };
        // Only the turn still running is stopped, once.
        let record = self.store.record()?;
        if self.turn_steps(&record).running_turn()?.as_deref() != Some(turn_id)
            || record.abort_requested.is_some()
        {
            return Ok(());
        }
        self.record_event(
            Some(turn_id),
            EventBody::CapReached {
                cap: hit,
                message: hit.message(),
            },
        )?;
        self.abort_running()?;
        self.dispatch().await?;
        self.publish();
        Ok(())
    }

    /// Takes turn `turn_id`'s spend out of storage as it ends, before the next turn
    /// starts counting its own.
    pub(super) async fn spend_take_ended(&self, turn_id: &str) -> Option<RunningTurn> {
        let turn = self.running_turn(turn_id).await?;
        let _ = self.state.storage().delete(TURN_KEY).await;
        Some(turn)
    }

    /// The `turn` taken by [`Self::spend_take_ended`] ended with its own total
    /// `usage`: written as the turn's row.
    pub(super) async fn spend_on_turn_finished(
        &self,
        mut turn: RunningTurn,
        usage: TokenUsage,
        duration_ms: u64,
    ) -> ApiResult<()> {
        // A runner that sums fewer tokens than its steps reported (or none: an
        // aborted OpenCode turn) does not make the steps vanish.
        if usage.total() >= turn.usage.total() {
            turn.usage = usage;
        }
        let spend = settings::read(&self.env).await?;
        self.write_turn(&turn, &spend.prices, Some(duration_ms))
            .await
    }

    async fn write_turn(
        &self,
        turn: &RunningTurn,
        prices: &[nightshift_protocol::usage::ModelPrice],
        finished: Option<u64>,
    ) -> ApiResult<()> {
        let record = self.store.record()?;
        let row = ledger::TurnSpend {
            turn_id: turn.turn_id.clone(),
            session_id: record.session_id,
            user_id: turn.user_id.clone(),
            model: turn.model.clone(),
            started_at: turn.started_at,
            usage: turn.usage,
            cost_micro_usd: turn_cost(&turn.model, &turn.usage, prices),
            duration_ms: finished.unwrap_or(0),
        };
        ledger::write_turn(&self.env, &row, finished.is_some()).await
    }

    /// Refuses a prompt from `user_id` while a spend cap in `caps` is reached
    /// (`spend_cap_reached`, naming the cap). No cap set: no D1 read.
    pub(super) async fn spend_check_prompt(
        &self,
        user_id: &str,
        caps: &SpendCaps,
    ) -> ApiResult<()> {
        if *caps == SpendCaps::default() {
            return Ok(());
        }
        let session_id = self.store.record()?.session_id;
        let spent = report::spent_so_far(&self.env, &session_id, user_id, clock::now_ms()).await?;
        match cap_reached(caps, &spent) {
            Some(hit) => Err(ApiError::new(ErrorCode::SpendCapReached, hit.message())),
            None => Ok(()),
        }
    }

    /// Records a change of the session's sandbox in the ledger, in the background.
    /// The one call the sandbox's lifecycle makes for its time to be counted.
    pub(super) fn sandbox_time(&self, change: SandboxTime) {
        let Ok(record) = self.store.record() else {
            return;
        };
        if record.session_id.is_empty() {
            return;
        }
        let env = self.env.clone();
        let now = clock::now_ms();
        self.state.wait_until(async move {
            let written = match change {
                SandboxTime::Started { generation } => {
                    ledger::sandbox_started(
                        &env,
                        &record.session_id,
                        generation,
                        &record.owner_id,
                        now,
                    )
                    .await
                }
                SandboxTime::Stopped => {
                    ledger::sandbox_stopped(&env, &record.session_id, now).await
                }
            };
            if let Err(error) = written {
                worker::console_warn!("recording sandbox time failed: {}", error.message);
            }
        });
    }
}
