-- Spend: what every turn used and cost, how long every sandbox lived, and the caps
-- and price overrides the team's admins set. Times are ms since the epoch (UTC).

-- One row per turn, keyed by the turn id: written as each LLM call of the turn
-- reports its tokens (cumulative so far, `finished` = 0) and set once more from the
-- turn's own total when it ends (`finished` = 1, after which step writes are
-- ignored). Writing the same values again changes nothing, so retries are safe.
CREATE TABLE usage_turns (
    turn_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    -- At the price in force when the turn's usage was written (micro-USD).
    cost_micro_usd INTEGER NOT NULL DEFAULT 0,
    -- When the turn started: the day and month it counts in.
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    finished INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX usage_turns_by_session ON usage_turns (session_id);
CREATE INDEX usage_turns_by_user ON usage_turns (user_id, started_at);
CREATE INDEX usage_turns_by_team ON usage_turns (team_id, started_at);

-- One row per sandbox a session had (its generation): from provisioned to stopped
-- or destroyed (`stopped_at` NULL while it lives). Counted for the session's owner.
CREATE TABLE usage_sandboxes (
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    stopped_at INTEGER,
    PRIMARY KEY (session_id, generation)
);
CREATE INDEX usage_sandboxes_by_user ON usage_sandboxes (user_id, started_at);
CREATE INDEX usage_sandboxes_by_team ON usage_sandboxes (team_id, started_at);

-- The admins' spend caps and price overrides, as the protocol's JSON
-- (`nightshift_protocol::usage::SpendCaps`, a list of `ModelPrice`).
CREATE TABLE spend_settings (
    team_id TEXT PRIMARY KEY,
    caps TEXT NOT NULL DEFAULT '{}',
    prices TEXT NOT NULL DEFAULT '[]',
    updated_at INTEGER NOT NULL
);
