//! Requesting the session's sandbox from the sandbox backend, which starts a runner
//! in it that dials back with a session-scoped token.
//!
//! Requested while the state machine is `provisioning`: when the session is
//! initialized, and again when a prompt recovers it from a failed request (or one in
//! flight for too long to still be alive); never once it is archived or deleted,
//! which destroy it (and an asleep session's snapshot, its stopped sandbox). Waking
//! from a snapshot is `sleep`'s. A failure is recorded as the sandbox's state, so the status becomes
//! `error` with the backend's reason, and told in the event stream.

use std::collections::BTreeMap;

use nightshift_protocol::events::EventBody;
use nightshift_protocol::sandbox::{
    CreateSandboxRequest, GatewayLaunch, NetworkMode, RunnerLaunch, Sandbox, SandboxStatus,
};
use nightshift_session::lifecycle::SandboxState;
use nightshift_session::session_machine::Phase;
use nightshift_session::turns::ArchiveStep;
use worker::{Response, Result};

use super::SessionAgent;
use crate::{clock, sandbox_client};

/// A request still unanswered after this long is assumed lost (the object that made
/// it was restarted), so a new one may be made.
const STALE_REQUEST_MS: i64 = 2 * 60 * 1000;

/// The label that ties a sandbox to its session.
const SESSION_LABEL: &str = "nightshift.session";

impl SessionAgent {
    /// Requests the sandbox if there is none and no request is in flight.
    pub(super) async fn provision(&self) -> Result<()> {
        let mut record = self.store.record()?;
        let now = clock::now_ms();
        if !record.initialized
            || record.machine.phase != Phase::Provisioning
            || record.deleted
            || record.archived_at.is_some()
            || !record.sandbox.should_request(now, STALE_REQUEST_MS)
            || self.current_runner(&record).is_some()
        {
            return Ok(());
        }
        let Some(worker_url) = record.worker_url.clone() else {
            return Ok(());
        };
        record.sandbox = SandboxState::Requested { requested_at: now };
        self.store.save_record(&record)?;
        self.refresh_status()?;

        let outcome = self.request_sandbox(&record.session_id, &worker_url).await;

        // Read again: the runner may have said hello while the backend answered.
        let mut record = self.store.record()?;
        if record.deleted || record.archived_at.is_some() {
            // Deleted or archived while the backend was creating it: it goes too.
            if let Ok(sandbox) = outcome
                && let Err(error) = sandbox_client::destroy_sandbox(&self.env, &sandbox.id).await
            {
                worker::console_warn!("{error}");
            }
            return Ok(());
        }
        record.sandbox = match outcome {
            Ok(sandbox) => {
                self.sandbox_time(super::spend::SandboxTime::Started {
                    generation: record.sandbox_generation,
                });
                SandboxState::Created {
                    sandbox_id: sandbox.id,
                }
            }
            Err(reason) => {
                worker::console_warn!("session {}: {reason}", record.session_id);
                self.record_event(
                    None,
                    EventBody::Error {
                        message: reason.clone(),
                    },
                )?;
                SandboxState::Failed { reason }
            }
        };
        self.store.save_record(&record)?;
        self.refresh_status()?;
        Ok(())
    }

    /// `DELETE /`: deletes the session. Its runner's token stops working (the
    /// generation moves past it), its runner link closes, its sandbox is destroyed,
    /// and its prompts and events are wiped; a tombstone stays so that nothing is
    /// provisioned again.
    pub(super) async fn delete_session(&self) -> crate::api_error::ApiResult<Response> {
        let record = self.store.record()?;
        // An asleep session's stopped sandbox is its snapshot: it goes too.
        let sandbox = record
            .sandbox
            .sandbox_id()
            .or(record
                .snapshot
                .as_ref()
                .map(|kept| kept.sandbox_id.as_str()))
            .map(str::to_owned);
        self.store.wipe(record.sandbox_generation + 1)?;
        self.close_runner_sockets("the session was deleted");
        let _ = self.subscribers.close_all();
        let _ = self.state.storage().delete_alarm().await;
        if let Some(sandbox) = sandbox
            && let Err(error) = sandbox_client::destroy_sandbox(&self.env, &sandbox).await
        {
            // The backend's idle timeout still ends it; the session is gone either way.
            worker::console_warn!("{error}");
        }
        Ok(crate::api_error::json(
            200,
            &serde_json::json!({ "deleted": true }),
        ))
    }

