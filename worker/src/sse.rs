//! Server-sent event streams served by the Durable Objects, in bounded memory.
//!
//! Each open stream holds a slot in its object's [`Subscribers`], named by the user
//! who opened it (for the per-user cap and for closing the streams of someone who
//! lost access). A session stream first replays the stored log page by page (each
//! page is read only when the client has taken the previous one), then goes live: a
//! bounded outbox, fed by [`Subscribers::broadcast_event`], drained to the client
//! with a keep-alive comment while idle. A subscriber whose outbox overflows is
//! dropped (its stream ends) and resumes with `Last-Event-ID`. The rules (pages,
//! outbox bounds, when to go live) are `nightshift_session::streams`; this module
//! moves frames.
//!
//! Frames are formatted by `nightshift_session::event_log`.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{Either, select};
use futures::{Stream, StreamExt};
use nightshift_session::event_log::SSE_KEEP_ALIVE;
use nightshift_session::streams::{
    Ended, OUTBOX_MAX_BYTES, Offered, Outbox, REPLAY_PAGE_SIZE, Replay, ReplayStep,
};
use worker::{Delay, Headers, Response};

/// How long a stream may stay silent before a keep-alive comment is sent.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

struct Entry {
    id: u64,
    user_id: String,
    /// Replaying: broadcasts pass it by (the log has them).
    live: bool,
    outbox: Rc<RefCell<Outbox>>,
}

/// The open streams of one object.
#[derive(Default)]
pub struct Subscribers {
    entries: RefCell<Vec<Entry>>,
    next_id: Cell<u64>,
    /// The latest frame of a kind that replaces the one before (presence), given to
    /// a stream when it goes live.
    snapshot: RefCell<Option<String>>,
}

impl std::fmt::Debug for Subscribers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribers")
            .field("count", &self.count())
            .finish()
    }
}

/// One open stream's place among the subscribers; leaving it (dropping it, when
/// the runtime drops the stream) frees the slot.
pub struct Slot {
    id: u64,
    outbox: Rc<RefCell<Outbox>>,
    subscribers: Rc<Subscribers>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.subscribers.remove(self.id);
    }
}

impl Slot {
    /// The subscriber has everything up to `last_seq`: from now on broadcasts reach
    /// it. Called in the same synchronous step as the replay's last read.
    pub(crate) fn go_live(&self, last_seq: u64) {
        self.outbox.borrow_mut().sent_up_to(last_seq);
        let snapshot = self.subscribers.snapshot.borrow().clone();
        if let Some(frame) = snapshot {
            self.outbox.borrow_mut().offer(None, &frame);
        }
        for entry in self.subscribers.entries.borrow_mut().iter_mut() {
            if entry.id == self.id {
                entry.live = true;
            }
        }
    }

    /// The frames waiting now, taken out (for tests).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> Vec<String> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut frames = Vec::new();
        while let Poll::Ready(Some(frame)) = self.outbox.borrow_mut().poll_next(&mut cx) {
            frames.push(frame);
        }
        frames
    }

    fn ended(&self) -> bool {
        self.outbox.borrow().ended().is_some()
    }

    fn next_frame(&self) -> NextFrame<'_> {
        NextFrame { slot: self }
    }
}

struct NextFrame<'a> {
    slot: &'a Slot,
}

impl Future for NextFrame<'_> {
    type Output = Option<String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        self.slot.outbox.borrow_mut().poll_next(cx)
    }
}

impl Subscribers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a slot for a stream of `user_id` that will go live after a replay.
    pub fn open(self: &Rc<Self>, user_id: &str) -> Slot {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let outbox = Rc::new(RefCell::new(Outbox::new(0, OUTBOX_MAX_BYTES)));
        self.entries.borrow_mut().push(Entry {
            id,
            user_id: user_id.to_owned(),
            live: false,
            outbox: outbox.clone(),
        });
        Slot {
            id,
            outbox,
            subscribers: self.clone(),
        }
    }

    fn remove(&self, id: u64) {
        self.entries.borrow_mut().retain(|entry| entry.id != id);
    }

    /// Sends the frame of the event numbered `seq` to every live stream; streams
    /// that fell too far behind are dropped.
    pub fn broadcast_event(&self, seq: u64, frame: &str) {
        self.offer(Some(seq), frame);
    }

    /// Sends a frame that is not part of the log (no `id:`) to every live stream.
    pub fn broadcast(&self, frame: &str) {
        self.offer(None, frame);
    }

    /// [`Subscribers::broadcast`] a frame that replaces the one before of its kind,
    /// and keep it for streams that go live later.
    pub fn broadcast_snapshot(&self, frame: &str) {
        *self.snapshot.borrow_mut() = Some(frame.to_owned());
        self.broadcast(frame);
    }

    fn offer(&self, seq: Option<u64>, frame: &str) {
        self.entries.borrow_mut().retain(|entry| {
            if !entry.live {
                return true;
            }
            match entry.outbox.borrow_mut().offer(seq, frame) {
                Offered::Queued | Offered::AlreadySent => true,
                Offered::Overflowed => {
                    worker::console_warn!(
                        "a stream of {} fell too far behind and was closed",
                        entry.user_id
                    );
                    false
                }
                Offered::Ended => false,
            }
        });
    }

    /// Open streams (replaying or live).
    pub fn count(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Open streams of `user_id`.
    pub fn count_of(&self, user_id: &str) -> usize {
        self.entries
            .borrow()
            .iter()
            .filter(|entry| entry.user_id == user_id)
            .count()
    }

    /// The distinct users with an open stream.
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .entries
            .borrow()
            .iter()
            .map(|entry| entry.user_id.clone())
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// Ends every stream of a user for whom `gone` holds; answers how many ended.
    pub fn close_where(&self, gone: impl Fn(&str) -> bool) -> usize {
        let mut closed = 0;
        self.entries.borrow_mut().retain(|entry| {
            if gone(&entry.user_id) {
                entry.outbox.borrow_mut().end(Ended::Closed);
                closed += 1;
                false
            } else {
                true
            }
        });
        closed
    }
}

