//! The outbox: every event the runner produced that its `SessionAgent` has not yet
//! acknowledged, numbered for exactly-once delivery.
//!
//! Events are numbered 1, 2, 3, ... for the lifetime of the process (one epoch).
//! An event leaves the outbox only when an `ack` (or a `welcome`'s `acked`) covers
//! its number; until then it is resent after every reconnect. The outbox is bounded:
//! a full outbox refuses a push and hands the event back, and the caller (see
//! [`super::EventQueue`]) makes the producer wait for room. Events are never dropped.
//! A plain type: no I/O, no async, no clock.

use std::collections::VecDeque;

use nightshift_protocol::events::EventBody;

/// One numbered event waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEvent {
    pub local_seq: u64,
    pub turn_id: String,
    pub event: EventBody,
}

/// A push into a full outbox; carries the event back so nothing is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxFull {
    pub turn_id: String,
    pub event: EventBody,
}

#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    /// The number the next pushed event gets.
    next_seq: u64,
    /// Unacknowledged events, oldest first, with consecutive numbers.
    pending: VecDeque<OutboundEvent>,
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            capacity: capacity.max(1),
            next_seq: 1,
            pending: VecDeque::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.pending.len() >= self.capacity
    }

    /// The number of the newest event ever pushed (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Numbers and keeps an event, returning its number.
    // The refused event is handed back whole so the caller can wait and push it
    // again; it is moved, not copied, so its size costs nothing.
    #[allow(clippy::result_large_err)]
    pub fn push(&mut self, turn_id: String, event: EventBody) -> Result<u64, OutboxFull> {
        if self.is_full() {
            return Err(OutboxFull { turn_id, event });
        }
        let local_seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back(OutboundEvent {
            local_seq,
            turn_id,
            event,
        });
        Ok(local_seq)
    }

    /// Forgets every event numbered `up_to` or lower; returns how many were removed.
    /// Acknowledgements of numbers not yet produced cover only what exists.
    pub fn ack(&mut self, up_to: u64) -> usize {
        let mut removed = 0;
        while self
            .pending
            .front()
            .is_some_and(|event| event.local_seq <= up_to)
        {
            self.pending.pop_front();
            removed += 1;
        }
        removed
    }

    /// The kept events numbered above `seq`, oldest first.
    pub fn after(&self, seq: u64) -> impl Iterator<Item = &OutboundEvent> {
        // Numbers are consecutive, so the first one to send sits at a computable
        // offset instead of being searched for.
        let first = self.pending.front().map_or(0, |event| event.local_seq);
        let skip = seq.saturating_add(1).saturating_sub(first);
        self.pending
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> EventBody {
        EventBody::TextDelta {
            text: s.to_string(),
        }
    }

    fn seqs<'a>(events: impl Iterator<Item = &'a OutboundEvent>) -> Vec<u64> {
        events.map(|e| e.local_seq).collect()
    }

    #[test]
    fn numbers_events_from_one_without_gaps() {
        let mut outbox = Outbox::new(10);
        assert_eq!(outbox.last_seq(), 0);
        assert_eq!(outbox.push("t".into(), text("a")), Ok(1));
        assert_eq!(outbox.push("t".into(), text("b")), Ok(2));
        assert_eq!(outbox.push("u".into(), text("c")), Ok(3));
        assert_eq!(outbox.last_seq(), 3);
        assert_eq!(seqs(outbox.after(0)), vec![1, 2, 3]);
    }

    #[test]
    fn ack_trims_and_numbering_continues() {
        let mut outbox = Outbox::new(10);
        for s in ["a", "b", "c", "d"] {
            outbox.push("t".into(), text(s)).unwrap();
        }
        assert_eq!(outbox.ack(2), 2);
        assert_eq!(seqs(outbox.after(0)), vec![3, 4]);
        // A repeated or older ack changes nothing.
        assert_eq!(outbox.ack(1), 0);
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox.push("t".into(), text("e")), Ok(5));
        // An ack beyond what exists clears only what exists.
        assert_eq!(outbox.ack(99), 3);
        assert!(outbox.is_empty());
        assert_eq!(outbox.push("t".into(), text("f")), Ok(6));
    }

    #[test]
    fn after_resends_only_what_follows_the_acked_number() {
        let mut outbox = Outbox::new(10);
        for s in ["a", "b", "c", "d", "e"] {
            outbox.push("t".into(), text(s)).unwrap();
        }
        outbox.ack(1);
        assert_eq!(seqs(outbox.after(3)), vec![4, 5]);
        assert_eq!(seqs(outbox.after(0)), vec![2, 3, 4, 5]);
        assert_eq!(seqs(outbox.after(5)), Vec::<u64>::new());
        assert_eq!(seqs(outbox.after(u64::MAX)), Vec::<u64>::new());
        let resent: Vec<_> = outbox.after(3).map(|e| e.event.clone()).collect();
        assert_eq!(resent, vec![text("d"), text("e")]);
    }

    #[test]
    fn a_full_outbox_refuses_and_returns_the_event() {
        let mut outbox = Outbox::new(2);
        outbox.push("t".into(), text("a")).unwrap();
        outbox.push("t".into(), text("b")).unwrap();
        assert!(outbox.is_full());
        let refused = outbox.push("t".into(), text("c")).unwrap_err();
        assert_eq!(
            refused,
            OutboxFull {
                turn_id: "t".into(),
                event: text("c")
            }
        );
        // The refused event did not use up a number.
        outbox.ack(1);
        assert_eq!(outbox.push("t".into(), text("c")), Ok(3));
    }
}
