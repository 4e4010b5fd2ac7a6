-- Sleep times (see protocol/src/sleep.rs and session-core/src/sleep_time.rs).
-- A user's own time before an idle session of theirs sleeps, in ms: NULL is the
-- deployment's default (SESSION_SLEEP_AFTER_MS), 0 is never (unless the team has a
-- maximum, which then applies).
ALTER TABLE users ADD COLUMN sleep_after_ms INTEGER;
-- The team's maximum, in ms, set by an admin: NULL is no maximum beyond the
-- deployment's. It caps every member's time, the default included.
ALTER TABLE teams ADD COLUMN max_sleep_after_ms INTEGER;
