//! The `meta` table: the [`SessionRecord`] (what the `SessionAgent` knows about its
//! session besides the queue and the log), the session's access facts, other
//! key-value entries, and the wipe that leaves a deleted session's tombstone.

use nightshift_protocol::api::{AgentKind, PermissionMode, SessionStatus, UsageTotals};
use serde::{Deserialize, Serialize};

use super::{SessionStore, Sql, SqlValue};
use crate::abort::AbortRequest;
use crate::access_facts::AccessFacts;
use crate::lifecycle::SandboxState;
use crate::session_machine::Machine;
use crate::sleep_time::SleepTime;
use nightshift_protocol::sandbox::SandboxSnapshot;

/// What the `SessionAgent` knows about its session besides the queue and the log.
/// The status is the phase of [`SessionRecord::machine`], fed from these facts by
/// [`crate::session_machine::observe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRecord {
    pub session_id: String,
    pub owner_id: String,
    /// `/init` has run.
    pub initialized: bool,
    /// Empty while untitled.
    pub title: String,
    /// The URL the runner dials, for (re)requesting the sandbox.
    pub worker_url: Option<String>,
    pub sandbox: SandboxState,
    /// Connection numbers: the newest runner socket gets `last_connection + 1`.
    pub last_connection: u64,
    /// The newest runner socket; older ones are closed.
    pub runner_connection: Option<u64>,
    /// The epoch the newest runner socket said hello with.
    pub runner_epoch: Option<String>,
    pub runner_ever_connected: bool,
    /// The sandbox generation: bumped every time a sandbox is requested, so runner
    /// tokens issued for an earlier sandbox are refused.
    pub sandbox_generation: u64,
    /// The status as last derived.
    pub status: SessionStatus,
    /// The session's state machine: its phase (the status) and what it knew last.
    pub machine: Machine,
    /// What the backend kept of the sandbox when the session went to sleep; kept
    /// until the session is archived or deleted (a failed wake tries it again).
    pub snapshot: Option<SandboxSnapshot>,
    /// When the session last became idle (ms): it sleeps once idle for its sleep
    /// time.
    pub idle_since: Option<i64>,

    /// What D1 and the session-list stream were last told.
    pub published: Option<Published>,
    /// The agent, model and permission mode the next turn runs with.
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
    /// The runner was told to abort this turn at this time (ms); if it has not
    /// finished the turn by the abort deadline, the `SessionAgent` ends it itself.
    pub abort_requested: Option<AbortRequest>,
    /// The session was deleted: everything else was wiped, and nothing is provisioned
    /// or accepted any more (a sandbox that was being created is destroyed as soon as
    /// the backend answers).
    pub deleted: bool,
    /// When the session was archived (ms): its sandbox was destroyed and nothing is
    /// provisioned or run any more; its history stays.
    pub archived_at: Option<i64>,
    /// The GitHub repository the session works on, handed to the runner in every
    /// `welcome`; `None` for a session without one.
    pub repo: Option<nightshift_protocol::repo::SessionRepo>,
    /// The session's pull request as last read from GitHub, and when (ms).
    pub pull_request: Option<nightshift_protocol::repo::PullRequestInfo>,
    pub pull_request_checked_at: i64,
    /// A forked session's first sandbox starts from this checkpoint of its parent's
    /// sandbox (`POST /api/sessions/{id}/fork`).
    pub from_checkpoint: Option<nightshift_protocol::checkpoints::CheckpointSource>,
}

impl Default for SessionRecord {
    fn default() -> Self {
        Self {
            session_id: String::new(),
            owner_id: String::new(),
            initialized: false,
            title: String::new(),
            worker_url: None,
            sandbox: SandboxState::default(),
            last_connection: 0,
            runner_connection: None,
            runner_epoch: None,
            runner_ever_connected: false,
            sandbox_generation: 0,
            status: SessionStatus::Provisioning,
            machine: Machine::default(),
            snapshot: None,
            idle_since: None,
            published: None,
            agent: AgentKind::default(),
            model: None,
            permission_mode: PermissionMode::default(),
            abort_requested: None,
            deleted: false,
            archived_at: None,
            repo: None,
            pull_request: None,
            pull_request_checked_at: 0,
            from_checkpoint: None,
        }
    }
}

impl SessionRecord {
    /// The sandbox that holds the session's files now: the one it runs in, or, while
    /// it is asleep, the stopped one its snapshot names (its checkpoints are kept
    /// beside it, so a rewind or fork can use them without waking the session).
    pub fn files_sandbox_id(&self) -> Option<&str> {
        if let Some(current) = self.sandbox.sandbox_id() {
            return Some(current);
        }
        match (&self.machine.phase, &self.snapshot) {
            (crate::session_machine::Phase::Asleep, Some(snapshot)) => {
                Some(snapshot.sandbox_id.as_str())
            }
            _ => None,
        }
    }
}

/// The columns of the D1 row the `SessionAgent` keeps current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub status: SessionStatus,
    pub title: String,
    pub sandbox_id: Option<String>,
    pub error: Option<String>,
    /// When the session was archived (ms), as last written to D1.
    #[serde(default)]
    pub archived_at: Option<i64>,
    /// Agent settings and usage totals, as last written to D1.
    #[serde(default)]
    pub agent: Option<PublishedAgent>,
}

/// The agent columns of the D1 row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedAgent {
    pub agent: AgentKind,
    pub model: Option<String>,
    pub permission_mode: PermissionMode,
    pub usage: UsageTotals,
}

