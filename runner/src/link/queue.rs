//! The [`EventQueue`]: the outbox shared between the producers of events (turns) and
//! the link that delivers them.
//!
//! When the outbox is full (the link has been down long enough for
//! `RUNNER_OUTBOX_CAPACITY` events to pile up) a producer waits in [`EventQueue::push`]
//! until acknowledgements make room: the agent pauses rather than losing events.

use std::sync::{Arc, Mutex, MutexGuard};

use nightshift_protocol::events::EventBody;
use tokio::sync::{Semaphore, watch};

use super::outbox::{OutboundEvent, Outbox};

#[derive(Clone)]
pub struct EventQueue {
    shared: Arc<Shared>,
}

struct Shared {
    outbox: Mutex<Outbox>,
    /// One permit per free place in the outbox. A producer takes one before pushing;
    /// acknowledgements give them back.
    room: Semaphore,
    /// The number of the newest pushed event, so the link wakes up to send it.
    newest: watch::Sender<u64>,
}

impl EventQueue {
    pub fn new(capacity: usize) -> EventQueue {
        let outbox = Outbox::new(capacity);
        let room = Semaphore::new(outbox.capacity());
        let (newest, _) = watch::channel(0);
        EventQueue {
            shared: Arc::new(Shared {
                outbox: Mutex::new(outbox),
                room,
                newest,
            }),
        }
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // A panic while holding the lock cannot leave the outbox half-changed (every
        // method changes it in one step), so a poisoned lock is still usable.
        self.shared
            .outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Numbers and keeps an event for delivery, waiting while the outbox is full.
    pub async fn push(&self, turn_id: &str, event: EventBody) -> u64 {
        let mut waiting = (turn_id.to_string(), event);
        loop {
            match self.shared.room.acquire().await {
                // The place is now ours; it comes back when the event is acknowledged.
                Ok(permit) => permit.forget(),
                // The semaphore is never closed; should it be, retry slowly rather
                // than spin or drop the event.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
            let pushed = self.outbox().push(waiting.0, waiting.1);
            match pushed {
                Ok(local_seq) => {
                    self.shared.newest.send_replace(local_seq);
                    return local_seq;
                }
                // Only reachable if permits and free places ever disagreed: keep the
                // event and wait for the next acknowledgement.
                Err(full) => waiting = (full.turn_id, full.event),
            }
        }
    }

    /// Forgets everything up to `up_to` and gives the places back to producers.
    pub fn ack(&self, up_to: u64) {
        let removed = self.outbox().ack(up_to);
        if removed > 0 {
            self.shared.room.add_permits(removed);
        }
    }

    /// Up to `limit` kept events numbered above `seq`, oldest first.
    pub fn after(&self, seq: u64, limit: usize) -> Vec<OutboundEvent> {
        self.outbox().after(seq).take(limit).cloned().collect()
    }

    pub fn last_seq(&self) -> u64 {
        self.outbox().last_seq()
    }

    /// How many events wait for an acknowledgement.
    pub fn unacknowledged(&self) -> usize {
        self.outbox().len()
    }

    /// Changes whenever an event is pushed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.newest.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn text(s: &str) -> EventBody {
        EventBody::TextDelta {
            text: s.to_string(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_blocks_the_producer_until_an_ack() {
        let queue = EventQueue::new(2);
        queue.push("t", text("a")).await;
        queue.push("t", text("b")).await;

        let producer = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.push("t", text("c")).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!producer.is_finished(), "the third push must wait for room");

        queue.ack(1);
        let seq = tokio::time::timeout(Duration::from_secs(2), producer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seq, 3);
        let kept: Vec<u64> = queue.after(0, 10).iter().map(|e| e.local_seq).collect();
        assert_eq!(kept, vec![2, 3]);
    }

    #[tokio::test]
    async fn subscribers_see_new_events() {
        let queue = EventQueue::new(10);
        let mut newest = queue.subscribe();
        queue.push("t", text("a")).await;
        tokio::time::timeout(Duration::from_secs(1), newest.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*newest.borrow_and_update(), 1);
    }
}
