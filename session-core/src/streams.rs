//! The rules of a live event stream (SSE) held in bounded memory: replaying the
//! stored log page by page, and a bounded outbox per live subscriber.
//!
//! A stream starts by replaying the log after the client's position (`Last-Event-ID`)
//! in pages of at most [`REPLAY_PAGE_SIZE`] events, each written to the client before
//! the next is read ([`Replay`]). The page that comes back short was read up to the
//! end of the log; in that same synchronous step the subscriber goes live with an
//! [`Outbox`] that starts after the last `seq` it was given, so every later event
//! reaches it once and none is skipped. Frames with a `seq` it already has are
//! ignored, whatever the order of storing and broadcasting.
//!
//! A live subscriber's outbox holds at most [`OUTBOX_MAX_BYTES`]. A subscriber that
//! reads slower than events come in (or not at all) overflows it: its frames are
//! discarded at once and its stream ends, and the client resumes with
//! `Last-Event-ID` from the log. Memory per stream is therefore one page while
//! replaying and one outbox while live, however long the log and however stalled the
//! client.
//!
//! Nothing here touches storage, sockets or a clock: callers read pages and move
//! frames.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

/// Events read from the log per query while replaying.
pub const REPLAY_PAGE_SIZE: usize = 256;

/// Bytes of frames a live subscriber may have waiting before it is dropped.
pub const OUTBOX_MAX_BYTES: usize = 1024 * 1024;

/// What one waiting frame costs besides its text (its `String` and queue slot).
pub const FRAME_OVERHEAD_BYTES: usize = 64;

/// Open streams a user may hold at once, unless configured otherwise.
pub const DEFAULT_MAX_OPEN_STREAMS: usize = 20;

/// How long a stream lasts before the server ends it (the client reconnects where
/// it left off), unless configured otherwise: this bounds how long the slot of a
/// client that vanished unnoticed stays taken.
pub const DEFAULT_STREAM_MAX_AGE_MS: i64 = 5 * 60 * 1000;

/// Where a replay stands: everything up to `after` has been given to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    after: u64,
    page_size: usize,
}

/// What a replay does after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayStep {
    /// The page was full: there may be more; read the next one after sending it.
    More,
    /// The page reached the end of the log: go live after `last_seq` now, in the
    /// same synchronous step as the read.
    CaughtUp { last_seq: u64 },
}

impl Replay {
    /// A replay of everything after `after`, `page_size` events at a time (at least 1).
    pub fn new(after: u64, page_size: usize) -> Self {
        Self {
            after,
            page_size: page_size.max(1),
        }
    }

    /// The position to read the next page after (`WHERE seq > after`).
    pub fn after(&self) -> u64 {
        self.after
    }

    /// How many events to read (`LIMIT`).
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Takes the `seq`s of a page just read (ascending, all after [`Replay::after`])
    /// and says what comes next.
    pub fn advance(&mut self, page: &[u64]) -> ReplayStep {
        if let Some(last) = page.last() {
            self.after = self.after.max(*last);
        }
        if page.len() >= self.page_size {
            ReplayStep::More
        } else {
            ReplayStep::CaughtUp {
                last_seq: self.after,
            }
        }
    }
}

/// Why a live subscriber stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It fell too far behind: its outbox overflowed.
    Overflowed,
    /// The server closed it (the viewer lost access, or the object shuts it).
    Closed,
}

/// What [`Outbox::offer`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Queued,
    /// The subscriber already has this `seq` (it came with the replay).
    AlreadySent,
    /// The outbox was full: it is now emptied and ended; drop the subscriber.
    Overflowed,
    /// The outbox had ended before.
    Ended,
}

/// The most bytes [`Outbox::poll_chunk`] joins into one write.
pub const CHUNK_MAX_BYTES: usize = 64 * 1024;

/// The frames waiting for one live subscriber, bounded by bytes.
#[derive(Debug)]
pub struct Outbox {
    frames: VecDeque<String>,
    bytes: usize,
    max_bytes: usize,
    /// The highest `seq` queued or sent; frames at or below it are not queued again.
    last_seq: u64,
    /// The most bytes ever waiting at once.
    peak_bytes: usize,
    ended: Option<Ended>,
    waker: Option<Waker>,
}

fn cost(frame: &str) -> usize {
    frame.len() + FRAME_OVERHEAD_BYTES
}

