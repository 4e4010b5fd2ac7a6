//! The repository's latest state as the runner reported it (`meta` key
//! `repo_state`); see [`crate::repo_intake`].

use nightshift_protocol::repo::RepoState;

use super::{SessionStore, Sql};

const KEY: &str = "repo_state";

impl<S: Sql> SessionStore<S> {
    /// The last state stored, `None` before the runner's first report.
    pub fn repo_state(&self) -> Result<Option<RepoState>, S::Error> {
        self.meta(KEY)?
            .map(|value| Ok(serde_json::from_str(&value)?))
            .transpose()
    }

    pub fn save_repo_state(&self, state: &RepoState) -> Result<(), S::Error> {
        self.save_meta(KEY, &serde_json::to_string(state)?)
    }
}
