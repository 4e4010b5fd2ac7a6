-- Demo data for a local stack (`make db-seed`): a demo team with an admin and a
-- member, and a few sessions, so the app has something to show before anyone has
-- worked. Idempotent: rows that exist are left as they are. Never run on a
-- production database (scripts/deploy/db.sh refuses DB=remote for it).
--
-- Sign in with the development sign-in as ada@demo.nightshift.test (admin) or
-- max@demo.nightshift.test (member) to see them. The sessions have no sandbox and
-- their Durable Objects hold no events yet: they list, and open empty.

UPDATE teams SET name = 'Demo team' WHERE id = 'default' AND name = 'Nightshift';

INSERT OR IGNORE INTO users (id, email, display_name, created_at) VALUES
    ('demo-ada', 'ada@demo.nightshift.test', 'Ada (demo admin)', 1767225600000),
    ('demo-max', 'max@demo.nightshift.test', 'Max (demo member)', 1767225600000);

INSERT OR IGNORE INTO memberships (team_id, user_id, role, joined_at) VALUES
    ('default', 'demo-ada', 'admin', 1767225600000),
    ('default', 'demo-max', 'member', 1767225600000);

INSERT OR IGNORE INTO sessions
    (id, owner_id, title, status, agent, model, created_at, updated_at, turns)
VALUES
    ('demo-session-readme', 'demo-ada', 'Demo: tidy up the README', 'idle', 'builtin', NULL,
     1767225600000, 1767225660000, 1),
    ('demo-session-tests', 'demo-ada', 'Demo: add tests for the parser', 'idle', 'opencode', NULL,
     1767225700000, 1767225760000, 3),
    ('demo-session-ci', 'demo-max', 'Demo: speed up CI', 'idle', 'builtin', NULL,
     1767225800000, 1767225860000, 2);

-- Max may watch Ada's README session.
INSERT OR IGNORE INTO session_shares (session_id, user_id, role, created_by, created_at) VALUES
    ('demo-session-readme', 'demo-max', 'viewer', 'demo-ada', 1767225900000);
