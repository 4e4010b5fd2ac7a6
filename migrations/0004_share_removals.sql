-- Who was removed from a session's shares, and when: a share link created before a
-- person's removal cannot bring them back (they may have made it or seen it).
CREATE TABLE share_removals (
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
