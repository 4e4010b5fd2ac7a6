//! Checkpoints of a sandbox's files: the sandbox backend's
//! `/v1/sandboxes/{id}/checkpoints` bodies, and where a new sandbox takes its files
//! from when it is made from another one's checkpoint.

use serde::{Deserialize, Serialize};

/// `POST /v1/sandboxes/{id}/checkpoints` (201): a checkpoint was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointTaken {
    /// `cp_<32 hex digits>`.
    pub id: String,
    /// Bytes of file content this checkpoint stored that no earlier checkpoint of the
    /// sandbox had stored (unchanged and repeated content costs nothing).
    pub bytes_added: u64,
    /// Entries recorded: regular files, directories and symlinks.
    pub files: u64,
    /// How long taking it took, in milliseconds.
    pub ms: u64,
}

/// One kept checkpoint, as `GET /v1/sandboxes/{id}/checkpoints` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Entries recorded: regular files, directories and symlinks.
    pub files: u64,
    /// The total size of the regular files it holds.
    pub bytes: u64,
}

/// `GET /v1/sandboxes/{id}/checkpoints`: oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointList {
    pub checkpoints: Vec<CheckpointInfo>,
}

/// `POST /v1/sandboxes/{id}/checkpoints/{cp}/restore` (200): the workspace now
/// holds exactly what the checkpoint recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRestored {
    pub id: String,
    pub files: u64,
    pub ms: u64,
}

/// `from_checkpoint` of `POST /v1/sandboxes`: the new sandbox's workspace starts as
/// `checkpoint` of `sandbox` recorded it (a fork from an earlier point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSource {
    pub sandbox: String,
    pub checkpoint: String,
}

/// `POST /api/sessions/{id}/rewind` and `POST /api/sessions/{id}/fork`: the turn
/// to go back to, or to start the new session from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnRequest {
    pub turn: String,
}

/// What a rewind did: the session is back at `turn_id`, and `rewound_turns` (those
/// after it) are kept in the history marked rewound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewindResponse {
    pub turn_id: String,
    pub rewound_turns: Vec<String>,
}

/// The longest turn id a rewind or fork names (ids are UUID-like).
pub const MAX_TURN_ID_BYTES: usize = 128;

/// Whether `turn` can be a turn id at all (anything else is 400 before a lookup).
pub fn valid_turn_id(turn: &str) -> bool {
    !turn.is_empty()
        && turn.len() <= MAX_TURN_ID_BYTES
        && turn
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Whether `text` has the shape of a checkpoint id (`cp_` and 32 lowercase hex
/// digits); anything else is refused before it reaches a file name.
pub fn valid_checkpoint_id(text: &str) -> bool {
    text.strip_prefix("cp_").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cp_and_32_lowercase_hex_digits_is_a_checkpoint_id() {
        assert!(valid_checkpoint_id("cp_0123456789abcdef0123456789abcdef"));
        assert!(!valid_checkpoint_id("cp_0123456789ABCDEF0123456789abcdef"));
        assert!(!valid_checkpoint_id("cp_0123"));
        assert!(!valid_checkpoint_id(
            "cp_../../../../etc/passwd/0123456789ab"
        ));
        assert!(!valid_checkpoint_id("0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn a_checkpoint_source_refuses_unknown_fields() {
        let parsed: Result<CheckpointSource, _> =
            serde_json::from_str(r#"{"sandbox":"sbx_1","checkpoint":"cp_1","x":1}"#);
        assert!(parsed.is_err());
    }
}
