//! The internal routes the Worker calls on a `SessionAgent`: one
//! [`crate::internal::AgentCall`] each, the enum the Worker builds its requests
//! from. The handlers that control turns live in [`super::control`]; presence
//! leases in [`super::presence`].
//!
//! The Worker has already authenticated the caller and validated bodies; a call
//! naming its caller is admitted here against the session's access facts (see
//! [`super::access`]), the others come from the Worker's own parts. These handlers
//! apply the change, tell the event log, and answer with protocol bodies or error
//! envelopes.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::api::{MessageList, StreamStats};
use nightshift_protocol::events::EventBody;
use nightshift_session::access_facts::AccessFacts;
use nightshift_session::event_log::{parse_replay_position, sse_frame};
use nightshift_session::queue::QueueError;
use nightshift_session::streams::may_open_stream;
use nightshift_session::turns::archived_refusal;
use worker::{Request, Response};

use super::presence::{self, DEFAULT_LEASE_MS};
use super::storage::{Published, PublishedAgent};
use super::{SessionAgent, control};
use crate::api_error::{ApiError, ApiResult, json};
use crate::internal::{AgentCall, CloseStreams, InitSession, SESSION_ID_HEADER};
use crate::{body, clock, config, sse};

impl SessionAgent {
    pub(super) async fn route(&self, mut req: Request) -> ApiResult<Response> {
        // Calls for a signed-in user are admitted here (before anything is stored).
        self.admit(&req).await?;
        self.remember_session_id(&req)?;
        // The status may be stale after a restart (the runner's socket did not
        // survive it), so it is re-derived on every call.
        if self.refresh_status()? {
            self.publish();
        }
        let path = req.path();
        let Some(call) = AgentCall::parse(&req.method(), &path) else {
            return Err(ApiError::not_found(format!("no session route {path}")));
        };
        if call.refused_when_archived()
            && let Some(reason) = archived_refusal(&self.store.record()?)
        {
            // Nothing is provisioned again: a restore from a checkpoint would start
            // here once checkpoints are kept.
            return Err(ApiError::new(ErrorCode::SessionArchived, reason));
        }
        match call {
            AgentCall::Init => self.init(&mut req).await,
            AgentCall::Enqueue => self.enqueue(&mut req).await,
            AgentCall::ListMessages => Ok(json(
                200,
                &MessageList {
                    messages: self.store.recent_queue()?.messages(),
                },
            )),
            AgentCall::CancelMessage(id) => self.cancel(id).await,
            AgentCall::EditMessage(id) => self.edit_prompt(id, &mut req).await,
            AgentCall::Abort => self.abort().await,
            AgentCall::Wake => self.wake().await,
            AgentCall::Push => self.push_branch(),
            AgentCall::RepoView => self.repo_view(),
            AgentCall::Diff => self.diff().await,
            AgentCall::ReloadAccess => {
                let record = self.store.record()?;
                if !record.initialized || record.deleted {
                    return Err(ApiError::not_found("no such session"));
                }
                match self.reload_access(&record.session_id).await? {
                    Some(_) => {
                        // The sleep time may have changed with it: the alarm is set
                        // for the new one (a shorter time takes effect now).
                        self.schedule_alarm().await?;
                        Ok(Response::empty()?.with_status(204))
                    }
                    None => Err(ApiError::not_found("no such session")),
                }
            }
            AgentCall::UpdateSettings => self.update_settings(&mut req).await,
            AgentCall::AnswerQuestion(id) => self.answer_question(id, &mut req).await,
            AgentCall::Events => {
                let response = self.events(&req)?;
                self.presence_heartbeat(&req).await;
                Ok(response)
            }
            AgentCall::Presence => {
                self.presence.expire(clock::now_ms(), &self.subscribers);
                Ok(json(200, &self.presence.viewers()))
            }
            AgentCall::PresenceHeartbeat => {
                self.presence_heartbeat(&req).await;
                Ok(json(200, &self.presence.viewers()))
            }
            AgentCall::PresenceLeave => {
                if let Some(viewer) = presence::viewer_of(&req) {
                    self.presence.leave(&viewer.user_id, &self.subscribers);
                }
                Ok(json(200, &self.presence.viewers()))
            }
            AgentCall::CloseStreams => self.close_streams(&mut req).await,
            AgentCall::StreamStats => {
                let peaks = self.subscribers.peaks();
                let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                let bytes = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
                Ok(json(
                    200,
                    &StreamStats {
                        open: count(self.subscribers.count()),
                        peak_replay_page_events: count(peaks.replay_page_events),
                        peak_replay_page_bytes: bytes(peaks.replay_page_bytes),
                        peak_outbox_bytes: bytes(peaks.outbox_bytes),
                        dropped_behind: peaks.dropped_behind,
                    },
                ))
            }
            AgentCall::Runner => Ok(self.accept_runner(&req).await?),
            AgentCall::Delete => self.delete_session().await,
            AgentCall::Archive => self.archive_session().await,
            AgentCall::CreatePanelGrant => {
                // An opened panel wants the sandbox: an asleep session wakes (and
                // an awake one's idle time starts again).
                let grant = self.create_panel_grant(&mut req).await?;
                self.request_wake().await?;
                Ok(grant)
            }
            AgentCall::CheckPanelGrant(id) => self.check_panel_grant(id),
            AgentCall::GitContext => self.git_context(&mut req).await,
            AgentCall::GithubReconnect => self.github_reconnect(&mut req).await,
            AgentCall::SetPullRequest => self.set_pull_request(&mut req).await,
            AgentCall::ReadConversation => self.read_conversation(&req),
            AgentCall::WriteConversation => self.write_conversation(&mut req).await,
            AgentCall::Rewind => self.rewind(&mut req).await,
            AgentCall::ForkSource => self.fork_source(&mut req).await,
        }
    }

