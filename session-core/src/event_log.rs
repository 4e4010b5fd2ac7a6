//! Sequencing and exactly-once rules of a session's event log.
//!
//! Every event a browser sees carries a per-session `seq` (1, 2, 3, ... without gaps)
//! assigned when the event is first stored. Runner events arrive numbered by the
//! runner (`epoch`, `local_seq`; see `nightshift_protocol::runner_link`); the
//! `SessionAgent` keeps, per epoch, the highest `local_seq` it has taken in (the
//! acknowledged high-water mark). [`classify_runner_event`] decides from that mark
//! whether a frame is new, a resend to ignore, or out of order.
//!
//! This module also formats stored events as SSE frames, rebuilds a turn's reply
//! from its text, and plans the compaction of a finished turn ([`plan_compaction`]):
//! each run of the turn's `text_delta`s becomes one [`EventBody::Text`] at the run's
//! last `seq`, so replaying a finished session costs its messages, not its tokens.
//! It must not depend on storage or sockets.

use nightshift_protocol::events::{EventBody, SessionEvent};

/// What to do with a runner's event frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerIntake {
    /// The next event of the epoch: store it, assign a `seq`, then acknowledge
    /// `local_seq`.
    Accept,
    /// Already taken in (a resend after a reconnect): store nothing, acknowledge the
    /// high-water mark again so the runner can drop it.
    Duplicate,
    /// Events before this one are missing. Storing it would lose them forever once it
    /// is acknowledged, so nothing is stored; the link should be restarted so the
    /// runner resends from the high-water mark the next `welcome` names.
    OutOfOrder { expected: u64 },
}

/// Classifies an event frame with `local_seq`, given the epoch's high-water mark
/// `acked` (0 before the epoch's first event).
pub fn classify_runner_event(acked: u64, local_seq: u64) -> RunnerIntake {
    if local_seq <= acked {
        RunnerIntake::Duplicate
    } else if local_seq == acked + 1 {
        RunnerIntake::Accept
    } else {
        RunnerIntake::OutOfOrder {
            expected: acked + 1,
        }
    }
}

/// The `acked` a `welcome` names for a runner's epoch: everything up to it is
/// stored, and the runner resends what comes after. A new epoch starts at 0.
pub fn welcome_acked(stored_high_water: Option<u64>) -> u64 {
    stored_high_water.unwrap_or(0)
}

/// Hands out `seq` numbers: the next one after the highest stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequencer {
    last_seq: u64,
}

impl Sequencer {
    /// Starts after `last_seq`, the highest `seq` in storage (0 when empty).
    pub fn after(last_seq: u64) -> Self {
        Self { last_seq }
    }

    /// The `seq` for the next stored event.
    pub fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

/// Rebuilds the reply text of a turn from its events, in `seq` order: the
/// concatenation of its `text_delta`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyText {
    text: String,
}

impl ReplyText {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, body: &EventBody) {
        if let EventBody::TextDelta { text } | EventBody::Text { text, .. } = body {
            self.text.push_str(text);
        }
    }

    /// The reply, or `None` when the turn produced no text.
    pub fn finish(self) -> Option<String> {
        if self.text.is_empty() {
            None
        } else {
            Some(self.text)
        }
    }
}

/// One run of a turn's text to join: the `text_delta`s with `seq` from `from_seq`
/// to `to_seq` (and no other event of the turn between them) become one
/// [`EventBody::Text`] stored at `to_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRun {
    pub from_seq: u64,
    pub to_seq: u64,
    /// How many deltas the run joins (at least 2: a lone delta is left as it is).
    pub deltas: usize,
    pub text: String,
}

/// The runs of text to join in one finished turn, given all of its events in `seq`
/// order. A run ends at any other event of the turn (a tool call, an error, a
/// question), because a reader's view ends a block of text there too; events of
/// other turns or of no turn are not passed in, so they never split a run. A run
/// already joined (an [`EventBody::Text`]) is not joined again, which makes
/// compacting a turn twice change nothing.
pub fn plan_compaction<'a>(events: impl IntoIterator<Item = (u64, &'a EventBody)>) -> Vec<TextRun> {
    let mut runs = Vec::new();
    let mut open: Option<TextRun> = None;
    for (seq, body) in events {
        match body {
            EventBody::TextDelta { text } => match open.as_mut() {
                Some(run) => {
                    run.to_seq = seq;
                    run.deltas += 1;
                    run.text.push_str(text);
                }
                None => {
                    open = Some(TextRun {
                        from_seq: seq,
                        to_seq: seq,
                        deltas: 1,
                        text: text.clone(),
                    })
                }
            },
            _ => runs.extend(open.take()),
        }
    }
    runs.extend(open);
    runs.retain(|run| run.deltas > 1);
    runs
}

/// An SSE frame for one stored event: `id: <seq>`, then its JSON as `data:`. JSON
/// never contains a raw newline, so one `data:` line always suffices.
pub fn sse_frame(event: &SessionEvent) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(event)?;
    Ok(format!("id: {}\ndata: {}\n\n", event.seq, json))
}

/// An SSE frame without an id, for streams that do not support replay.
pub fn sse_data_frame<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(format!("data: {}\n\n", serde_json::to_string(value)?))
}

