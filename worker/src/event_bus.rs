//! The `EventBus` Durable Object: one global instance that fans session-list changes
//! (`SessionListEvent`: created, status changed, title changed) out to every open
//! `GET /api/events` stream, and a user's inbox changes to that user's streams.
//!
//! It keeps nothing: an event reaches the streams open when it is published, and a
//! browser that (re)connects loads the list first. Publishers are the Worker (a
//! session was created) and each `SessionAgent` (its status or title changed).
//! Each stream has a bounded outbox (`crate::sse`): one that falls too far behind
//! is closed, and its browser reconnects and reloads the list. A user holds at most
//! `MAX_OPEN_STREAMS` of these streams at once (429 `quota_exceeded` beyond).
//!
//! Internal routes: `GET /events` (the stream, for the user the Worker names),
//! `POST /publish` (one event; with `?user=` only to that user's streams, which is
//! how an inbox change reaches its own user and nobody else) and `POST /streams/close` (ends the streams of users
//! who lost access to a session: their browsers reconnect and reload the list,
//! whose visibility the Worker then reads afresh).

use std::rc::Rc;

use nightshift_protocol::events::SessionListEvent;
use nightshift_session::event_log::sse_data_frame;
use nightshift_session::streams::may_open_stream;
use worker::{DurableObject, Env, Method, Request, Response, Result, State, durable_object};

use crate::api_error::{ApiError, json};
use crate::sse::{self, Subscribers};
use crate::{body, config};

#[durable_object(fetch)]
pub struct EventBus {
    env: Env,
    subscribers: Rc<Subscribers>,
}

impl DurableObject for EventBus {
    fn new(_state: State, env: Env) -> Self {
        Self {
            env,
            subscribers: Rc::new(Subscribers::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Get, "/events") => {
                let user_id = crate::session_agent::presence::viewer_of(&req)
                    .map(|viewer| viewer.user_id)
                    .unwrap_or_default();
                let cap = crate::internal::max_streams_of(&req, &self.env);
                let now = crate::clock::now_ms();
                if !may_open_stream(self.subscribers.count_of(&user_id, now), cap) {
                    let message = format!(
                        "you already have {cap} session-list streams open; close one first"
                    );
                    return Ok(crate::limits::exceeded(
                        crate::limits::Cap::OpenStreams,
                        u32::try_from(cap).unwrap_or(u32::MAX),
                        &message,
                    )
                    .into_response());
                }
                let max_age = config::stream_max_age_ms(&self.env);
                sse::live_response(self.subscribers.open(&user_id, now, max_age))
            }
            (Method::Post, "/streams/close") => {
                let close: crate::internal::CloseStreams = match body::read_json(&mut req).await {
                    Ok(close) => close,
                    Err(error) => return Ok(error.into_response()),
                };
                let closed = self
                    .subscribers
                    .close_where(|user_id| close.user_ids.iter().any(|gone| gone == user_id));
                Ok(json(200, &serde_json::json!({ "closed": closed })))
            }
            (Method::Post, "/publish") => {
                // `?user=` keeps the event to that user's streams (their inbox).
                let to_user = req
                    .url()?
                    .query_pairs()
                    .find(|(key, _)| key == "user")
                    .map(|(_, user)| user.into_owned());
                let event: SessionListEvent = match body::read_json(&mut req).await {
                    Ok(event) => event,
                    Err(error) => return Ok(error.into_response()),
                };
                match (sse_data_frame(&event), to_user) {
                    (Ok(frame), Some(user)) => self.subscribers.broadcast_to(&user, &frame),
                    (Ok(frame), None) => self.subscribers.broadcast(&frame),
                    (Err(error), _) => return Ok(ApiError::from(error).into_response()),
                }
                Ok(json(
                    200,
                    &serde_json::json!({ "subscribers": self.subscribers.count() }),
                ))
            }
            _ => Ok(ApiError::not_found(format!("no event bus route {path}")).into_response()),
        }
    }
}