    fn remember_session_id(&self, req: &Request) -> ApiResult<()> {
        let Some(session_id) = req.headers().get(SESSION_ID_HEADER)? else {
            return Ok(());
        };
        let mut record = self.store.record()?;
        if record.session_id.is_empty() {
            record.session_id = session_id;
            self.store.save_record(&record)?;
        }
        Ok(())
    }

    async fn init(&self, req: &mut Request) -> ApiResult<Response> {
        let init: InitSession = body::read_json(req).await?;
        let mut record = self.store.record()?;
        let fresh = !record.initialized;
        if fresh {
            record.initialized = true;
            record.owner_id = init.owner_id;
            record.title = init.title.clone();
            record.worker_url = Some(init.worker_url);
            record.agent = init.agent;
            record.model = init.model.clone();
            record.permission_mode = init.permission_mode;
            record.repo = init.repo.clone();
            record.pull_request = init.pull_request.clone();
            if let Some(fork) = &init.fork {
                self.start_fork(&mut record, fork)?;
            }
            self.store
                .save_access_facts(&AccessFacts::owned_by(record.owner_id.clone()))?;
            // What the Worker wrote into the new D1 row.
            record.published = Some(Published {
                status: record.status,
                title: init.title,
                sandbox_id: None,
                error: None,
                archived_at: None,
                agent: Some(PublishedAgent {
                    agent: init.agent,
                    model: init.model,
                    permission_mode: init.permission_mode,
                    usage: Default::default(),
                }),
            });
            self.store.save_record(&record)?;
            self.record_event(
                None,
                EventBody::StatusChanged {
                    status: record.status,
                },
            )?;
        }
        if fresh {
            // The owner's sleep time and the team's maximum (the D1 row exists by
            // now). Without them the deployment's default applies, so a failure here
            // does not fail the session; the next access reload reads them again.
            if let Err(error) = self.reload_access(&record.session_id).await {
                worker::console_warn!(
                    "session {}: reading its sleep time: {}",
                    record.session_id,
                    error.message
                );
            }
        }
        self.provision().await?;
        self.publish();
        Ok(json(200, &serde_json::json!({ "initialized": true })))
    }

