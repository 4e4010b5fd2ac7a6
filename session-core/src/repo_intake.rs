//! What the `SessionAgent` does with a runner's `repo` frame: a state outside the
//! protocol's bounds is refused (the runner's repository is the sandbox's, so its
//! paths and messages are hostile), one equal to the stored state changes nothing,
//! and any other replaces it (latest wins) and becomes a `repo_updated` event.

use nightshift_protocol::repo::RepoState;

/// The decision on one `repo` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoIntake {
    /// Store it and announce it.
    Store,
    /// The same as the stored state: nothing to do.
    Unchanged,
    /// Outside the bounds: dropped, with this reason in an `error` event.
    Refuse(String),
}

pub fn repo_intake(stored: Option<&RepoState>, state: &RepoState) -> RepoIntake {
    if let Err(why) = state.check() {
        return RepoIntake::Refuse(format!(
            "The runner's report of the repository was dropped: {why}."
        ));
    }
    if stored == Some(state) {
        RepoIntake::Unchanged
    } else {
        RepoIntake::Store
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::repo::{ChangedFile, FileChange, MAX_REPO_PATH_BYTES, RepoPhase};

    use super::*;

    fn ready(ahead: u32) -> RepoState {
        RepoState {
            phase: RepoPhase::Ready,
            branch: "nightshift/abcd1234-x".into(),
            ahead,
            ..Default::default()
        }
    }

    #[test]
    fn a_new_state_is_stored_and_the_same_one_again_is_not() {
        assert_eq!(repo_intake(None, &ready(0)), RepoIntake::Store);
        assert_eq!(repo_intake(Some(&ready(0)), &ready(1)), RepoIntake::Store);
        assert_eq!(
            repo_intake(Some(&ready(1)), &ready(1)),
            RepoIntake::Unchanged
        );
    }

    #[test]
    fn a_state_outside_the_bounds_is_refused() {
        let mut state = ready(1);
        state.files.push(ChangedFile {
            path: "p".repeat(MAX_REPO_PATH_BYTES + 1),
            change: FileChange::Added,
            old_path: None,
            additions: 1,
            deletions: 0,
            binary: false,
        });
        let RepoIntake::Refuse(why) = repo_intake(None, &state) else {
            panic!("an overlong path was taken");
        };
        assert!(why.contains("path too long"), "{why}");
    }
}
