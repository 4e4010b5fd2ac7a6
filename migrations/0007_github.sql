-- Repo-aware sessions. A GitHub connection started by a signed-in user (the
-- `/auth/github/connect` flow) remembers whose it is; the team's GitHub settings
-- (which repositories its members may work on, whether pull requests open as
-- drafts); and the repository columns of the session list (the SessionAgent keeps
-- the whole repository; these are enough for a row).
ALTER TABLE oauth_states ADD COLUMN user_id TEXT;

ALTER TABLE teams ADD COLUMN github_allowed_repos TEXT NOT NULL DEFAULT '[]';
ALTER TABLE teams ADD COLUMN github_draft_pull_requests INTEGER NOT NULL DEFAULT 1;

ALTER TABLE sessions ADD COLUMN repo_full_name TEXT;
ALTER TABLE sessions ADD COLUMN repo_branch TEXT;
ALTER TABLE sessions ADD COLUMN repo_base_branch TEXT;
ALTER TABLE sessions ADD COLUMN pr_number INTEGER;
ALTER TABLE sessions ADD COLUMN pr_state TEXT;
ALTER TABLE sessions ADD COLUMN pr_url TEXT;
