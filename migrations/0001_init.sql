-- Nightshift's D1 schema. Timestamps are milliseconds since the Unix epoch (UTC).
-- Each session's prompts and events live in its SessionAgent Durable Object; this
-- database lists sessions and says who owns them.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT UNIQUE,
    display_name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- The single local user every request acts for until sign-in exists.
INSERT INTO users (id, email, display_name, created_at) VALUES ('local', NULL, 'Local user', 0);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id),
    title TEXT NOT NULL DEFAULT '',
    -- provisioning | idle | running | reconnecting | error, kept current by the
    -- session's SessionAgent.
    status TEXT NOT NULL,
    agent TEXT NOT NULL DEFAULT 'builtin',
    model TEXT,
    sandbox_id TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX sessions_by_owner ON sessions (owner_id, created_at DESC);
CREATE INDEX sessions_by_sandbox ON sessions (sandbox_id);
