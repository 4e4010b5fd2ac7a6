//! Control of the session's turns: queueing a prompt in its mode (`followup`,
//! `steer`, `collect`), editing a queued prompt, aborting, changing the agent settings
//! between turns, answering the agent's questions, and the alarm that closes collect
//! windows and ends turns whose runner never confirmed an abort.
//!
//! The rules and state changes are `nightshift_session`'s (the queue steps and the
//! abort deadline in [`nightshift_session::turns`], [`QuestionBook`], the choice of
//! the next alarm in [`nightshift_session::alarm`], the settings diff in
//! [`nightshift_session::settings`]); this file reads requests, applies those steps,
//! sends frames, sets the alarm and answers.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::api::{
    AbortResponse, AnswerQuestionRequest, EditMessageRequest, PostMessageRequest,
    PostMessageResponse, QueueMode, UpdateSessionRequest,
};
use nightshift_protocol::events::EventBody;
use nightshift_protocol::runner_link::SessionFrame;
use nightshift_session::abort::DEFAULT_ABORT_TIMEOUT_MS;
use nightshift_session::alarm::{AlarmFacts, next_alarm};
use nightshift_session::questions::{QuestionBook, QuestionError};
use nightshift_session::queue::QueueError;
use nightshift_session::settings::{AgentSettings, settings_change};
use nightshift_session::title::normalize_title;
use nightshift_session::turns::{NewPrompt, QueuedPrompt};
use worker::{Request, Response};

use super::SessionAgent;
use crate::api_error::{ApiError, ApiResult, json};
use crate::internal::{AnswerQuestion, EditPrompt, EnqueuePrompt, SettingsHeld};
use crate::{body, clock, config, ids};

/// How long `collect` keeps a prompt open for more, unless `COLLECT_WINDOW_MS` says.
pub const DEFAULT_COLLECT_WINDOW_MS: i64 = 1_500;

pub(super) fn millis_var(env: &worker::Env, name: &str, default: i64) -> i64 {
    config::var(env, name)
        .and_then(|value| value.parse::<i64>().ok())
        .filter(|value| *value >= 0)
        .unwrap_or(default)
}

impl SessionAgent {
    fn collect_window_ms(&self) -> i64 {
        millis_var(&self.env, "COLLECT_WINDOW_MS", DEFAULT_COLLECT_WINDOW_MS)
    }

    fn abort_timeout_ms(&self) -> i64 {
        millis_var(&self.env, "ABORT_TIMEOUT_MS", DEFAULT_ABORT_TIMEOUT_MS)
    }

    /// `POST /messages`: queues a prompt where its mode puts it.
    pub(super) async fn enqueue(&self, req: &mut Request) -> ApiResult<Response> {
        let EnqueuePrompt {
            body: client_body,
            worker_url,
            sent_by,
            max_queued,
            spend_caps,
        } = body::read_json(req).await?;
        let PostMessageRequest { content, mode } = client_body.parse()?;
        crate::routes::messages::validate_content(&content)?;
        // A prompt that would start over a spend cap is refused before it is stored.
        let spend_caps = match spend_caps {
            Some(caps) => caps,
            None => crate::spend::settings::current(&self.env).await?.caps,
        };
        let spender = match &sent_by {
            Some(user) => user.clone(),
            None => self.store.record()?.owner_id,
        };
        self.spend_check_prompt(&spender, &spend_caps).await?;
        let id = ids::new_id()?;
        // The Worker passes the team's cap; the environment's default otherwise.
        let max_queued =
            max_queued.unwrap_or_else(|| crate::limits::defaults(&self.env).queued_prompts);
        let prompt = NewPrompt {
            id,
            content,
            mode,
            sent_by,
            worker_url,
        };
        let collect_window_ms = self.collect_window_ms();
        let Some(QueuedPrompt {
            message_id,
            position,
        }) = self.steps(|steps| steps.enqueue(prompt, collect_window_ms, max_queued as usize))?
        else {
            return Err(crate::limits::exceeded(
                crate::limits::Cap::QueuedPrompts,
                max_queued,
                &format!(
                    "this session already has {max_queued} prompts waiting; wait for some to run, \
                     or cancel one"
                ),
            ));
        };

        // The machine sees the prompt: an asleep session starts waking, one whose
        // sandbox request failed asks again.
        self.refresh_status()?;
        // A steering prompt stops the running turn; it runs as soon as that one ends.
        if mode == QueueMode::Steer {
            self.abort_running()?;
        }
        self.dispatch().await?;
        self.carry_out_sandbox_work().await?;
        self.publish();
        let message = self
            .store
            .queue_with(&message_id)?
            .message(&message_id)
            .ok_or_else(|| ApiError::internal("the queued prompt vanished"))?;
        Ok(json(
            202,
            &PostMessageResponse {
                message_id,
                position,
                message,
            },
        ))
    }

    /// `PATCH /messages/{id}`: replaces a queued prompt's content.
    pub(super) async fn edit_prompt(
        &self,
        message_id: &str,
        req: &mut Request,
    ) -> ApiResult<Response> {
        let EditPrompt {
            body: client_body,
            edited_by,
        } = body::read_json(req).await?;
        let EditMessageRequest { content } = client_body.parse()?;
        crate::routes::messages::validate_content(&content)?;
        match self.steps(|steps| steps.edit(message_id, content, edited_by))? {
            Ok(message) => Ok(json(200, &message)),
            Err(error @ QueueError::NotFound(_)) => Err(ApiError::not_found(error.to_string())),
            Err(error) => Err(ApiError::new(ErrorCode::NotQueued, error.to_string())),
        }
    }

