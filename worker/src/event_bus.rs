//! The `EventBus` Durable Object: one global instance that fans session-list changes
//! (`SessionListEvent`: created, status changed, title changed) out to every open
//! `GET /api/events` stream.
//!
//! It keeps nothing: an event reaches the streams open when it is published, and a
//! browser that (re)connects loads the list first. Publishers are the Worker (a
//! session was created) and each `SessionAgent` (its status or title changed).
//!
//! Internal routes: `GET /events` (the stream) and `POST /publish` (one event).

use nightshift_protocol::events::SessionListEvent;
use nightshift_session::event_log::sse_data_frame;
use worker::{DurableObject, Env, Method, Request, Response, Result, State, durable_object};

use crate::api_error::{ApiError, json};
use crate::body;
use crate::sse::{self, Subscribers};

#[durable_object(fetch)]
pub struct EventBus {
    subscribers: Subscribers,
}

impl DurableObject for EventBus {
    fn new(_state: State, _env: Env) -> Self {
        Self {
            subscribers: Subscribers::new(),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Get, "/events") => sse::response(self.subscribers.subscribe(Vec::new())),
            (Method::Post, "/publish") => {
                let event: SessionListEvent = match body::read_json(&mut req).await {
                    Ok(event) => event,
                    Err(error) => return Ok(error.into_response()),
                };
                match sse_data_frame(&event) {
                    Ok(frame) => self.subscribers.broadcast(&frame),
                    Err(error) => return Ok(ApiError::from(error).into_response()),
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
