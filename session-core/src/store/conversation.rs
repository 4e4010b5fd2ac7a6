//! The session's copy of the built-in agent's conversation (table `conversation`,
//! one JSON [`ConversationEntry`] per index), written by the sandbox's runner and read
//! back by a runner that starts without it. The runner is the only writer, but it is
//! the sandbox's and so untrusted: writes are bounded in count and size, and may not
//! leave a gap.

use nightshift_protocol::conversation::{
    CONVERSATION_PAGE_BYTES, ConversationEntry, ConversationPage, MAX_CONVERSATION_ENTRIES,
    MAX_CONVERSATION_ENTRY_BYTES, MAX_CONVERSATION_WRITE_ENTRIES,
};
use serde::Deserialize;

use super::{SessionStore, Sql, SqlValue};

/// Entries read per query while filling a page.
const READ_BATCH: i64 = 256;

/// Why a write was refused (nothing was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationRefusal {
    /// `from` is past the end: it would leave a gap.
    Gap {
        stored: u64,
    },
    TooManyInWrite,
    TooManyInAll,
    EntryTooLarge,
}

impl ConversationRefusal {
    pub fn message(&self) -> String {
        match self {
            ConversationRefusal::Gap { stored } => {
                format!("a write must start at or before the end ({stored} entries kept)")
            }
            ConversationRefusal::TooManyInWrite => {
                format!("at most {MAX_CONVERSATION_WRITE_ENTRIES} entries per write")
            }
            ConversationRefusal::TooManyInAll => {
                format!("a session keeps at most {MAX_CONVERSATION_ENTRIES} entries")
            }
            ConversationRefusal::EntryTooLarge => {
                format!("an entry is at most {MAX_CONVERSATION_ENTRY_BYTES} bytes")
            }
        }
    }
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[derive(Deserialize)]
struct Stored {
    idx: i64,
    entry: String,
}

impl<S: Sql> SessionStore<S> {
    /// How many entries are kept.
    pub fn conversation_len(&self) -> Result<u64, S::Error> {
        let rows: Vec<Count> = self.rows("SELECT COUNT(*) AS n FROM conversation", &[])?;
        Ok(rows.first().map_or(0, |c| u64::try_from(c.n).unwrap_or(0)))
    }

    /// Replaces the entries from `from` on with `entries`; answers how many are kept
    /// then, or why nothing was written.
    pub fn write_conversation(
        &self,
        from: u64,
        entries: &[ConversationEntry],
    ) -> Result<Result<u64, ConversationRefusal>, S::Error> {
        let stored = self.conversation_len()?;
        if from > stored {
            return Ok(Err(ConversationRefusal::Gap { stored }));
        }
        if entries.len() > MAX_CONVERSATION_WRITE_ENTRIES {
            return Ok(Err(ConversationRefusal::TooManyInWrite));
        }
        let end = from + entries.len() as u64;
        if end > MAX_CONVERSATION_ENTRIES {
            return Ok(Err(ConversationRefusal::TooManyInAll));
        }
        let mut encoded = Vec::with_capacity(entries.len());
        for entry in entries {
            let json = serde_json::to_string(entry)?;
            if json.len() > MAX_CONVERSATION_ENTRY_BYTES {
                return Ok(Err(ConversationRefusal::EntryTooLarge));
            }
            encoded.push(json);
        }
        let from_value = SqlValue::Integer(i64::try_from(from).unwrap_or(i64::MAX));
        self.run("DELETE FROM conversation WHERE idx >= ?", &[from_value])?;
        for (offset, json) in encoded.into_iter().enumerate() {
            let idx = i64::try_from(from + offset as u64).unwrap_or(i64::MAX);
            self.run(
                "INSERT INTO conversation (idx, entry) VALUES (?, ?)",
                &[SqlValue::Integer(idx), SqlValue::Text(json)],
            )?;
        }
        Ok(Ok(end))
    }

    /// The entries from `from` on, as many as fit a page (at least one).
    pub fn read_conversation(&self, from: u64) -> Result<ConversationPage, S::Error> {
        let stored = self.conversation_len()?;
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        let mut at = from;
        while at < stored {
            let batch: Vec<Stored> = self.rows(
                "SELECT idx, entry FROM conversation WHERE idx >= ? ORDER BY idx LIMIT ?",
                &[
                    SqlValue::Integer(i64::try_from(at).unwrap_or(i64::MAX)),
                    SqlValue::Integer(READ_BATCH),
                ],
            )?;
            if batch.is_empty() {
                break;
            }
            for row in batch {
                if !entries.is_empty() && bytes + row.entry.len() > CONVERSATION_PAGE_BYTES {
                    return Ok(ConversationPage {
                        stored,
                        entries,
                        next: Some(at),
                    });
                }
                bytes += row.entry.len();
                entries.push(serde_json::from_str(&row.entry)?);
                at = u64::try_from(row.idx).unwrap_or(u64::MAX).saturating_add(1);
            }
        }
        Ok(ConversationPage {
            stored,
            entries,
            next: None,
        })
    }
}