impl Outbox {
    /// An empty outbox of a subscriber that has everything up to `last_seq`.
    pub fn new(last_seq: u64, max_bytes: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            max_bytes,
            last_seq,
            peak_bytes: 0,
            ended: None,
            waker: None,
        }
    }

    /// Queues `frame` (an event's when `seq` is set, else a frame outside the log).
    /// A frame always fits an empty outbox, so one large event never ends a stream
    /// that keeps up.
    pub fn offer(&mut self, seq: Option<u64>, frame: &str) -> Offered {
        if self.ended.is_some() {
            return Offered::Ended;
        }
        if let Some(seq) = seq
            && seq <= self.last_seq
        {
            return Offered::AlreadySent;
        }
        let cost = cost(frame);
        if !self.frames.is_empty() && self.bytes + cost > self.max_bytes {
            self.end(Ended::Overflowed);
            return Offered::Overflowed;
        }
        if let Some(seq) = seq {
            self.last_seq = seq;
        }
        self.frames.push_back(frame.to_owned());
        self.bytes += cost;
        self.peak_bytes = self.peak_bytes.max(self.bytes);
        self.wake();
        Offered::Queued
    }

    /// The subscriber has been given everything up to `seq` (by a replay).
    pub fn sent_up_to(&mut self, seq: u64) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// Ends the stream now: what waits is discarded (the client resumes from the log).
    pub fn end(&mut self, why: Ended) {
        if self.ended.is_none() {
            self.ended = Some(why);
        }
        self.frames = VecDeque::new();
        self.bytes = 0;
        self.wake();
    }

    pub fn ended(&self) -> Option<Ended> {
        self.ended
    }

    /// The next frame to send; `Ready(None)` once the outbox has ended.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<String>> {
        if let Some(frame) = self.frames.pop_front() {
            self.bytes -= cost(&frame);
            return Poll::Ready(Some(frame));
        }
        if self.ended.is_some() {
            return Poll::Ready(None);
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Every frame waiting (up to [`CHUNK_MAX_BYTES`], and at least one), as one
    /// chunk: a client that fell a little behind (deltas arriving faster than one
    /// write each) catches up in one write instead of one per event. `Ready(None)`
    /// once the outbox has ended.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let mut chunk = match self.poll_next(cx) {
            Poll::Ready(Some(frame)) => frame,
            other => return other,
        };
        while let Some(frame) = self.frames.front()
            && chunk.len() + frame.len() <= CHUNK_MAX_BYTES
        {
            let frame = self.frames.pop_front().unwrap_or_default();
            self.bytes -= cost(&frame);
            chunk.push_str(&frame);
        }
        Poll::Ready(Some(chunk))
    }

    /// Bytes waiting now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The most bytes that ever waited at once.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// Whether a user who holds `open` streams may open one more under `cap`.
