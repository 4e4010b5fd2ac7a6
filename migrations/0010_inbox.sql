-- Telling people. Each user's inbox: one row per thing that happened in a session
-- they are told about (a turn they started finished or failed, the agent asked a
-- question or a permission); `read_at` is set when they mark it read. Rows go with
-- their session (`sessions_table::delete`). The inbox page reads newest first,
-- through an index that also counts the unread ones.
CREATE TABLE inbox (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    session_id TEXT NOT NULL REFERENCES sessions (id),
    -- turn_finished | turn_failed | question | permission
    kind TEXT NOT NULL,
    -- The session's title when the entry was written.
    title TEXT NOT NULL,
    -- What happened, cut to an excerpt (the reply, the error, the question).
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    read_at INTEGER
);
CREATE INDEX inbox_by_user ON inbox (user_id, created_at DESC, id DESC);
CREATE INDEX inbox_unread_by_user ON inbox (user_id, read_at);
CREATE INDEX inbox_by_session ON inbox (session_id);

-- The team's webhook: the same events posted in Slack's incoming-webhook format.
-- The URL is only shown to admins. Deliveries are tried once; failures are counted
-- with the last one's reason and time, for the admin page.
ALTER TABLE teams ADD COLUMN webhook_url TEXT;
ALTER TABLE teams ADD COLUMN webhook_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN webhook_last_error TEXT;
ALTER TABLE teams ADD COLUMN webhook_last_failure_at INTEGER;
ALTER TABLE teams ADD COLUMN webhook_deliveries INTEGER NOT NULL DEFAULT 0;
