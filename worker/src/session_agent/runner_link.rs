//! The runner's WebSocket (frames in `nightshift_protocol::runner_link`), accepted
//! with the hibernation API so the object can sleep while the link idles.
//!
//! Per-socket state lives in the socket's attachment ([`RunnerAttachment`]), which
//! survives hibernation: the connection number, the sandbox generation its token was
//! issued for, the epoch once the runner said hello, when its current token expires
//! and when it was last heard from. A session has one runner at a time, and the link
//! belongs to the first live connection (`nightshift_session::runner_intake::admit`):
//! a newcomer is refused with 409 `runner_link_taken` while the holder is live, and
//! replaces it once the holder is closed or silent for `RUNNER_SILENT_AFTER_MS`. A
//! token issued for an earlier sandbox (an older generation) is refused with 401.
//! Tokens are renewed, past half their life, only to the connection holding the link.
//!
//! Exactly-once intake of events follows `nightshift_session::event_log`: a frame is
//! new, a resend (acknowledged again, not stored), or out of order (the link is
//! restarted so the runner resends from what is stored). Intake also enforces the
//! event size and rate limits of `nightshift_session::runner_intake`.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::events::EventBody;
use nightshift_protocol::repo::RepoState;
use nightshift_protocol::runner_link::{RunnerFrame, SessionFrame};
use nightshift_session::event_log::{RunnerIntake, classify_runner_event, welcome_acked};
use nightshift_session::repo_intake::{RepoIntake, repo_intake};
use nightshift_session::runner_intake::{Admission, Holder, admit, check_event_size};
use nightshift_session::runner_token::needs_renewal;
use serde::{Deserialize, Serialize};
use worker::{Request, Response, Result, WebSocket, WebSocketIncomingMessage, WebSocketPair};

use super::SessionAgent;
use super::storage::SessionRecord;
use crate::api_error::{ApiError, ApiResult};
use crate::internal::{TOKEN_EXPIRES_HEADER, TOKEN_GENERATION_HEADER};
use crate::{clock, config};

/// The hibernation tag of runner sockets.
const RUNNER_TAG: &str = "runner";

/// Close codes the runner may see.
const CLOSE_REPLACED: u16 = 4000;
const CLOSE_WRONG_SESSION: u16 = 4003;
const CLOSE_PROTOCOL: u16 = 4008;
const CLOSE_OUT_OF_ORDER: u16 = 4009;
const CLOSE_SANDBOX_REPLACED: u16 = 4010;
const CLOSE_RATE: u16 = 4029;

/// What the object remembers about one runner socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RunnerAttachment {
    pub connection: u64,
    /// Set by the runner's hello.
    pub epoch: Option<String>,
    /// When the token the runner holds expires (Unix seconds).
    pub token_expires_at: u64,
    /// The sandbox generation its token was issued for.
    #[serde(default)]
    pub generation: u64,
    /// When it connected or last sent a frame (ms).
    #[serde(default)]
    pub last_seen_ms: i64,
}

impl SessionAgent {
    /// The newest runner socket, once its runner has said hello.
    /// Closes every WebSocket of this object (the runner's links), saying `why`.
    pub(super) fn close_runner_sockets(&self, why: &str) {
        for socket in self.state.get_websockets() {
            let _ = socket.close(Some(1000), Some(why));
        }
    }

    pub(super) fn current_runner(
        &self,
        record: &SessionRecord,
    ) -> Option<(WebSocket, RunnerAttachment)> {
        let current = record.runner_connection?;
        self.state
            .get_websockets_with_tag(RUNNER_TAG)
            .into_iter()
            .find_map(|socket| {
                let attachment: RunnerAttachment =
                    socket.deserialize_attachment().ok().flatten()?;
                (attachment.connection == current && attachment.epoch.is_some())
                    .then_some((socket, attachment))
            })
    }

    /// The socket holding the link (said hello or not) and its attachment.
    fn link_holder(&self, record: &SessionRecord) -> Option<(WebSocket, RunnerAttachment)> {
        let current = record.runner_connection?;
        self.state
            .get_websockets_with_tag(RUNNER_TAG)
            .into_iter()
            .find_map(|socket| {
                let attachment: RunnerAttachment =
                    socket.deserialize_attachment().ok().flatten()?;
                (attachment.connection == current).then_some((socket, attachment))
            })
    }

