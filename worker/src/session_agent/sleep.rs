//! Sleep and wake: the effects of the session's state machine that reach the
//! sandbox backend, carried out here.
//!
//! A session `ready` for its sleep time, with no panel grant open, sleeps at its alarm
//! (`nightshift_session::lifecycle::sleep_step`): the machine takes `idle_timeout`
//! (`take_snapshot`), the backend stops the sandbox with its files kept
//! (`POST /v1/sandboxes/{id}/sleep`, which answers the snapshot record), and the
//! machine takes `snapshot_saved` (`stop_sandbox`: the runner's token is retired and
//! its link closed) or `snapshot_failed`. A prompt, a panel grant or
//! `POST /api/sessions/{id}/wake` wakes it: the machine's `restore_sandbox` becomes
//! `POST /v1/sandboxes/{id}/wake` with a new runner token; a failure is recorded as
//! the sandbox's failure, which the machine sees as `sandbox_failed` (`error`, the
//! queued prompts kept; the next prompt or wake tries the restore again).
//!
//! The sleep time is the owner's own clamped to the team's maximum, defaulting to
//! the deployment's `SESSION_SLEEP_AFTER_MS` (15 minutes; 0 turns sleep off for the
//! whole deployment): `nightshift_session::sleep_time`. The object keeps the owner's
//! time and the team's maximum in its storage rather than reading D1 when idle
//! begins: a turn's end and the alarm stay free of D1, a prompt's path never meets
//! it, and the object holds one copy that only changes when D1 does. It is read at
//! creation and with every access reload (`super::access`, the same statement as
//! the owner), and the Worker sends that reload to every live session a change
//! concerns before the change is answered (`crate::sleep_settings`), after which
//! the alarm is set again: a shorter time takes effect at once, a longer one when
//! the alarm next rings early and finds nothing to do. A session created before
//! sleep times existed uses the deployment's default until its first reload.

use nightshift_protocol::events::EventBody;
use nightshift_protocol::sandbox::{RunnerLaunch, WakeSandboxRequest};
use nightshift_session::lifecycle::{SandboxState, SleepStep, sleep_step};
use nightshift_session::session_machine::{Effect, Input, Phase};
use worker::{Response, Result};

use super::SessionAgent;
use super::storage::SessionRecord;
use crate::api_error::{ApiResult, json};
use crate::{clock, sandbox_client};

/// The `meta` prefix of panel grants (see `panels`).
const GRANT_PREFIX: &str = "panel:";

/// A restore still unanswered after this long is assumed lost.
const STALE_WAKE_MS: i64 = 2 * 60 * 1000;

impl SessionAgent {
    /// The effective sleep time (ms; 0: never).
    fn sleep_after_ms(&self) -> Result<i64> {
        let deployment = crate::sleep_settings::deployment_ms(&self.env);
        Ok(self
            .store
            .sleep_time()?
            .map_or(deployment, |sleep| sleep.effective_ms(deployment)))
    }

