-- Ending sessions. An archived session keeps its row (and its history in its
-- SessionAgent) with the time it was archived; `status` says `archived`. The list
-- hides archived sessions unless asked, so the owner's page reads through an index
-- that knows which are archived.
ALTER TABLE sessions ADD COLUMN archived_at INTEGER;
CREATE INDEX sessions_by_owner_archived ON sessions (owner_id, archived_at, created_at DESC, id DESC);
