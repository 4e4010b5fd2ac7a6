//! The repository journey shared by the GitHub sessions tests (over the API and in the
//! browser): a stack whose local sandboxes may reach the fake GitHub's git server on
//! the host's loopback, the scripted agent turn that edits the readme and commits on
//! the session's branch, and the check that a pushed branch is authored by the user.

use anyhow::Context;
use serde_json::json;

use crate::fake_github::FakeGithub;
use crate::scripted_llm::{Script, ScriptedLlm, Step};
use crate::stack::{Stack, StackOptions};

/// The marker a prompt carries to run [`edit_and_commit`].
pub const EDIT_MARKER: &str = "MARK-EDIT";

/// The line the scripted turn appends to `README.md`.
pub const EDITED_LINE: &str = "edited by the agent";

/// One bash call that prints the branch, appends [`EDITED_LINE`] to the readme,
/// commits it and prints the commit's author; then a closing text.
pub fn edit_and_commit() -> Script {
    Script::new(vec![
        Step::tool(
            "bash",
            json!({"command": format!(
                "git rev-parse --abbrev-ref HEAD && echo '{EDITED_LINE}' >> README.md && git commit -qam 'Edit the readme' && git log -1 --format='%an <%ae>'"
            )}),
        ),
        Step::text("Edited and committed."),
    ])
}

/// The real stack with the scripted LLM and the fake GitHub, whose sandboxes'
/// isolated network opens the fake's git server port (and nothing else); a git
/// server over TLS has its test CA trusted by the backend's egress, which then adds
/// git's credential itself.
pub async fn stack_reaching_git(gh: &FakeGithub, llm: &ScriptedLlm) -> anyhow::Result<Stack> {
    let mut backend_env = vec![(
        "SANDBOX_ISOLATED_ALLOW".to_string(),
        format!("127.0.0.1:{}", gh.git().port()),
    )];
    if let Some(ca) = gh.git().ca_file() {
        backend_env.push((
            "SANDBOX_EGRESS_UPSTREAM_CA".to_string(),
            ca.display().to_string(),
        ));
    }
    Stack::start_with_backend(
        StackOptions {
            llm_base_url: Some(llm.base_url()),
            worker_vars: gh.worker_vars(),
        },
        backend_env,
    )
    .await
}

/// The author (`Name <email>`) of `branch`'s head on the git server, once pushed.
pub fn pushed_author(
    gh: &FakeGithub,
    owner: &str,
    repo: &str,
    branch: &str,
) -> anyhow::Result<String> {
    let bare = gh.git().repo(owner, repo);
    let head = bare
        .branch_head(branch)
        .with_context(|| format!("{branch} is not on the server"))?;
    bare.log(&head, "%an <%ae>")
        .into_iter()
        .next()
        .context("the pushed head has no commit")
}

/// Whether `author` is `name` at GitHub's no-reply address for `login`, as the
/// session's git identity is set.
pub fn is_noreply_author(author: &str, name: &str, login: &str) -> bool {
    author.starts_with(&format!("{name} <"))
        && author.ends_with(&format!("+{login}@users.noreply.github.com>"))
}