pub fn may_open_stream(open: usize, cap: usize) -> bool {
    open < cap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(outbox: &mut Outbox) -> (Vec<String>, bool) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut frames = Vec::new();
        loop {
            match outbox.poll_next(&mut cx) {
                Poll::Ready(Some(frame)) => frames.push(frame),
                Poll::Ready(None) => return (frames, true),
                Poll::Pending => return (frames, false),
            }
        }
    }

    #[test]
    fn frames_waiting_together_leave_in_one_chunk_of_bounded_size() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut outbox = Outbox::new(0, 10 * CHUNK_MAX_BYTES);
        assert_eq!(outbox.poll_chunk(&mut cx), Poll::Pending);
        for seq in 1..=3 {
            outbox.offer(Some(seq), &format!("id: {seq}\n\n"));
        }
        assert_eq!(
            outbox.poll_chunk(&mut cx),
            Poll::Ready(Some("id: 1\n\nid: 2\n\nid: 3\n\n".to_owned()))
        );
        assert_eq!(outbox.bytes(), 0);
        // Large frames: a chunk never exceeds the bound, except one frame alone.
        let big = "x".repeat(CHUNK_MAX_BYTES / 2 + 1);
        outbox.offer(Some(4), &big);
        outbox.offer(Some(5), &big);
        let Poll::Ready(Some(first)) = outbox.poll_chunk(&mut cx) else {
            panic!("a chunk")
        };
        assert_eq!(
            first.len(),
            big.len(),
            "the second frame waits for the next chunk"
        );
        let Poll::Ready(Some(second)) = outbox.poll_chunk(&mut cx) else {
            panic!("a chunk")
        };
        assert_eq!(second.len(), big.len());
        let huge = "y".repeat(CHUNK_MAX_BYTES * 2);
        outbox.offer(Some(6), &huge);
        assert_eq!(outbox.poll_chunk(&mut cx), Poll::Ready(Some(huge)));
        outbox.end(Ended::Closed);
        assert_eq!(outbox.poll_chunk(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn a_replay_reads_full_pages_until_one_comes_back_short() {
        let mut replay = Replay::new(0, 3);
        assert_eq!(replay.after(), 0);
        assert_eq!(replay.advance(&[1, 2, 3]), ReplayStep::More);
        assert_eq!(replay.after(), 3);
        assert_eq!(replay.advance(&[4, 5, 6]), ReplayStep::More);
        assert_eq!(
            replay.advance(&[7]),
            ReplayStep::CaughtUp { last_seq: 7 },
            "a short page was read to the end of the log"
        );
        // A log that ends on a page boundary needs one empty page to know it.
        let mut replay = Replay::new(10, 2);
        assert_eq!(replay.advance(&[11, 12]), ReplayStep::More);
        assert_eq!(replay.advance(&[]), ReplayStep::CaughtUp { last_seq: 12 });
        // Nothing after the client's position: live at once, after it.
        assert_eq!(
            Replay::new(40, 256).advance(&[]),
            ReplayStep::CaughtUp { last_seq: 40 }
        );
        assert_eq!(Replay::new(0, 0).page_size(), 1);
    }

    #[test]
    fn a_live_subscriber_gets_each_later_event_once_in_order() {
        let mut outbox = Outbox::new(7, 1024);
        assert_eq!(outbox.offer(Some(6), "six"), Offered::AlreadySent);
        assert_eq!(outbox.offer(Some(7), "seven"), Offered::AlreadySent);
        assert_eq!(outbox.offer(Some(8), "eight"), Offered::Queued);
        assert_eq!(outbox.offer(None, "presence"), Offered::Queued);
        assert_eq!(outbox.offer(Some(8), "eight again"), Offered::AlreadySent);
        assert_eq!(outbox.offer(Some(9), "nine"), Offered::Queued);
        let (frames, ended) = drain(&mut outbox);
        assert_eq!(frames, ["eight", "presence", "nine"]);
        assert!(!ended);
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_emptied_and_ended() {
        let frame = "x".repeat(100);
        let max = 10 * (100 + FRAME_OVERHEAD_BYTES);
        let mut outbox = Outbox::new(0, max);
        for seq in 1..=10 {
            assert_eq!(outbox.offer(Some(seq), &frame), Offered::Queued);
        }
        assert_eq!(outbox.bytes(), max);
        assert_eq!(outbox.offer(Some(11), &frame), Offered::Overflowed);
        assert_eq!(outbox.ended(), Some(Ended::Overflowed));
        assert_eq!(outbox.bytes(), 0, "its frames are freed at once");
        assert_eq!(outbox.offer(Some(12), &frame), Offered::Ended);
        let (frames, ended) = drain(&mut outbox);
        assert!(frames.is_empty() && ended, "its stream ends");
        assert_eq!(outbox.peak_bytes(), max);
    }

    #[test]
    fn a_subscriber_that_keeps_up_is_never_dropped_even_by_a_large_frame() {
        let mut outbox = Outbox::new(0, 200);
        let big = "y".repeat(10_000);
        for seq in 1..=1_000 {
            assert_eq!(outbox.offer(Some(seq), "small"), Offered::Queued);
            let (frames, _) = drain(&mut outbox);
            assert_eq!(frames.len(), 1);
        }
        assert_eq!(outbox.offer(Some(1_001), &big), Offered::Queued);
        assert_eq!(outbox.offer(Some(1_002), "next"), Offered::Overflowed);
        assert!(outbox.peak_bytes() <= 10_000 + FRAME_OVERHEAD_BYTES);
    }

    #[test]
    fn a_closed_outbox_wakes_its_reader_and_ends() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        struct Flag(AtomicBool);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut outbox = Outbox::new(0, 1024);
        assert_eq!(outbox.poll_next(&mut cx), Poll::Pending);
        outbox.end(Ended::Closed);
        assert!(flag.0.load(Ordering::SeqCst), "the reader was woken");
        assert_eq!(outbox.poll_next(&mut cx), Poll::Ready(None));
        assert_eq!(outbox.ended(), Some(Ended::Closed));
    }

    #[test]
    fn the_stream_cap_admits_up_to_the_cap() {
        assert!(may_open_stream(0, 20));
        assert!(may_open_stream(19, 20));
        assert!(!may_open_stream(20, 20));
        assert!(!may_open_stream(0, 0));
    }
}