#[derive(Deserialize)]
struct MetaRow {
    value: String,
}

impl<S: Sql> SessionStore<S> {
    pub fn record(&self) -> Result<SessionRecord, S::Error> {
        match self.meta("session")? {
            Some(value) => Ok(serde_json::from_str(&value)?),
            None => Ok(SessionRecord::default()),
        }
    }

    pub fn save_record(&self, record: &SessionRecord) -> Result<(), S::Error> {
        self.save_meta("session", &serde_json::to_string(record)?)
    }

    /// The session's access facts (`meta` key `access`); `None` for a session
    /// created before the object kept them, until they are first loaded from D1.
    pub fn access_facts(&self) -> Result<Option<AccessFacts>, S::Error> {
        self.meta("access")?
            .map(|value| Ok(serde_json::from_str(&value)?))
            .transpose()
    }

    pub fn save_access_facts(&self, facts: &AccessFacts) -> Result<(), S::Error> {
        self.save_meta("access", &serde_json::to_string(facts)?)
    }

    /// The owner's sleep time and the team's maximum (`meta` key `sleep`); `None`
    /// until first read from D1 (the deployment's default applies meanwhile).
    pub fn sleep_time(&self) -> Result<Option<SleepTime>, S::Error> {
        self.meta("sleep")?
            .map(|value| Ok(serde_json::from_str(&value)?))
            .transpose()
    }

    pub fn save_sleep_time(&self, sleep: &SleepTime) -> Result<(), S::Error> {
        self.save_meta("sleep", &serde_json::to_string(sleep)?)
    }

    /// A value of the `meta` table (`None` when absent).
    pub fn meta(&self, key: &str) -> Result<Option<String>, S::Error> {
        let rows: Vec<MetaRow> = self.rows(
            "SELECT value FROM meta WHERE key = ?",
            &[SqlValue::text(key)],
        )?;
        Ok(rows.into_iter().next().map(|row| row.value))
    }

    pub fn save_meta(&self, key: &str, value: &str) -> Result<(), S::Error> {
        self.run(
            "INSERT INTO meta (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[SqlValue::text(key), SqlValue::text(value)],
        )
    }

    /// The latest `expires_at_secs` among the `meta` rows whose key starts with
    /// `prefix` (panel grants: how long an open panel keeps the session awake).
    pub fn latest_meta_expiry(&self, prefix: &str) -> Result<Option<u64>, S::Error> {
        #[derive(Deserialize)]
        struct Latest {
            latest: Option<i64>,
        }
        let rows: Vec<Latest> = self.rows(
            "SELECT MAX(json_extract(value, '$.expires_at_secs')) AS latest FROM meta \
             WHERE key LIKE ?",
            &[SqlValue::Text(format!("{prefix}%"))],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|row| row.latest)
            .and_then(|latest| u64::try_from(latest).ok()))
    }

    /// Deletes the `meta` rows whose key starts with `prefix` and whose JSON value's
    /// `expires_at_secs` is before `now_secs`.
    pub fn delete_expired_meta(&self, prefix: &str, now_secs: u64) -> Result<(), S::Error> {
        self.run(
            "DELETE FROM meta WHERE key LIKE ? AND json_extract(value, '$.expires_at_secs') <= ?",
            &[
                SqlValue::Text(format!("{prefix}%")),
                SqlValue::unsigned(now_secs),
            ],
        )
    }

    /// Forgets everything (prompts, events, runner epochs) and leaves a tombstone
    /// record: deleted, with a sandbox generation past every token issued.
    pub fn wipe(&self, generation: u64) -> Result<(), S::Error> {
        for table in [
            "prompts",
            "events",
            "runner_epochs",
            "meta",
            "conversation",
            "turn_checkpoints",
            "conversation_rewound",
        ] {
            self.run(&format!("DELETE FROM {table}"), &[])?;
        }
        self.save_record(&SessionRecord {
            deleted: true,
            sandbox_generation: generation,
            ..SessionRecord::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_machine::Phase;

    fn slept_in(sandbox_id: &str) -> SandboxSnapshot {
        serde_json::from_value(serde_json::json!({
            "sandbox_id": sandbox_id,
            "kind": "directory",
            "runner_version": "0.0.0",
            "made_at": 1,
        }))
        .unwrap()
    }

    #[test]
    fn the_files_are_in_the_running_sandbox_or_while_asleep_in_the_stopped_one() {
        let mut record = SessionRecord::default();
        assert_eq!(record.files_sandbox_id(), None);

        record.sandbox = SandboxState::Created {
            sandbox_id: "sb-1".into(),
        };
        record.machine.phase = Phase::Ready;
        assert_eq!(record.files_sandbox_id(), Some("sb-1"));

        // Asleep: the running sandbox is forgotten, the snapshot names the stopped one.
        record.sandbox = SandboxState::NotRequested;
        record.snapshot = Some(slept_in("sb-1"));
        record.machine.phase = Phase::Asleep;
        assert_eq!(record.files_sandbox_id(), Some("sb-1"));

        // Waking (or anything but asleep), a snapshot alone is not where the files are.
        record.machine.phase = Phase::Waking;
        assert_eq!(record.files_sandbox_id(), None);
        record.machine.phase = Phase::Archived;
        assert_eq!(record.files_sandbox_id(), None);
    }
}