    /// `POST /abort`: tells the runner to stop the running turn.
    pub(super) async fn abort(&self) -> ApiResult<Response> {
        let aborted_turn_id = self.abort_running()?;
        self.dispatch().await?;
        self.publish();
        Ok(json(200, &AbortResponse { aborted_turn_id }))
    }

    /// Sends `abort` for the processing turn and starts the clock on its answer. With
    /// no runner to tell, the turn ends here at once. Returns the turn, if one ran.
    pub(super) fn abort_running(&self) -> ApiResult<Option<String>> {
        let record = self.store.record()?;
        let Some(turn_id) = self.turn_steps(&record).running_turn()? else {
            return Ok(None);
        };
        let told_runner = self.current_runner(&record).is_some_and(|(socket, _)| {
            socket
                .send(&SessionFrame::Abort {
                    turn_id: turn_id.clone(),
                })
                .is_ok()
        });
        self.steps(|steps| {
            if told_runner {
                steps.abort_sent(&turn_id)
            } else {
                // No runner can end the turn, so it ends here.
                steps.end_turn_here(&turn_id, None)
            }
        })?;
        Ok(Some(turn_id))
    }

    /// `PATCH /settings`: agent, model, permission mode (from the next turn on) and
    /// title. The Worker has checked that the model exists.
    pub(super) async fn update_settings(&self, req: &mut Request) -> ApiResult<Response> {
        let update: UpdateSessionRequest = body::read_json(req).await?;
        let mut record = self.store.record()?;
        if let Some(title) = &update.title {
            record.title = normalize_title(title)
                .map_err(|error| ApiError::new(ErrorCode::InvalidRequest, error.to_string()))?;
        }
        let current = AgentSettings {
            agent: record.agent,
            model: record.model.clone(),
            permission_mode: record.permission_mode,
        };
        let change = settings_change(&current, &update);
        if let Some(settings) = &change {
            record.agent = settings.agent;
            record.model = settings.model.clone();
            record.permission_mode = settings.permission_mode;
        }
        self.store.save_record(&record)?;
        if let Some(settings) = change {
            self.record_event(None, settings.updated_event())?;
        }
        self.publish();
        // The D1 row is written in the background; the answer carries what the
        // session holds now, for the Worker to answer with.
        Ok(json(
            200,
            &SettingsHeld {
                title: record.title,
                agent: record.agent,
                model: record.model,
                permission_mode: record.permission_mode,
            },
        ))
    }

    /// `POST /questions/{id}/answer`: records the answer and sends it to the runner.
    pub(super) async fn answer_question(
        &self,
        question_id: &str,
        req: &mut Request,
    ) -> ApiResult<Response> {
        let AnswerQuestion {
            body: client_body,
            answered_by,
        } = body::read_json(req).await?;
        let AnswerQuestionRequest { answer } = client_body.parse()?;
        crate::routes::questions::validate_answer(&answer)?;
        let book = QuestionBook::from_events(&self.store.question_events()?);
        let turn_id =
            book.answerable(question_id, clock::now_ms())
                .map_err(|error| match error {
                    QuestionError::Unknown(_) => ApiError::not_found(error.to_string()),
                    QuestionError::Closed(_) => {
                        ApiError::new(ErrorCode::QuestionClosed, error.to_string())
                    }
                })?;
        let record = self.store.record()?;
        let sent = self.current_runner(&record).is_some_and(|(socket, _)| {
            socket
                .send(&SessionFrame::Answer {
                    turn_id: turn_id.clone(),
                    question_id: question_id.to_owned(),
                    answer: answer.clone(),
                })
                .is_ok()
        });
        if !sent {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the session's runner is not connected right now; answer again in a moment",
            ));
        }
        let event = self.record_event(
            Some(&turn_id),
            EventBody::QuestionAnswered {
                question_id: question_id.to_owned(),
                answer,
                answered_by,
            },
        )?;
        Ok(json(200, &event))
    }

    /// Sets the object's alarm for the next deadline ([`next_alarm`]): a collect
    /// window that holds the queue, an abort the runner has not confirmed, a presence
    /// lease running out, the streams' access check or the session's sleep.
    pub(super) async fn schedule_alarm(&self) -> ApiResult<()> {
        let now = clock::now_ms();
        let record = self.store.record()?;
        let queue = self.store.queue()?;
        let facts = AlarmFacts {
            now,
            collect_deadline: queue.collect_deadline(now),
            abort_deadline: record
                .abort_requested
                .as_ref()
                .map(|abort| abort.deadline(self.abort_timeout_ms())),
            lease_expiry: self.presence.next_expiry(),
            stream_access_check: self.stream_access_check_at.get(),
            sleep_deadline: self.sleep_deadline(&record)?,
        };
        if let Some(delay_ms) = next_alarm(&facts) {
            // One alarm per object: setting it replaces an earlier one, which is fine
            // because the handler looks at every deadline.
            self.state
                .storage()
                .set_alarm(delay_ms)
                .await
                .map_err(ApiError::from)?;
        }
        Ok(())
    }

    /// The alarm: ends a turn whose abort went unanswered, then starts what may run.
    pub(super) async fn on_alarm(&self) -> ApiResult<()> {
        let abort_timeout_ms = self.abort_timeout_ms();
        self.steps(|steps| steps.settle_abort(abort_timeout_ms))?;
        self.dispatch().await?;
        self.settle_sleep().await?;
        // Set again for what still waits (sleep's deadline included).
        self.schedule_alarm().await?;
        self.publish();
        Ok(())
    }
}
