//! The `events` and `runner_epochs` tables: appending to the event log with the
//! next `seq`, reading pages of it back, the queries over one turn's events,
//! compacting a finished turn, and each runner epoch's high-water mark.

use nightshift_protocol::events::{EventBody, SessionEvent};
use serde::Deserialize;

use super::{SessionStore, Sql, SqlValue};
use crate::event_log::{ReplyText, Sequencer, plan_compaction};

#[derive(Deserialize)]
struct EventRow {
    seq: u64,
    turn_id: Option<String>,
    body: String,
    at: i64,
}

impl EventRow {
    fn into_event(self) -> Result<SessionEvent, serde_json::Error> {
        Ok(SessionEvent {
            seq: self.seq,
            turn_id: self.turn_id,
            at: self.at,
            body: serde_json::from_str(&self.body)?,
        })
    }
}

/// What [`SessionStore::compact_turn`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Runs of deltas joined into one `text` event each.
    pub runs: usize,
    /// Delta rows deleted.
    pub deltas_removed: usize,
}

#[derive(Deserialize)]
struct Count {
    value: u64,
}

impl<S: Sql> SessionStore<S> {
    /// Stores an event with the next `seq`. `runner` is the `(epoch, local_seq)` of an
    /// event that came from a runner.
    pub fn append_event(
        &self,
        turn_id: Option<&str>,
        runner: Option<(&str, u64)>,
        body: EventBody,
        at: i64,
    ) -> Result<SessionEvent, S::Error> {
        let last: Vec<Count> =
            self.rows("SELECT COALESCE(MAX(seq), 0) AS value FROM events", &[])?;
        let seq = Sequencer::after(last.first().map_or(0, |row| row.value)).next_seq();
        let json = serde_json::to_string(&body)?;
        self.run(
            "INSERT INTO events (seq, turn_id, epoch, local_seq, body, at) VALUES (?, ?, ?, ?, ?, ?)",
            &[
                SqlValue::unsigned(seq),
                SqlValue::optional_text(turn_id),
                SqlValue::optional_text(runner.map(|(epoch, _)| epoch)),
                SqlValue::optional_unsigned(runner.map(|(_, local_seq)| local_seq)),
                SqlValue::Text(json),
                SqlValue::Integer(at),
            ],
        )?;
        Ok(SessionEvent {
            seq,
            turn_id: turn_id.map(str::to_owned),
            at,
            body,
        })
    }

    /// At most `limit` events after `after`, in order (one page of a replay).
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<SessionEvent>, S::Error> {
        self.events(
            "SELECT seq, turn_id, body, at FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            &[
                SqlValue::unsigned(after),
                SqlValue::unsigned(u64::try_from(limit).unwrap_or(u64::MAX)),
            ],
        )
    }

    /// The reply text of a turn: its text, concatenated in order.
    pub fn turn_reply(&self, turn_id: &str) -> Result<Option<String>, S::Error> {
        let events = self.events(
            "SELECT seq, turn_id, body, at FROM events \
             WHERE turn_id = ? AND (body LIKE '{\"type\":\"text_delta\"%' \
                OR body LIKE '{\"type\":\"text\"%') ORDER BY seq",
            &[SqlValue::text(turn_id)],
        )?;
        let mut reply = ReplyText::new();
        for event in events {
            reply.push(&event.body);
        }
        Ok(reply.finish())
    }

    /// Joins each run of the ended turn `turn_id`'s text deltas into one `text`
    /// event at the run's last `seq` and deletes the run's other deltas
    /// ([`plan_compaction`]). Runs in one synchronous step of the object, so a
    /// reader sees the log before or after, never half of it. Compacting again
    /// changes nothing.
    pub fn compact_turn(&self, turn_id: &str) -> Result<Compaction, S::Error> {
        let events = self.events(
            "SELECT seq, turn_id, body, at FROM events WHERE turn_id = ? ORDER BY seq",
            &[SqlValue::text(turn_id)],
        )?;
        let runs = plan_compaction(events.iter().map(|event| (event.seq, &event.body)));
        let mut compaction = Compaction::default();
        for run in runs {
            let body = EventBody::Text {
                text: run.text,
                from_seq: run.from_seq,
            };
            self.run(
                "UPDATE events SET body = ? WHERE seq = ?",
                &[
                    SqlValue::Text(serde_json::to_string(&body)?),
                    SqlValue::unsigned(run.to_seq),
                ],
            )?;
            // Every event of this turn in the range is one of the run's deltas; other
            // turns' events in between are kept.
            self.run(
                "DELETE FROM events WHERE turn_id = ? AND seq >= ? AND seq < ?",
                &[
                    SqlValue::text(turn_id),
                    SqlValue::unsigned(run.from_seq),
                    SqlValue::unsigned(run.to_seq),
                ],
            )?;
            compaction.runs += 1;
            compaction.deltas_removed += run.deltas - 1;
        }
        Ok(compaction)
    }

    /// Whether turn `turn_id` already has its `turn_finished` event.
    pub fn turn_finished(&self, turn_id: &str) -> Result<bool, S::Error> {
        let rows: Vec<Count> = self.rows(
            "SELECT COUNT(*) AS value FROM events \
             WHERE turn_id = ? AND body LIKE '{\"type\":\"turn_finished\"%'",
            &[SqlValue::text(turn_id)],
        )?;
        Ok(rows.first().is_some_and(|row| row.value > 0))
    }

    /// The events that open or close questions, in order.
    pub fn question_events(&self) -> Result<Vec<SessionEvent>, S::Error> {
        self.events(
            "SELECT seq, turn_id, body, at FROM events \
             WHERE body LIKE '{\"type\":\"question_%' \
                OR body LIKE '{\"type\":\"turn_finished\"%' \
                OR body LIKE '{\"type\":\"turn_interrupted\"%' \
             ORDER BY seq",
            &[],
        )
    }

    fn events(&self, query: &str, params: &[SqlValue]) -> Result<Vec<SessionEvent>, S::Error> {
        let rows: Vec<EventRow> = self.rows(query, params)?;
        rows.into_iter().map(|row| Ok(row.into_event()?)).collect()
    }

    /// The highest `local_seq` taken in from runner `epoch`, if any.
    pub fn epoch_acked(&self, epoch: &str) -> Result<Option<u64>, S::Error> {
        let rows: Vec<Count> = self.rows(
            "SELECT acked AS value FROM runner_epochs WHERE epoch = ?",
            &[SqlValue::text(epoch)],
        )?;
        Ok(rows.first().map(|row| row.value))
    }

    pub fn set_epoch_acked(&self, epoch: &str, acked: u64) -> Result<(), S::Error> {
        self.run(
            "INSERT INTO runner_epochs (epoch, acked) VALUES (?, ?) \
             ON CONFLICT (epoch) DO UPDATE SET acked = excluded.acked",
            &[SqlValue::text(epoch), SqlValue::unsigned(acked)],
        )
    }
}