/// The comment line sent on idle SSE streams so that proxies and clients keep them
/// open.
pub const SSE_KEEP_ALIVE: &str = ": keep-alive\n\n";

/// Parses a client's replay position (`Last-Event-ID` or `?after=`); an empty value
/// means "from the start".
pub fn parse_replay_position(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() {
        Some(0)
    } else {
        value.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::events::{TokenUsage, TurnOutcome};

    use super::*;

    #[test]
    fn the_next_local_seq_is_accepted() {
        assert_eq!(classify_runner_event(0, 1), RunnerIntake::Accept);
        assert_eq!(classify_runner_event(41, 42), RunnerIntake::Accept);
    }

    #[test]
    fn resends_are_duplicates() {
        assert_eq!(classify_runner_event(5, 5), RunnerIntake::Duplicate);
        assert_eq!(classify_runner_event(5, 1), RunnerIntake::Duplicate);
    }

    #[test]
    fn a_gap_is_out_of_order() {
        assert_eq!(
            classify_runner_event(0, 2),
            RunnerIntake::OutOfOrder { expected: 1 }
        );
        assert_eq!(
            classify_runner_event(7, 10),
            RunnerIntake::OutOfOrder { expected: 8 }
        );
    }

    #[test]
    fn welcome_names_the_stored_high_water_mark() {
        assert_eq!(welcome_acked(None), 0);
        assert_eq!(welcome_acked(Some(12)), 12);
    }

    #[test]
    fn sequencer_continues_after_storage() {
        let mut sequencer = Sequencer::after(9);
        assert_eq!(sequencer.next_seq(), 10);
        assert_eq!(sequencer.next_seq(), 11);
        assert_eq!(sequencer.last_seq(), 11);
        assert_eq!(Sequencer::after(0).next_seq(), 1);
    }

    #[test]
    fn reply_is_the_concatenated_text_deltas() {
        let mut reply = ReplyText::new();
        reply.push(&EventBody::TextDelta { text: "Hel".into() });
        reply.push(&EventBody::ToolCallStarted {
            call_id: "c".into(),
            tool: "bash".into(),
            args: serde_json::json!({}),
        });
        reply.push(&EventBody::TextDelta { text: "lo".into() });
        reply.push(&EventBody::TurnFinished {
            outcome: TurnOutcome::Done,
            usage: TokenUsage::default(),
            error: None,
            duration_ms: 0,
        });
        assert_eq!(reply.finish().as_deref(), Some("Hello"));
        assert_eq!(ReplyText::new().finish(), None);
    }

    fn delta(text: &str) -> EventBody {
        EventBody::TextDelta { text: text.into() }
    }

    fn tool_started() -> EventBody {
        EventBody::ToolCallStarted {
            call_id: "c".into(),
            tool: "bash".into(),
            args: serde_json::json!({}),
        }
    }

    #[test]
    fn compaction_joins_each_run_of_deltas_between_other_events() {
        let turn = [
            (3, delta("He")),
            (4, delta("llo")),
            (7, delta(" there")),
            (8, tool_started()),
            (9, delta("alone")),
            (10, tool_started()),
            (12, delta("a")),
            (13, delta("b")),
        ];
        let runs = plan_compaction(turn.iter().map(|(seq, body)| (*seq, body)));
        assert_eq!(
            runs,
            vec![
                TextRun {
                    from_seq: 3,
                    to_seq: 7,
                    deltas: 3,
                    text: "Hello there".into()
                },
                TextRun {
                    from_seq: 12,
                    to_seq: 13,
                    deltas: 2,
                    text: "ab".into()
                },
            ],
            "seq 9 is a lone delta and stays as it is"
        );
    }

    #[test]
    fn a_compacted_turn_has_nothing_left_to_join() {
        let turn = [
            (
                7,
                EventBody::Text {
                    text: "Hello there".into(),
                    from_seq: 3,
                },
            ),
            (8, tool_started()),
            (9, delta("alone")),
        ];
        assert!(plan_compaction(turn.iter().map(|(seq, body)| (*seq, body))).is_empty());
    }

    #[test]
    fn the_reply_reads_joined_text_like_deltas() {
        let mut reply = ReplyText::new();
        reply.push(&EventBody::Text {
            text: "Hello ".into(),
            from_seq: 1,
        });
        reply.push(&delta("again"));
        assert_eq!(reply.finish().as_deref(), Some("Hello again"));
    }

    #[test]
    fn sse_frames_carry_seq_as_id_and_flat_json() {
        let event = SessionEvent {
            seq: 3,
            turn_id: None,
            at: 5,
            body: EventBody::TextDelta {
                text: "a\nb".into(),
            },
        };
        let frame = sse_frame(&event).unwrap();
        assert_eq!(
            frame,
            "id: 3\ndata: {\"seq\":3,\"turn_id\":null,\"at\":5,\"type\":\"text_delta\",\"text\":\"a\\nb\"}\n\n"
        );
        assert_eq!(frame.matches('\n').count(), 3);
    }

    #[test]
    fn replay_positions_parse_or_refuse() {
        assert_eq!(parse_replay_position(""), Some(0));
        assert_eq!(parse_replay_position(" 17 "), Some(17));
        assert_eq!(parse_replay_position("x"), None);
        assert_eq!(parse_replay_position("-1"), None);
    }
}