/// A `text/event-stream` response that goes live at once (a stream without a log).
pub fn live_response(slot: Slot) -> worker::Result<Response> {
    slot.go_live(0);
    response(slot, None, |_, _| Ok(Vec::new()))
}

/// A page of the log: `(seq, frame)` pairs after a position, ascending.
pub type Page = Vec<(u64, String)>;

/// A `text/event-stream` response that replays the log after `after`, a page at a
/// time through `read_page(after, limit)`, then forwards live frames, with a
/// keep-alive comment every [`KEEP_ALIVE_INTERVAL`] while idle.
///
/// One timer serves the whole stream (it is kept across frames and renewed only when
/// it fires): a timer per frame would put a `setTimeout` on every delivery, which
/// costs far more than the frame itself when one session feeds many clients.
pub fn replay_response<R>(slot: Slot, after: u64, read_page: R) -> worker::Result<Response>
where
    R: FnMut(u64, usize) -> Result<Page, String> + 'static,
{
    response(slot, Some(Replay::new(after, REPLAY_PAGE_SIZE)), read_page)
}

struct StreamState<R> {
    slot: Slot,
    replay: Option<Replay>,
    read_page: R,
    keep_alive: Option<Delay>,
}

fn response<R>(slot: Slot, replay: Option<Replay>, read_page: R) -> worker::Result<Response>
where
    R: FnMut(u64, usize) -> Result<Page, String> + 'static,
{
    let state = StreamState {
        slot,
        replay,
        read_page,
        keep_alive: None,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        let chunk = next_chunk(&mut state).await?;
        Some((Ok::<Vec<u8>, worker::Error>(chunk), state))
    });
    stream_response(stream)
}

/// The next bytes to send; `None` ends the stream.
async fn next_chunk<R>(state: &mut StreamState<R>) -> Option<Vec<u8>>
where
    R: FnMut(u64, usize) -> Result<Page, String>,
{
    if state.slot.ended() {
        return None;
    }
    if let Some(replay) = state.replay.as_mut() {
        // Reading the page and, if it is the last, going live: one synchronous step.
        let page = match (state.read_page)(replay.after(), replay.page_size()) {
            Ok(page) => page,
            Err(error) => {
                worker::console_error!("replaying the event log failed: {error}");
                return None;
            }
        };
        let seqs: Vec<u64> = page.iter().map(|(seq, _)| *seq).collect();
        if let ReplayStep::CaughtUp { last_seq } = replay.advance(&seqs) {
            state.replay = None;
            state.slot.go_live(last_seq);
        }
        if !page.is_empty() {
            let mut chunk = Vec::with_capacity(page.iter().map(|(_, f)| f.len()).sum());
            for (_, frame) in page {
                chunk.extend_from_slice(frame.as_bytes());
            }
            return Some(chunk);
        }
        if state.replay.is_some() {
            // An empty page that is not the last cannot happen (page sizes are at
            // least 1); end rather than spin.
            return None;
        }
    }
    let timer = state
        .keep_alive
        .take()
        .unwrap_or_else(|| Delay::from(KEEP_ALIVE_INTERVAL));
    match select(state.slot.next_frame(), timer).await {
        Either::Left((Some(frame), timer)) => {
            state.keep_alive = Some(timer);
            Some(frame.into_bytes())
        }
        Either::Left((None, _)) => None,
        Either::Right(_) => Some(SSE_KEEP_ALIVE.as_bytes().to_vec()),
    }
}

fn stream_response<S>(stream: S) -> worker::Result<Response>
where
    S: Stream<Item = worker::Result<Vec<u8>>> + 'static,
{
    let headers = Headers::new();
    headers.set("content-type", "text/event-stream; charset=utf-8")?;
    headers.set("cache-control", "no-cache, no-store")?;
    headers.set("x-accel-buffering", "no")?;
    Ok(Response::from_stream(stream.boxed_local())?.with_headers(headers))
}
