//! The `prompts` table: the queue's open part, the recent history, each prompt's
//! write, and the usage totals added up in SQL.

use nightshift_protocol::api::{Message, MessageState, QueueMode, UsageTotals};
use nightshift_protocol::events::TokenUsage;
use serde::Deserialize;

use super::{SessionStore, Sql, SqlValue};
use crate::queue::{Prompt, PromptQueue};

/// The states of a prompt that is still in the queue.
const OPEN_STATES: &str = "('queued', 'processing')";
/// How many of the newest prompts `GET /messages` shows besides the open ones.
const HISTORY: i64 = 200;

#[derive(Deserialize)]
struct PromptRow {
    id: String,
    content: String,
    state: String,
    queue_order: i64,
    turn_id: Option<String>,
    runner_epoch: Option<String>,
    attempts: u32,
    reply: Option<String>,
    error: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    usage_input: Option<u64>,
    #[serde(default)]
    usage_output: Option<u64>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    collect_until: Option<i64>,
    /// NULL for prompts stored before senders were recorded.
    #[serde(default)]
    sent_by: Option<String>,
}

impl PromptRow {
    fn into_prompt(self) -> Prompt {
        Prompt {
            message: Message {
                id: self.id,
                content: self.content,
                // A state this version does not know cannot run; treat it as failed.
                state: MessageState::parse(&self.state).unwrap_or(MessageState::Failed),
                position: None,
                turn_id: self.turn_id,
                attempts: self.attempts,
                reply: self.reply,
                error: self.error,
                created_at: self.created_at,
                started_at: self.started_at,
                finished_at: self.finished_at,
                mode: self
                    .mode
                    .as_deref()
                    .and_then(QueueMode::parse)
                    .unwrap_or_default(),
                usage: match (self.usage_input, self.usage_output) {
                    (None, None) => None,
                    (input, output) => Some(TokenUsage {
                        input_tokens: input.unwrap_or(0),
                        output_tokens: output.unwrap_or(0),
                        ..TokenUsage::default()
                    }),
                },
                duration_ms: self.duration_ms,
                sent_by: self.sent_by,
            },
            queue_order: self.queue_order,
            runner_epoch: self.runner_epoch,
            collect_until: self.collect_until,
        }
    }
}

impl<S: Sql> SessionStore<S> {
    /// The open part of the queue (prompts waiting or running), in creation order:
    /// what every queue operation works on. Finished prompts are never loaded for
    /// them, so a session's long history costs nothing per prompt.
    pub fn queue(&self) -> Result<PromptQueue, S::Error> {
        self.prompts_where(&format!("state IN {OPEN_STATES}"), &[])
    }

    /// The open queue and the prompt `id` whatever its state (so that editing or
    /// cancelling a finished prompt is told why it cannot be, not that it is
    /// unknown).
    pub fn queue_with(&self, id: &str) -> Result<PromptQueue, S::Error> {
        self.prompts_where(
            &format!("state IN {OPEN_STATES} OR id = ?"),
            &[SqlValue::text(id)],
        )
    }

    /// What `GET /messages` shows: the open queue and the newest [`HISTORY`]
    /// prompts, oldest first.
    pub fn recent_queue(&self) -> Result<PromptQueue, S::Error> {
        self.prompts_where(
            &format!(
                "state IN {OPEN_STATES} OR rowid > (SELECT COALESCE(MAX(rowid), 0) FROM prompts) - {HISTORY}"
            ),
            &[],
        )
    }

    /// The prompt turn `turn_id` runs (or last ran), whatever its state: who sent
    /// it is who is told how the turn ended.
    pub fn prompt_of_turn(&self, turn_id: &str) -> Result<Option<Prompt>, S::Error> {
        let queue = self.prompts_where("turn_id = ?", &[SqlValue::text(turn_id)])?;
        Ok(queue.prompts().first().cloned())
    }

    /// Token usage and time of every finished turn, added up in SQL.
    pub fn usage_totals(&self) -> Result<UsageTotals, S::Error> {
        #[derive(Deserialize)]
        struct Totals {
            input: Option<i64>,
            output: Option<i64>,
            duration: Option<i64>,
            turns: i64,
        }
        let rows: Vec<Totals> = self.rows(
            "SELECT SUM(usage_input) AS input, SUM(usage_output) AS output, \
             SUM(duration_ms) AS duration, COUNT(*) AS turns FROM prompts \
             WHERE state IN ('done', 'failed', 'aborted')",
            &[],
        )?;
        let count = |value: Option<i64>| u64::try_from(value.unwrap_or(0)).unwrap_or(0);
        Ok(rows
            .into_iter()
            .next()
            .map_or_else(UsageTotals::default, |totals| UsageTotals {
                input_tokens: count(totals.input),
                output_tokens: count(totals.output),
                duration_ms: count(totals.duration),
                turns: count(Some(totals.turns)),
            }))
    }

    fn prompts_where(&self, condition: &str, args: &[SqlValue]) -> Result<PromptQueue, S::Error> {
        let rows: Vec<PromptRow> = self.rows(
            &format!("SELECT * FROM prompts WHERE {condition} ORDER BY rowid"),
            args,
        )?;
        Ok(PromptQueue::from_prompts(
            rows.into_iter().map(PromptRow::into_prompt).collect(),
        ))
    }

    /// Inserts or updates one prompt; an update keeps its place in creation order.
    pub fn save_prompt(&self, prompt: &Prompt) -> Result<(), S::Error> {
        let m = &prompt.message;
        self.run(
            "INSERT INTO prompts (id, content, state, queue_order, turn_id, runner_epoch, attempts, \
                                  reply, error, created_at, started_at, finished_at, mode, \
                                  usage_input, usage_output, duration_ms, collect_until, sent_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET content = excluded.content, state = excluded.state, \
                queue_order = excluded.queue_order, \
                turn_id = excluded.turn_id, runner_epoch = excluded.runner_epoch, \
                attempts = excluded.attempts, reply = excluded.reply, error = excluded.error, \
                started_at = excluded.started_at, finished_at = excluded.finished_at, \
                usage_input = excluded.usage_input, usage_output = excluded.usage_output, \
                duration_ms = excluded.duration_ms, collect_until = excluded.collect_until, \
                sent_by = excluded.sent_by",
            &[
                SqlValue::text(&m.id),
                SqlValue::text(&m.content),
                SqlValue::text(m.state.as_str()),
                SqlValue::Integer(prompt.queue_order),
                SqlValue::optional_text(m.turn_id.as_deref()),
                SqlValue::optional_text(prompt.runner_epoch.as_deref()),
                SqlValue::Integer(i64::from(m.attempts)),
                SqlValue::optional_text(m.reply.as_deref()),
                SqlValue::optional_text(m.error.as_deref()),
                SqlValue::Integer(m.created_at),
                SqlValue::optional_integer(m.started_at),
                SqlValue::optional_integer(m.finished_at),
                SqlValue::text(m.mode.as_str()),
                SqlValue::optional_unsigned(m.usage.map(|u| u.input_tokens)),
                SqlValue::optional_unsigned(m.usage.map(|u| u.output_tokens)),
                SqlValue::optional_unsigned(m.duration_ms),
                SqlValue::optional_integer(prompt.collect_until),
                SqlValue::optional_text(m.sent_by.as_deref()),
            ],
        )
    }
}
