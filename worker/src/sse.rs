//! Server-sent event streams served by the Durable Objects: a set of live
//! subscribers, each fed through its own channel, and the streaming response that
//! drains a channel to the client with a keep-alive comment while idle.
//!
//! Frames are formatted by `nightshift_session::event_log`; this module only moves
//! them. A subscriber whose client went away is dropped at the next broadcast.

use std::cell::RefCell;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::future::{Either, select};
use nightshift_session::event_log::SSE_KEEP_ALIVE;
use worker::{Delay, Headers, Response};

/// How long a stream may stay silent before a keep-alive comment is sent.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// The live subscribers of one stream.
#[derive(Debug, Default)]
pub struct Subscribers {
    senders: RefCell<Vec<UnboundedSender<String>>>,
}

impl Subscribers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a subscriber whose stream starts with `backlog`. Queuing the backlog
    /// and registering happen in one synchronous step, so no frame broadcast meanwhile
    /// can fall between them or come twice.
    pub fn subscribe(&self, backlog: Vec<String>) -> UnboundedReceiver<String> {
        let (sender, receiver) = unbounded();
        for frame in backlog {
            // The receiver is alive right here, so sending cannot fail.
            let _ = sender.unbounded_send(frame);
        }
        self.senders.borrow_mut().push(sender);
        receiver
    }

    /// Sends `frame` to every live subscriber and forgets the ones that are gone.
    pub fn broadcast(&self, frame: &str) {
        self.senders
            .borrow_mut()
            .retain(|sender| sender.unbounded_send(frame.to_owned()).is_ok());
    }

    pub fn count(&self) -> usize {
        self.senders.borrow().len()
    }

    /// Ends every stream (after the frames already queued for it).
    pub fn close_all(&self) {
        self.senders.borrow_mut().clear();
    }
}

/// A `text/event-stream` response that forwards `frames` and sends a keep-alive
/// comment every [`KEEP_ALIVE_INTERVAL`].
///
/// One timer serves the whole stream (it is kept across frames and renewed only when
/// it fires): a timer per frame would put a `setTimeout` on every delivery, which
/// costs far more than the frame itself when one session feeds many clients.
pub fn response(frames: UnboundedReceiver<String>) -> worker::Result<Response> {
    response_keeping(frames, ())
}

/// [`response`], keeping `guard` alive exactly as long as the stream (it is dropped
/// when the client goes away).
pub fn response_keeping<G: 'static>(
    frames: UnboundedReceiver<String>,
    guard: G,
) -> worker::Result<Response> {
    let stream = futures::stream::unfold(
        (frames, None::<Delay>, guard),
        |(mut frames, keep_alive, guard)| async move {
            let timer = keep_alive.unwrap_or_else(|| Delay::from(KEEP_ALIVE_INTERVAL));
            let (next, timer) = match select(frames.next(), timer).await {
                Either::Left((Some(frame), timer)) => (Some(frame), Some(timer)),
                Either::Left((None, _)) => (None, None),
                Either::Right(_) => (Some(SSE_KEEP_ALIVE.to_owned()), None),
            };
            next.map(|frame| {
                (
                    Ok::<Vec<u8>, worker::Error>(frame.into_bytes()),
                    (frames, timer, guard),
                )
            })
        },
    );
    let headers = Headers::new();
    headers.set("content-type", "text/event-stream; charset=utf-8")?;
    headers.set("cache-control", "no-cache, no-store")?;
    headers.set("x-accel-buffering", "no")?;
    Ok(Response::from_stream(stream)?.with_headers(headers))
}