    /// What the alarm should do about sleep now.
    fn sleep_now(&self, record: &SessionRecord) -> Result<SleepStep> {
        if record.machine.phase != Phase::Ready {
            return Ok(SleepStep::Never);
        }
        let panel_open_until = self
            .store
            .latest_meta_expiry(GRANT_PREFIX)?
            .map(|secs| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        Ok(sleep_step(
            record.idle_since,
            self.sleep_after_ms()?,
            panel_open_until,
            clock::now_ms(),
        ))
    }

    /// When the alarm must ring for sleep, for `schedule_alarm`.
    pub(super) fn sleep_deadline(&self, record: &SessionRecord) -> Result<Option<i64>> {
        Ok(match self.sleep_now(record)? {
            SleepStep::Never => None,
            SleepStep::At(at) => Some(at),
            SleepStep::Now => Some(clock::now_ms()),
        })
    }

    /// The alarm's part in sleep: puts the session to sleep when its time has come.
    pub(super) async fn settle_sleep(&self) -> Result<()> {
        let record = self.store.record()?;
        if self.sleep_now(&record)? != SleepStep::Now {
            return Ok(());
        }
        let Some(sandbox_id) = record.sandbox.sandbox_id().map(str::to_owned) else {
            return Ok(());
        };
        let effects = self.steps(|steps| steps.step_machine(Input::IdleTimeout))?;
        self.publish();
        if !effects.contains(&Effect::TakeSnapshot) {
            return Ok(());
        }
        let outcome = sandbox_client::sleep_sandbox(&self.env, &sandbox_id).await;
        let mut record = self.store.record()?;
        if record.machine.phase != Phase::Sleeping {
            // Archived or deleted meanwhile; what they do covers the sandbox.
            return Ok(());
        }
        let input = match outcome {
            Ok(snapshot) => {
                record.snapshot = Some(snapshot);
                self.store.save_record(&record)?;
                // An asleep sandbox does not run: its time stops counting.
                self.sandbox_time(super::spend::SandboxTime::Stopped);
                Input::SnapshotSaved
            }
            Err(reason) => {
                worker::console_warn!("session {}: {reason}", record.session_id);
                self.record_event(None, EventBody::Error { message: reason })?;
                Input::SnapshotFailed
            }
        };
        let effects = self.steps(|steps| steps.step_machine(input))?;
        if effects.contains(&Effect::StopSandbox) {
            self.retire_runner("the session went to sleep")?;
        }
        self.carry_out_sandbox_work().await?;
        self.dispatch().await?;
        self.publish();
        Ok(())
    }

    /// Moves the sandbox generation past the sleeping runner's token and closes its
    /// link: a woken sandbox's runner gets a new token.
    fn retire_runner(&self, why: &str) -> Result<()> {
        let mut record = self.store.record()?;
        record.sandbox_generation += 1;
        record.runner_connection = None;
        // The stopped sandbox is the snapshot now (`record.snapshot` names it).
        record.sandbox = SandboxState::NotRequested;
        self.store.save_record(&record)?;
        self.close_runner_sockets(why);
        self.refresh_status()?;
        Ok(())
    }

    /// `POST /wake`, and a panel being opened: wakes an asleep session (or retries a
    /// failed one); a session awake only has its idle time start again.
    pub(super) async fn request_wake(&self) -> Result<()> {
        self.steps(|steps| steps.step_machine(Input::WakeRequested))?;
        self.carry_out_sandbox_work().await?;
        self.dispatch().await?;
        self.publish();
        Ok(())
    }

    /// `POST /wake`: answers the status after the request.
    pub(super) async fn wake(&self) -> ApiResult<Response> {
        self.request_wake().await?;
        let record = self.store.record()?;
        Ok(json(200, &serde_json::json!({ "status": record.status })))
    }

    /// What the machine's phase asks of the backend: a sandbox created
    /// (`provisioning`) or restored (`waking`), unless a request is in flight.
    pub(super) async fn carry_out_sandbox_work(&self) -> Result<()> {
        match self.store.record()?.machine.phase {
            Phase::Waking => self.restore().await,
            Phase::Provisioning | Phase::Error => self.provision().await,
            _ => Ok(()),
        }
    }

    /// Restores the sandbox the session slept in.
    async fn restore(&self) -> Result<()> {
        let mut record = self.store.record()?;
        let now = clock::now_ms();
        // Asleep, the sandbox is forgotten (`NotRequested`); `Created` is a restore
        // that answered (the runner is on its way), `Requested` one in flight.
        if record.deleted
            || record.archived_at.is_some()
            || !record.sandbox.should_request(now, STALE_WAKE_MS)
        {
            return Ok(());
        }
        let Some(kept) = record.snapshot.clone() else {
            self.fail_restore("there is no snapshot of this session's sandbox to wake from")?;
            return Ok(());
        };
        let Some(worker_url) = record.worker_url.clone() else {
            return Ok(());
        };
        record.sandbox = SandboxState::Requested { requested_at: now };
        self.store.save_record(&record)?;
        let Some((token, _)) = self.issue_token(&record.session_id) else {
            self.fail_restore(
                "RUNNER_TOKEN_SECRET is not set (or too short), so no runner can connect",
            )?;
            return Ok(());
        };
        let request = WakeSandboxRequest {
            runner: Some(RunnerLaunch {
                worker_url,
                session_id: record.session_id.clone(),
                token: token.into(),
            }),
        };
        let outcome = sandbox_client::wake_sandbox(&self.env, &kept.sandbox_id, &request).await;
        let mut record = self.store.record()?;
        if record.deleted || record.archived_at.is_some() {
            return Ok(());
        }
        match outcome {
            Ok(sandbox) => {
                self.sandbox_time(super::spend::SandboxTime::Started {
                    generation: record.sandbox_generation,
                });
                record.sandbox = SandboxState::Created {
                    sandbox_id: sandbox.id,
                };
                self.store.save_record(&record)?;
                self.refresh_status()?;
            }
            Err(reason) => self.fail_restore(&reason)?,
        }
        Ok(())
    }

    fn fail_restore(&self, reason: &str) -> Result<()> {
        let mut record = self.store.record()?;
        worker::console_warn!("session {}: {reason}", record.session_id);
        record.sandbox = SandboxState::Failed {
            reason: reason.to_owned(),
        };
        self.store.save_record(&record)?;
        self.record_event(
            None,
            EventBody::Error {
                message: reason.to_owned(),
            },
        )?;
        self.refresh_status()?;
        Ok(())
    }
}