    /// `POST /archive`: archives the session (see `nightshift_session::turns`'
    /// `archive` step): a running turn ends, the runner's link closes with its token
    /// dead, the sandbox is destroyed, and the history stays. Archiving again
    /// answers the first archive's time.
    pub(super) async fn archive_session(&self) -> crate::api_error::ApiResult<Response> {
        let record = self.store.record()?;
        if !record.initialized || record.deleted {
            return Err(crate::api_error::ApiError::not_found("no such session"));
        }
        let step = self.steps(|steps| steps.archive())?;
        if let ArchiveStep::Archived { sandbox_id } = step {
            self.close_runner_sockets("the session was archived");
            self.sandbox_time(super::spend::SandboxTime::Stopped);
            if let Some(sandbox) = sandbox_id
                && let Err(error) = sandbox_client::destroy_sandbox(&self.env, &sandbox).await
            {
                // The backend's idle timeout still ends it; the runner's token is
                // already dead, so it cannot act for the session meanwhile.
                worker::console_warn!("{error}");
            }
            // An asleep session's snapshot is its stopped sandbox, named by the
            // step: destroying it leaves no directory, container or image behind.
            self.publish();
        }
        let archived_at = self.store.record()?.archived_at;
        Ok(crate::api_error::json(
            200,
            &serde_json::json!({ "archived_at": archived_at }),
        ))
    }

    async fn request_sandbox(
        &self,
        session_id: &str,
        worker_url: &str,
    ) -> std::result::Result<Sandbox, String> {
        let (token, _) = self.issue_token(session_id).ok_or_else(|| {
            "RUNNER_TOKEN_SECRET is not set (or too short), so no runner can connect".to_owned()
        })?;
        // Every session's sandbox runs its gateway (unless `WORKSPACE_PANELS=false`),
        // keyed with the session's derived key only: the sandbox never holds the
        // deployment secret.
        let panels = crate::config::var(&self.env, "WORKSPACE_PANELS").as_deref() != Some("false");
        let secret = crate::config::deployment_secret(&self.env)?;
        let gateway_key = nightshift_session::gateway_token::derive_session_key_hex(
            secret.as_bytes(),
            session_id,
        )
        .map_err(|error| format!("no gateway key for this session: {error}"))?;
        let request = CreateSandboxRequest {
            labels: BTreeMap::from([(SESSION_LABEL.to_owned(), session_id.to_owned())]),
            // A session's sandbox reaches the public internet only: never this
            // host's loopback, the deployment's private network or other sessions.
            network: Some(NetworkMode::Isolated),
            runner: Some(RunnerLaunch {
                worker_url: worker_url.to_owned(),
                session_id: session_id.to_owned(),
                token: token.into(),
            }),
            gateway: panels.then(|| GatewayLaunch {
                session: session_id.to_owned(),
                key: gateway_key.into(),
            }),
            // A fork's sandbox starts from its parent's checkpoint.
            from_checkpoint: self
                .store
                .record()
                .ok()
                .and_then(|record| record.from_checkpoint),
            ..CreateSandboxRequest::default()
        };
        let sandbox = sandbox_client::create_sandbox(&self.env, &request).await?;
        if sandbox.status == SandboxStatus::Error {
            let reason = sandbox
                .error
                .unwrap_or_else(|| "no reason given".to_owned());
            return Err(format!(
                "the sandbox backend could not start sandbox {}: {reason}",
                sandbox.id
            ));
        }
        Ok(sandbox)
    }
}
