-- Sign-in, teams, sharing and API tokens. Timestamps are milliseconds since the Unix
-- epoch (UTC). Secrets a request presents (session cookies, API tokens) are stored
-- only as their SHA-256 hex digest. Invite and share-link tokens are stored as they
-- are, so admins and owners can copy their links again; they are revocable and
-- expire.

ALTER TABLE users ADD COLUMN avatar_url TEXT;
ALTER TABLE users ADD COLUMN default_model TEXT;
-- The provider identities a user signed in with (the provider's stable user id).
ALTER TABLE users ADD COLUMN github_id TEXT;
ALTER TABLE users ADD COLUMN google_id TEXT;
CREATE UNIQUE INDEX users_by_github ON users (github_id) WHERE github_id IS NOT NULL;
CREATE UNIQUE INDEX users_by_google ON users (google_id) WHERE google_id IS NOT NULL;

-- Owns the sessions of removed members. Never signs in (no membership, no email).
INSERT INTO users (id, email, display_name, created_at) VALUES ('team', NULL, 'Team', 0);

-- One team per deployment today; the id keeps the door open for more.
CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- invite_only | domain | open
    signin_policy TEXT NOT NULL DEFAULT 'invite_only',
    allowed_domain TEXT,
    created_at INTEGER NOT NULL
);
INSERT INTO teams (id, name, signin_policy, allowed_domain, created_at)
VALUES ('default', 'Nightshift', 'invite_only', NULL, 0);

CREATE TABLE memberships (
    team_id TEXT NOT NULL REFERENCES teams (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    -- admin | member
    role TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

-- A signed-in browser: the cookie's SHA-256, never the cookie.
CREATE TABLE auth_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX auth_sessions_by_user ON auth_sessions (user_id);

-- An OAuth authorization in flight: bound to the browser by the hash of its
-- `ns_oauth` cookie; deleted when the callback uses it (so a replay finds nothing).
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    provider TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect TEXT NOT NULL,
    invite TEXT,
    expires_at INTEGER NOT NULL
);

CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    team_id TEXT NOT NULL REFERENCES teams (id),
    role TEXT NOT NULL,
    -- When set, only this email may use it.
    email TEXT,
    expires_at INTEGER NOT NULL,
    max_uses INTEGER NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- space-separated: read, write
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE session_shares (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    -- viewer | collaborator | co_owner
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_shares_by_user ON session_shares (user_id);

CREATE TABLE share_links (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    token TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    max_uses INTEGER NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX share_links_by_session ON share_links (session_id);

-- Which key the session's latest turn used: user | team | environment.
ALTER TABLE sessions ADD COLUMN llm_source TEXT;
