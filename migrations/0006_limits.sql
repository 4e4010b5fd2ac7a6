-- Caps an admin sets for every member (NULL: the Worker's default from its
-- environment, see worker/src/limits.rs), and the indexes that keep the session list
-- and the per-owner count of live sessions off full scans.
ALTER TABLE teams ADD COLUMN max_live_sessions INTEGER;
ALTER TABLE teams ADD COLUMN max_queued_prompts INTEGER;
ALTER TABLE teams ADD COLUMN max_open_streams INTEGER;
ALTER TABLE teams ADD COLUMN max_keys INTEGER;

CREATE INDEX sessions_by_owner_page ON sessions (owner_id, created_at DESC, id DESC);
CREATE INDEX sessions_by_owner_status ON sessions (owner_id, status);