    /// `GET /runner`: accepts the upgrade the Worker forwarded after checking the
    /// token's signature, session and expiry; here its sandbox generation is checked
    /// and a live connection keeps the link.
    pub(super) async fn accept_runner(&self, req: &Request) -> ApiResult<Response> {
        let header_number = |name: &str| -> Option<u64> {
            req.headers()
                .get(name)
                .ok()
                .flatten()
                .and_then(|value| value.parse().ok())
        };
        let token_expires_at = header_number(TOKEN_EXPIRES_HEADER).unwrap_or(0);
        let Some(generation) = header_number(TOKEN_GENERATION_HEADER) else {
            return Err(ApiError::new(
                ErrorCode::InvalidRunnerToken,
                "the runner token names no sandbox generation",
            ));
        };
        let mut record = self.store.record()?;
        if generation != record.sandbox_generation {
            return Err(ApiError::new(
                ErrorCode::InvalidRunnerToken,
                "the token was issued for a sandbox this session no longer has",
            ));
        }
        let now = clock::now_ms();
        let holder = self.link_holder(&record).map(|(_, attachment)| Holder {
            last_seen_ms: attachment.last_seen_ms,
        });
        if admit(holder, now, config::runner_silent_after_ms(&self.env)) == Admission::Refuse {
            return Err(ApiError::new(
                ErrorCode::RunnerLinkTaken,
                "a live runner connection holds this session's link",
            ));
        }
        for older in self.state.get_websockets_with_tag(RUNNER_TAG) {
            close(
                &older,
                CLOSE_REPLACED,
                "replaced by a newer runner connection",
            );
        }
        record.last_connection += 1;
        let connection = record.last_connection;
        record.runner_connection = Some(connection);
        record.runner_epoch = None;
        self.store.save_record(&record)?;

        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[RUNNER_TAG]);
        pair.server.serialize_attachment(RunnerAttachment {
            connection,
            epoch: None,
            token_expires_at,
            generation,
            last_seen_ms: now,
        })?;
        self.intake
            .set(Some(config::runner_intake_bucket(&self.env, now)));
        if self.refresh_status()? {
            self.publish();
        }
        Ok(Response::from_websocket(pair.client)?)
    }

    pub(super) async fn on_runner_message(
        &self,
        ws: &WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            close(
                ws,
                CLOSE_PROTOCOL,
                "the runner link carries JSON text frames",
            );
            return Ok(());
        };
        let Some(mut attachment) = ws.deserialize_attachment::<RunnerAttachment>()? else {
            close(ws, CLOSE_PROTOCOL, "unknown connection");
            return Ok(());
        };
        let record = self.store.record()?;
        if record.runner_connection != Some(attachment.connection) {
            close(ws, CLOSE_REPLACED, "replaced by a newer runner connection");
            return Ok(());
        }
        if attachment.generation != record.sandbox_generation {
            close(
                ws,
                CLOSE_SANDBOX_REPLACED,
                "this runner's sandbox was replaced",
            );
            return self.on_runner_gone(ws).await;
        }
        attachment.last_seen_ms = clock::now_ms();
        ws.serialize_attachment(&attachment)?;
        let frame_bytes = text.len();
        let frame: RunnerFrame = match serde_json::from_str(&text) {
            Ok(frame) => frame,
            Err(error) => {
                close(ws, CLOSE_PROTOCOL, &format!("invalid frame: {error}"));
                return self.on_runner_gone(ws).await;
            }
        };
        match frame {
            RunnerFrame::Hello {
                session_id,
                runner_version: _,
                epoch,
                active_turn,
            } => {
                self.on_hello(ws, attachment, &session_id, epoch, active_turn)
                    .await
            }
            RunnerFrame::Event {
                local_seq,
                turn_id,
                event,
            } => {
                self.on_event(ws, attachment, frame_bytes, local_seq, &turn_id, event)
                    .await
            }
            RunnerFrame::Ping => self.on_ping(ws, attachment),
            RunnerFrame::Repo { state } => self.on_repo_state(ws, attachment, state).await,
        }
    }

    async fn on_hello(
        &self,
        ws: &WebSocket,
        mut attachment: RunnerAttachment,
        session_id: &str,
        epoch: String,
        active_turn: Option<String>,
    ) -> Result<()> {
        let mut record = self.store.record()?;
        if session_id != record.session_id {
            close(
                ws,
                CLOSE_WRONG_SESSION,
                "this link belongs to another session",
            );
            return self.on_runner_gone(ws).await;
        }
        // A hello late in the token's life gets a fresh one, so a runner that
        // reconnects then is not locked out at the next reconnect; an earlier hello
        // gets none (a token is not extended by reconnecting with it).
        let ttl = config::runner_token_ttl_secs(&self.env);
        let token = if needs_renewal(attachment.token_expires_at, clock::now_secs(), ttl) {
            self.renew_token(&record)
        } else {
            None
        };
        if let Some((_, expires_at)) = &token {
            attachment.token_expires_at = *expires_at;
        }
        attachment.epoch = Some(epoch.clone());
        ws.serialize_attachment(&attachment)?;
        record.runner_epoch = Some(epoch.clone());
        record.runner_ever_connected = true;
        self.store.save_record(&record)?;

        let acked = welcome_acked(self.store.epoch_acked(&epoch)?);
        ws.send(&SessionFrame::Welcome {
            acked,
            token: token.map(|(token, _)| token),
            repo: record.repo.clone(),
        })?;

        let abort = self.steps(|steps| steps.runner_said_hello(&epoch, active_turn.as_deref()))?;
        if let Some(turn_id) = abort {
            let _ = ws.send(&SessionFrame::Abort { turn_id });
        }
        self.refresh_status()?;
        self.dispatch().await?;
        self.publish();
        Ok(())
    }

    async fn on_event(
        &self,
        ws: &WebSocket,
        attachment: RunnerAttachment,
        frame_bytes: usize,
        local_seq: u64,
        turn_id: &str,
        event: EventBody,
    ) -> Result<()> {
        let Some(epoch) = attachment.epoch else {
            close(ws, CLOSE_PROTOCOL, "send hello first");
            return self.on_runner_gone(ws).await;
        };
        let acked = self.store.epoch_acked(&epoch)?.unwrap_or(0);
        let intake = classify_runner_event(acked, local_seq);
        if intake == RunnerIntake::Accept && !self.take_intake(clock::now_ms()) {
            // Not acknowledged: the runner resends after its reconnect backoff.
            close(
                ws,
                CLOSE_RATE,
                "the runner sends events faster than the session takes them",
            );
            return self.on_runner_gone(ws).await;
        }
        // An oversized event is taken in (numbering goes on) as an error saying so.
        let event = match check_event_size(frame_bytes, &event) {
            Ok(()) => event,
            Err(oversize) => EventBody::Error {
                message: oversize.message(),
            },
        };
        match intake {
            RunnerIntake::Duplicate => {
                ws.send(&SessionFrame::Ack { up_to: acked })?;
                Ok(())
            }
            RunnerIntake::OutOfOrder { expected } => {
                // Restarting the link makes the runner resend from `acked`.
                close(
                    ws,
                    CLOSE_OUT_OF_ORDER,
                    &format!("expected local_seq {expected}; reconnect to resend"),
                );
                self.on_runner_gone(ws).await
            }
            RunnerIntake::Accept => {
                let spend = match &event {
                    EventBody::StepUsage { usage } => Some((*usage, None)),
                    EventBody::TurnFinished {
                        usage, duration_ms, ..
                    } => Some((*usage, Some(*duration_ms))),
                    _ => None,
                };
                let taken =
                    self.steps(|steps| steps.take_runner_event(turn_id, &epoch, local_seq, event))?;
                if taken.refused_kind {
                    worker::console_warn!("a runner sent an event kind it may not send; ignored");
                }
                // If the ack is lost the runner resends, and the resend is a duplicate.
                let _ = ws.send(&SessionFrame::Ack { up_to: local_seq });
                // The ended turn's spend is taken before the next turn starts (which
                // counts its own from then on).
                let ended = match spend {
                    Some((usage, Some(duration_ms))) if taken.stored => self
                        .spend_take_ended(turn_id)
                        .await
                        .map(|turn| (turn, usage, duration_ms)),
                    _ => None,
                };
                if taken.finished_turn {
                    self.dispatch().await?;
                    self.publish();
                }
                // Spend is counted after the ack: the ledger's writes are idempotent,
                // and a failed one must not make the runner resend the event.
                let counted = match (spend, ended) {
                    (_, Some((turn, usage, duration_ms))) => {
                        self.spend_on_turn_finished(turn, usage, duration_ms).await
                    }
                    (Some((usage, None)), None) if taken.stored => {
                        self.spend_on_step(turn_id, usage).await
                    }
                    _ => Ok(()),
                };
                if let Err(error) = counted {
                    worker::console_warn!("counting the turn's spend failed: {}", error.message);
                }
                Ok(())
            }
        }
    }

    /// A `repo` frame: checked, stored when it differs from the last (latest wins)
    /// and announced as `repo_updated` (see `nightshift_session::repo_intake`). Only
    /// the runner holding the link reports.
    async fn on_repo_state(
        &self,
        ws: &WebSocket,
        attachment: RunnerAttachment,
        state: RepoState,
    ) -> Result<()> {
        if attachment.epoch.is_none() {
            close(ws, CLOSE_PROTOCOL, "send hello first");
            return self.on_runner_gone(ws).await;
        }
        if self.store.record()?.runner_connection != Some(attachment.connection) {
            return Ok(());
        }
        match repo_intake(self.store.repo_state()?.as_ref(), &state) {
            RepoIntake::Unchanged => {}
            RepoIntake::Refuse(message) => {
                self.record_event(None, EventBody::Error { message })?;
            }
            RepoIntake::Store => {
                self.store.save_repo_state(&state)?;
                self.record_event(None, EventBody::RepoUpdated { state })?;
            }
        }
        Ok(())
    }

    fn on_ping(&self, ws: &WebSocket, mut attachment: RunnerAttachment) -> Result<()> {
        let ttl = config::runner_token_ttl_secs(&self.env);
        let mut token = None;
        if needs_renewal(attachment.token_expires_at, clock::now_secs(), ttl) {
            let record = self.store.record()?;
            if let Some((renewed, expires_at)) = self.renew_token(&record) {
                attachment.token_expires_at = expires_at;
                ws.serialize_attachment(&attachment)?;
                token = Some(renewed);
            }
        }
        ws.send(&SessionFrame::Pong { token })
    }

    /// The runner link closed or failed. If it was the current one, the session
    /// waits for its runner (`reconnecting`); the processing prompt stays, since the
    /// same runner may come back and go on.
    pub(super) async fn on_runner_gone(&self, ws: &WebSocket) -> Result<()> {
        let attachment = ws
            .deserialize_attachment::<RunnerAttachment>()
            .ok()
            .flatten();
        close(ws, 1000, "closing");
        let Some(attachment) = attachment else {
            return Ok(());
        };
        let mut record = self.store.record()?;
        if record.runner_connection != Some(attachment.connection) {
            return Ok(());
        }
        record.runner_connection = None;
        self.store.save_record(&record)?;
        if self.refresh_status()? {
            self.publish();
        }
        Ok(())
    }

    /// Takes one event from the runner's intake budget; false when it is over its
    /// rate.
    fn take_intake(&self, now_ms: i64) -> bool {
        let mut bucket = self
            .intake
            .get()
            .unwrap_or_else(|| config::runner_intake_bucket(&self.env, now_ms));
        let allowed = bucket.take(now_ms);
        self.intake.set(Some(bucket));
        allowed
    }

    /// The token for a new sandbox: bumps the session's sandbox generation first, so
    /// every token issued for an earlier sandbox stops working, and closes any
    /// runner socket of an earlier generation. `None` (logged) when the secret is
    /// missing.
    pub(super) fn issue_token(&self, session_id: &str) -> Option<(String, u64)> {
        let mut record = match self.store.record() {
            Ok(record) => record,
            Err(error) => {
                worker::console_error!("no runner token: {error}");
                return None;
            }
        };
        record.sandbox_generation += 1;
        record.runner_connection = None;
        if let Err(error) = self.store.save_record(&record) {
            worker::console_error!("no runner token: {error}");
            return None;
        }
        for older in self.state.get_websockets_with_tag(RUNNER_TAG) {
            close(
                &older,
                CLOSE_SANDBOX_REPLACED,
                "this runner's sandbox was replaced",
            );
        }
        self.token_for(session_id, record.sandbox_generation)
    }

    /// A renewed token for the runner holding the link, for the current sandbox.
    fn renew_token(&self, record: &SessionRecord) -> Option<(String, u64)> {
        self.token_for(&record.session_id, record.sandbox_generation)
    }

    fn token_for(&self, session_id: &str, generation: u64) -> Option<(String, u64)> {
        let ttl = config::runner_token_ttl_secs(&self.env);
        let now = clock::now_secs();
        let issued = config::runner_token_key(&self.env).and_then(|key| {
            key.issue(session_id, generation, now, ttl)
                .map_err(|error| error.to_string())
        });
        match issued {
            Ok(token) => Some((token, now + ttl)),
            Err(error) => {
                worker::console_error!("no runner token: {error}");
                None
            }
        }
    }
}

/// Closes `ws`, ignoring a socket that is already closed. Close reasons are limited
/// to 123 bytes by the WebSocket protocol.
fn close(ws: &WebSocket, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let _ = ws.close(Some(code), Some(&reason[..end]));
}