    async fn cancel(&self, message_id: &str) -> ApiResult<Response> {
        match self.steps(|steps| steps.cancel(message_id))? {
            Ok(message) => {
                // A cancelled collect prompt may have been what the queue waited for.
                self.dispatch().await?;
                Ok(json(200, &message))
            }
            Err(error @ QueueError::NotFound(_)) => Err(ApiError::not_found(error.to_string())),
            Err(error) => Err(ApiError::new(ErrorCode::Conflict, error.to_string())),
        }
    }

    /// The event stream: the log after `after`, replayed a page at a time, then live
    /// (see [`crate::sse`]). Refused with 429 `quota_exceeded` when the viewer already
    /// holds `MAX_OPEN_STREAMS` streams of this session; nothing changes then.
    fn events(&self, req: &Request) -> ApiResult<Response> {
        let after = req
            .url()?
            .query_pairs()
            .find(|(name, _)| name == "after")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let after = parse_replay_position(&after).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidRequest, format!("bad event id `{after}`"))
        })?;
        // Streams the Worker opens name their viewer; an unnamed caller counts as one.
        let user_id = presence::viewer_of(req)
            .map(|viewer| viewer.user_id)
            .unwrap_or_default();
        // The Worker names the team's cap; the environment's otherwise.
        let cap = crate::internal::max_streams_of(req, &self.env);
        let now = clock::now_ms();
        if !may_open_stream(self.subscribers.count_of(&user_id, now), cap) {
            return Err(crate::limits::exceeded(
                crate::limits::Cap::OpenStreams,
                u32::try_from(cap).unwrap_or(u32::MAX),
                &format!("you already have {cap} streams of this session open; close one first"),
            ));
        }
        let slot = self
            .subscribers
            .open(&user_id, now, config::stream_max_age_ms(&self.env));
        // The caller sets the alarm for the access check (with the presence lease).
        self.stream_opened();
        let store = self.store.clone();
        let read_page = move |after: u64, limit: usize| -> Result<sse::Page, String> {
            let events = store
                .events_after(after, limit)
                .map_err(|error| error.to_string())?;
            events
                .iter()
                .map(|event| {
                    sse_frame(event)
                        .map(|frame| (event.seq, frame))
                        .map_err(|error| error.to_string())
                })
                .collect()
        };
        Ok(sse::replay_response(slot, after, read_page)?)
    }

    /// `POST /streams/close`: ends the open streams of the users named who may no
    /// longer see the session (the Worker calls it when it revokes access).
    async fn close_streams(&self, req: &mut Request) -> ApiResult<Response> {
        let CloseStreams { user_ids } = body::read_json(req).await?;
        let closed = self
            .subscribers
            .close_where(|user_id| user_ids.iter().any(|gone| gone == user_id));
        for user_id in &user_ids {
            self.presence.leave(user_id, &self.subscribers);
        }
        Ok(json(200, &serde_json::json!({ "closed": closed })))
    }

    /// Grants or renews the lease of the viewer the Worker named (see
    /// [`super::presence`]), and sets the alarm for when it runs out.
    async fn presence_heartbeat(&self, req: &Request) {
        let Some(viewer) = presence::viewer_of(req) else {
            return;
        };
        let lease_ms = control::millis_var(&self.env, "PRESENCE_LEASE_MS", DEFAULT_LEASE_MS);
        self.presence
            .heartbeat(viewer, clock::now_ms(), lease_ms.max(1), &self.subscribers);
        if let Err(error) = self.schedule_alarm().await {
            worker::console_warn!("setting the alarm failed: {}", error.message);
        }
    }
}
