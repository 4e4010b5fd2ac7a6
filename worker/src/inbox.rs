//! Users' inboxes in D1 (`inbox`, migration 0010): writing the entries a session's
//! notices make, reading a user's page of them, marking them read, and telling the
//! user's own session-list streams (`EventBus`, `?user=`) each time, so the app's
//! count moves without a reload.
//!
//! Who is told what is `nightshift_session::notices`; this module only stores and
//! delivers. An entry is written only while its session's row exists (one
//! statement checks it), and `sessions_table::delete` removes a session's entries in
//! the same batch as its row, so no entry outlives its session. The team's webhook
//! is [`webhook`].

use nightshift_protocol::ErrorCode;
use nightshift_protocol::events::SessionListEvent;
use nightshift_protocol::inbox::{InboxEntry, InboxKind, InboxPage, MAX_INBOX_PAGE};
use nightshift_session::notices::Notice;
use serde::Deserialize;
use worker::Env;

use crate::api_error::{ApiError, ApiResult};
use crate::auth::d1::{self, Arg};
use crate::{clock, ids, internal};

pub mod cursor;
pub mod webhook;

/// The session a notice is about, as its `SessionAgent` knows it.
#[derive(Debug, Clone)]
pub struct SessionFacts {
    pub session_id: String,
    pub title: String,
    /// The app's address for this session (from the Worker URL the session knows),
    /// for webhook links.
    pub session_url: Option<String>,
}

/// Stores `notices` in their recipients' inboxes, tells each recipient's streams,
/// and posts each notice to the team's webhook. Runs after the event that made them
/// was stored and answered (`waitUntil`); every failure is logged, none retried.
pub async fn deliver(env: Env, session: SessionFacts, notices: Vec<Notice>) {
    for notice in &notices {
        for user_id in &notice.recipients {
            match write(&env, user_id, &session, notice).await {
                Ok(Some(entry)) => tell(&env, user_id, Some(entry)).await,
                Ok(None) => {}
                Err(error) => {
                    worker::console_warn!("writing an inbox entry failed: {}", error.message)
                }
            }
        }
        webhook::post_notice(&env, &session, notice).await;
    }
}

/// Writes one entry; `None` when the session (or the user) is gone.
async fn write(
    env: &Env,
    user_id: &str,
    session: &SessionFacts,
    notice: &Notice,
) -> ApiResult<Option<InboxEntry>> {
    let entry = InboxEntry {
        id: ids::new_id()?,
        session_id: session.session_id.clone(),
        kind: notice.kind,
        title: session.title.clone(),
        text: notice.text.clone(),
        created_at: clock::now_ms(),
        read_at: None,
    };
    let written = d1::run(
        env,
        "INSERT INTO inbox (id, user_id, session_id, kind, title, text, created_at) \
         SELECT ?, ?, ?, ?, ?, ?, ? \
         WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?) \
           AND EXISTS (SELECT 1 FROM users WHERE id = ?)",
        &[
            Arg::Text(&entry.id),
            Arg::Text(user_id),
            Arg::Text(&entry.session_id),
            Arg::Text(entry.kind.as_str()),
            Arg::Text(&entry.title),
            Arg::Text(&entry.text),
            Arg::Int(entry.created_at),
            Arg::Text(&entry.session_id),
            Arg::Text(user_id),
        ],
    )
    .await?;
    Ok((written > 0).then_some(entry))
}

/// Sends the user's streams their unread count, with the new entry if there is one.
pub async fn tell(env: &Env, user_id: &str, entry: Option<InboxEntry>) {
    let unread = match unread(env, user_id).await {
        Ok(unread) => unread,
        Err(error) => {
            worker::console_warn!("counting unread inbox entries failed: {}", error.message);
            return;
        }
    };
    let event = SessionListEvent::InboxChanged { entry, unread };
    internal::publish_to_user(env, user_id, &event).await;
}

#[derive(Deserialize)]
struct Count {
    value: i64,
}

/// How many of `user_id`'s entries are unread.
pub async fn unread(env: &Env, user_id: &str) -> ApiResult<u32> {
    let count: Option<Count> = d1::first(
        env,
        "SELECT COUNT(*) AS value FROM inbox WHERE user_id = ? AND read_at IS NULL",
        &[Arg::Text(user_id)],
    )
    .await?;
    Ok(count.map_or(0, |count| u32::try_from(count.value).unwrap_or(u32::MAX)))
}

#[derive(Deserialize)]
struct Row {
    id: String,
    session_id: String,
    kind: String,
    title: String,
    text: String,
    created_at: i64,
    read_at: Option<i64>,
}

/// One page of `user_id`'s inbox, newest first, after `cursor` (an older page).
pub async fn page(
    env: &Env,
    user_id: &str,
    limit: u32,
    cursor: Option<&str>,
) -> ApiResult<InboxPage> {
    let limit = limit.clamp(1, MAX_INBOX_PAGE);
    let after = match cursor {
        Some(text) => Some(cursor::Cursor::parse(text).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "cursor is not one this route gave",
            )
        })?),
        None => None,
    };
    // One more than the page, to know whether another page follows.
    let fetch = i64::from(limit) + 1;
    let rows: Vec<Row> = match &after {
        Some(after) => {
            d1::all(
                env,
                "SELECT id, session_id, kind, title, text, created_at, read_at FROM inbox \
                 WHERE user_id = ? AND (created_at < ? OR (created_at = ? AND id < ?)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?",
                &[
                    Arg::Text(user_id),
                    Arg::Int(after.created_at),
                    Arg::Int(after.created_at),
                    Arg::Text(&after.id),
                    Arg::Int(fetch),
                ],
            )
            .await?
        }
        None => {
            d1::all(
                env,
                "SELECT id, session_id, kind, title, text, created_at, read_at FROM inbox \
                 WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                &[Arg::Text(user_id), Arg::Int(fetch)],
            )
            .await?
        }
    };
    let more = rows.len() > limit as usize;
    let entries: Vec<InboxEntry> = rows
        .into_iter()
        .take(limit as usize)
        .filter_map(|row| {
            Some(InboxEntry {
                kind: InboxKind::parse(&row.kind)?,
                id: row.id,
                session_id: row.session_id,
                title: row.title,
                text: row.text,
                created_at: row.created_at,
                read_at: row.read_at,
            })
        })
        .collect();
    let next_cursor = more
        .then(|| entries.last())
        .flatten()
        .map(|last| cursor::Cursor::of(last).encode());
    Ok(InboxPage {
        entries,
        unread: unread(env, user_id).await?,
        next_cursor,
    })
}

/// Marks `ids` (or every entry, with `all`) of `user_id` read; answers how many
/// changed. Ids of other users' entries match nothing.
pub async fn mark_read(env: &Env, user_id: &str, ids: &[String], all: bool) -> ApiResult<u32> {
    let now = clock::now_ms();
    let marked = if all {
        d1::run(
            env,
            "UPDATE inbox SET read_at = ? WHERE user_id = ? AND read_at IS NULL",
            &[Arg::Int(now), Arg::Text(user_id)],
        )
        .await?
    } else {
        // One statement over a JSON array of ids: all marked or none.
        let list = serde_json::to_string(ids)?;
        d1::run(
            env,
            "UPDATE inbox SET read_at = ? WHERE user_id = ? AND read_at IS NULL \
             AND id IN (SELECT value FROM json_each(?))",
            &[Arg::Int(now), Arg::Text(user_id), Arg::Text(&list)],
        )
        .await?
    };
    Ok(u32::try_from(marked).unwrap_or(u32::MAX))
}
