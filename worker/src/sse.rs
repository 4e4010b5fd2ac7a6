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
//! Every stream also ends at its maximum age (`STREAM_MAX_AGE_MS`), and its slot is
//! freed then even if the runtime never reports that the client went away (`wrangler
//! dev` reports it only sometimes): the client reconnects where it left off, and a
//! slot leaked by a client that vanished comes back by then at the latest.
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
    /// When the stream ends (ms since the epoch), whatever happens.
    expires_at: i64,
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
    /// High-water marks, for `GET /api/sessions/{id}/streams`.
    peaks: Cell<Peaks>,
}

/// The most the streams of one object have held, since it started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Peaks {
    pub replay_page_events: usize,
    pub replay_page_bytes: usize,
    pub outbox_bytes: usize,
    pub dropped_behind: u64,
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
    expires_at: i64,
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
        self.slot.outbox.borrow_mut().poll_chunk(cx)
    }
}

impl Subscribers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a slot for a stream of `user_id` that will go live after a replay and
    /// ends `max_age_ms` after `now_ms`.
    pub fn open(self: &Rc<Self>, user_id: &str, now_ms: i64, max_age_ms: i64) -> Slot {
        self.expire(now_ms);
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let expires_at = now_ms.saturating_add(max_age_ms.max(1));
        let outbox = Rc::new(RefCell::new(Outbox::new(0, OUTBOX_MAX_BYTES)));
        self.entries.borrow_mut().push(Entry {
            id,
            user_id: user_id.to_owned(),
            expires_at,
            live: false,
            outbox: outbox.clone(),
        });
        Slot {
            id,
            expires_at,
            outbox,
            subscribers: self.clone(),
        }
    }

    /// Ends and forgets the streams past their maximum age at `now_ms` (their
    /// clients, if still there, reconnect).
    pub fn expire(&self, now_ms: i64) {
        self.entries.borrow_mut().retain(|entry| {
            if entry.expires_at <= now_ms {
                entry.outbox.borrow_mut().end(Ended::Closed);
                false
            } else {
                true
            }
        });
    }

    fn remove(&self, id: u64) {
        self.entries.borrow_mut().retain(|entry| entry.id != id);
    }

    /// Sends the frame of the event numbered `seq` to every live stream; streams
    /// that fell too far behind are dropped.
    pub fn broadcast_event(&self, seq: u64, frame: &str) {
        self.offer(Some(seq), frame, |_| true);
    }

    /// Sends a frame that is not part of the log (no `id:`) to every live stream.
    pub fn broadcast(&self, frame: &str) {
        self.offer(None, frame, |_| true);
    }

    /// [`Subscribers::broadcast`] to the live streams of `user_id` only.
    pub fn broadcast_to(&self, user_id: &str, frame: &str) {
        self.offer(None, frame, |owner| owner == user_id);
    }

    /// [`Subscribers::broadcast`] a frame that replaces the one before of its kind,
    /// and keep it for streams that go live later.
    pub fn broadcast_snapshot(&self, frame: &str) {
        *self.snapshot.borrow_mut() = Some(frame.to_owned());
        self.broadcast(frame);
    }

    fn offer(&self, seq: Option<u64>, frame: &str, to: impl Fn(&str) -> bool) {
        self.entries.borrow_mut().retain(|entry| {
            if !entry.live || !to(&entry.user_id) {
                return true;
            }
            let offered = entry.outbox.borrow_mut().offer(seq, frame);
            match offered {
                Offered::Queued => {
                    let bytes = entry.outbox.borrow().bytes();
                    let mut peaks = self.peaks.get();
                    peaks.outbox_bytes = peaks.outbox_bytes.max(bytes);
                    self.peaks.set(peaks);
                    true
                }
                Offered::AlreadySent => true,
                Offered::Overflowed => {
                    let mut peaks = self.peaks.get();
                    peaks.dropped_behind += 1;
                    self.peaks.set(peaks);
                    #[cfg(target_arch = "wasm32")]
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

    /// The high-water marks so far.
    pub fn peaks(&self) -> Peaks {
        self.peaks.get()
    }

    fn note_page(&self, events: usize, bytes: usize) {
        let mut peaks = self.peaks.get();
        peaks.replay_page_events = peaks.replay_page_events.max(events);
        peaks.replay_page_bytes = peaks.replay_page_bytes.max(bytes);
        self.peaks.set(peaks);
    }

    /// Open streams (replaying or live).
    pub fn count(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Open streams of `user_id` at `now_ms`.
    pub fn count_of(&self, user_id: &str, now_ms: i64) -> usize {
        self.expire(now_ms);
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

    /// Ends every stream.
    pub fn close_all(&self) -> usize {
        self.close_where(|_| true)
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
            let bytes = page.iter().map(|(_, frame)| frame.len()).sum();
            state.slot.subscribers.note_page(page.len(), bytes);
            let mut chunk = Vec::with_capacity(bytes);
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
    let left_ms = state.slot.expires_at - crate::clock::now_ms();
    if left_ms <= 0 {
        return None;
    }
    let timer = state.keep_alive.take().unwrap_or_else(|| {
        let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(u64::MAX));
        Delay::from(KEEP_ALIVE_INTERVAL.min(left))
    });
    match select(state.slot.next_frame(), timer).await {
        Either::Left((Some(frame), timer)) => {
            state.keep_alive = Some(timer);
            Some(frame.into_bytes())
        }
        Either::Left((None, _)) => None,
        Either::Right(_) if state.slot.expires_at <= crate::clock::now_ms() => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_per_user_until_closed_dropped_or_expired() {
        let subscribers = Rc::new(Subscribers::new());
        let a1 = subscribers.open("ada", 0, 1_000);
        let a2 = subscribers.open("ada", 10, 1_000);
        let b1 = subscribers.open("bob", 20, 1_000);
        assert_eq!(subscribers.count_of("ada", 30), 2);
        assert_eq!(subscribers.count_of("bob", 30), 1);
        drop(a2);
        assert_eq!(
            subscribers.count_of("ada", 30),
            1,
            "a dropped stream frees its slot"
        );
        // Past its maximum age a stream ends and its slot is free, reported or not.
        assert_eq!(subscribers.count_of("ada", 1_000), 0);
        assert!(a1.ended());
        assert_eq!(subscribers.count_of("bob", 1_000), 1);
        assert_eq!(subscribers.close_where(|user| user == "bob"), 1);
        assert!(b1.ended());
        assert_eq!(subscribers.count(), 0);
    }

    #[test]
    fn broadcasts_reach_live_streams_only_and_a_replaying_one_after_it_caught_up() {
        let subscribers = Rc::new(Subscribers::new());
        let live = subscribers.open("ada", 0, 60_000);
        live.go_live(0);
        let replaying = subscribers.open("bob", 0, 60_000);
        subscribers.broadcast_event(1, "one");
        subscribers.broadcast_snapshot("viewers");
        assert_eq!(live.waiting(), ["one", "viewers"]);
        assert!(replaying.waiting().is_empty(), "the log has it");
        // It caught up after reading event 1 from the log.
        replaying.go_live(1);
        subscribers.broadcast_event(1, "one again");
        subscribers.broadcast_event(2, "two");
        assert_eq!(replaying.waiting(), ["viewers", "two"]);
        assert_eq!(live.waiting(), ["two"]);
    }

    #[test]
    fn a_stream_that_falls_behind_is_dropped_and_the_others_go_on() {
        let subscribers = Rc::new(Subscribers::new());
        let reader = subscribers.open("ada", 0, 60_000);
        reader.go_live(0);
        let stalled = subscribers.open("bob", 0, 60_000);
        stalled.go_live(0);
        let frame = "z".repeat(64 * 1024);
        for seq in 1..=64 {
            subscribers.broadcast_event(seq, &frame);
            assert_eq!(reader.waiting().len(), 1);
        }
        assert!(stalled.ended(), "the stalled stream was dropped");
        assert!(!reader.ended());
        assert_eq!(subscribers.count(), 1);
        assert!(
            stalled.outbox.borrow().bytes() == 0,
            "its frames were freed"
        );
    }
}
