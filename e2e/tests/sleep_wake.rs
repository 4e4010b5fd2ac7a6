//! Sleep and wake on the real stack (wrangler dev, the sandbox backend with
//! bubblewrap sandboxes, the scripted LLM, the built-in agent), with a short sleep
//! time (`SESSION_SLEEP_AFTER_MS`): an idle session sleeps with its sandbox stopped
//! at the backend; a prompt wakes it, and the workspace's files, a git repository on
//! its branch, the conversation and a prompt queued while it woke are all there;
//! `POST /wake` wakes it too; archiving an asleep session leaves no sandbox
//! directory behind. An OpenCode session wakes with its own session (kept in the
//! sandbox's home) and the next turn's request carries the earlier one.
//! An asleep session rewinds without waking, and wakes into the turn it rewound to.

use std::process::Command;

use nightshift_e2e::WAIT;
use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use nightshift_protocol::api::{MessageState, SessionStatus};
use nightshift_protocol::sandbox::{Sandbox, SandboxStatus};
use reqwest::Method;
use serde_json::json;

/// Short enough to keep the test fast, long enough for each check between turns.
const SLEEP_AFTER_MS: &str = "2500";

async fn sleepy_stack() -> anyhow::Result<(Stack, ScriptedLlm)> {
    let llm = ScriptedLlm::start().await?;
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![("SESSION_SLEEP_AFTER_MS".into(), SLEEP_AFTER_MS.into())],
    })
    .await?;
    Ok((stack, llm))
}

/// The backend's view of a sandbox; `None` once it is gone.
async fn backend_sandbox(stack: &Stack, id: &str) -> anyhow::Result<Option<Sandbox>> {
    let response = reqwest::Client::new()
        .get(format!("{}/v1/sandboxes/{id}", stack.backend_url()))
        .bearer_auth(&stack.backend_token)
        .timeout(WAIT)
        .send()
        .await?;
    if response.status() == 404 {
        return Ok(None);
    }
    Ok(Some(response.error_for_status()?.json().await?))
}

fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()?;
    anyhow::ensure!(output.status.success(), "git {args:?}: {output:?}");
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Waits until the session is asleep and checks its sandbox is stopped at the
/// backend.
async fn asleep(api: &Api, stack: &Stack, session: &str, sandbox: &str) -> anyhow::Result<()> {
    let slept = api.wait_status(session, "asleep").await?;
    anyhow::ensure!(slept.sandbox_id.is_none(), "{slept:?}");
    let at_backend = backend_sandbox(stack, sandbox).await?;
    anyhow::ensure!(
        at_backend
            .as_ref()
            .is_some_and(|sandbox| sandbox.status == SandboxStatus::Stopped),
        "the backend does not have the sandbox stopped: {at_backend:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_idle_session_sleeps_and_a_prompt_wakes_it_with_nothing_lost() {
    let (stack, llm) = sleepy_stack().await.unwrap();
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let session = owner
            .create_session_with(json!({ "title": "sleepy" }))
            .await?;
        owner.send(&session.id, "remember alpha").await?;
        owner.wait_settled(&session.id).await?;
        let sandbox_id = owner
            .session(&session.id)
            .await?
            .sandbox_id
            .ok_or_else(|| anyhow::anyhow!("no sandbox"))?;

        // Files in the workspace and a repository on a branch.
        let workspace = stack.workspace(&sandbox_id);
        std::fs::write(workspace.join("notes.txt"), "kept across sleep")?;
        let repo = workspace.join("repo");
        std::fs::create_dir_all(&repo)?;
        git(&repo, &["init", "-q", "-b", "main"])?;
        std::fs::write(repo.join("README.md"), "hello")?;
        git(&repo, &["add", "README.md"])?;
        git(&repo, &["commit", "-qm", "first"])?;
        git(&repo, &["checkout", "-qb", "feature/sleepy"])?;

        asleep(&owner, &stack, &session.id, &sandbox_id).await?;
        let mut stream = owner.events(&session.id, None).await?;
        stream
            .until(|body| {
                matches!(
                    body,
                    nightshift_protocol::events::EventBody::StatusChanged {
                        status: SessionStatus::Sleeping
                    }
                )
            })
            .await?;

        // A prompt wakes it; one sent while it wakes waits its turn.
        owner.send(&session.id, "first after sleep").await?;
        let waking = owner.session(&session.id).await?;
        anyhow::ensure!(
            matches!(
                waking.status,
                SessionStatus::Waking | SessionStatus::Running | SessionStatus::Idle
            ),
            "{waking:?}"
        );
        owner.send(&session.id, "queued while waking").await?;
        let messages = owner.wait_settled(&session.id).await?;
        for (content, reply) in [
            ("remember alpha", "echo: remember alpha"),
            ("first after sleep", "echo: first after sleep"),
            ("queued while waking", "echo: queued while waking"),
        ] {
            anyhow::ensure!(
                messages.iter().any(|message| message.content == content
                    && message.state == MessageState::Done
                    && message.reply.as_deref() == Some(reply)),
                "{content}: {messages:#?}"
            );
        }
        let woken = owner.session(&session.id).await?;
        anyhow::ensure!(
            woken.sandbox_id.as_deref() == Some(sandbox_id.as_str()),
            "{woken:?}"
        );

        // The files, the repository's branch and the conversation are there.
        anyhow::ensure!(
            std::fs::read_to_string(workspace.join("notes.txt"))? == "kept across sleep"
        );
        anyhow::ensure!(git(&repo, &["rev-parse", "--abbrev-ref", "HEAD"])? == "feature/sleepy");
        anyhow::ensure!(git(&repo, &["log", "-1", "--format=%s"])? == "first");
        let woke_request = llm
            .requests()
            .into_iter()
            .rev()
            .find(|body| body.to_string().contains("first after sleep"))
            .ok_or_else(|| anyhow::anyhow!("the LLM never saw the prompt after sleep"))?;
        anyhow::ensure!(
            woke_request.to_string().contains("remember alpha"),
            "the woken runner's request lacks the earlier turn: {woke_request}"
        );

        // `POST /wake` wakes it too.
        asleep(&owner, &stack, &session.id, &sandbox_id).await?;
        let woke = owner
            .raw(
                Method::POST,
                &format!("/api/sessions/{}/wake", session.id),
                Some("{}"),
            )
            .await?;
        anyhow::ensure!(woke.status == 200, "{woke:?}");
        owner.wait_status(&session.id, "idle").await?;
        anyhow::ensure!(
            backend_sandbox(&stack, &sandbox_id)
                .await?
                .is_some_and(|sandbox| sandbox.status == SandboxStatus::Ready)
        );

        // Archiving an asleep session destroys its snapshot: no directory is left.
        asleep(&owner, &stack, &session.id, &sandbox_id).await?;
        let archived = owner
            .raw(
                Method::POST,
                &format!("/api/sessions/{}/archive", session.id),
                None,
            )
            .await?;
        anyhow::ensure!(archived.status == 200, "{archived:?}");
        anyhow::ensure!(backend_sandbox(&stack, &sandbox_id).await?.is_none());
        anyhow::ensure!(!stack.workspace(&sandbox_id).exists());
        anyhow::ensure!(
            !stack
                .data_dir()
                .join("sandboxes")
                .join(&sandbox_id)
                .exists(),
            "the sandbox's directory outlived the archive"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_wake_that_fails_is_an_error_that_keeps_the_prompt() {
    let (stack, _llm) = sleepy_stack().await.unwrap();
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let session = owner
            .create_session_with(json!({ "title": "lost snapshot" }))
            .await?;
        let ready = owner.wait_status(&session.id, "idle").await?;
        let sandbox_id = ready
            .sandbox_id
            .ok_or_else(|| anyhow::anyhow!("no sandbox"))?;
        asleep(&owner, &stack, &session.id, &sandbox_id).await?;
        // The snapshot is lost behind the session's back.
        let destroyed = reqwest::Client::new()
            .delete(format!("{}/v1/sandboxes/{sandbox_id}", stack.backend_url()))
            .bearer_auth(&stack.backend_token)
            .timeout(WAIT)
            .send()
            .await?;
        anyhow::ensure!(destroyed.status().is_success(), "{destroyed:?}");

        owner.send(&session.id, "still wanted").await?;
        let failed = owner.wait_status(&session.id, "error").await?;
        anyhow::ensure!(
            failed
                .error
                .as_deref()
                .is_some_and(|error| error.contains("restore")),
            "{failed:?}"
        );
        let messages = owner.messages(&session.id).await?;
        anyhow::ensure!(
            messages
                .iter()
                .any(|message| message.content == "still wanted"
                    && message.state == MessageState::Queued),
            "{messages:#?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_opencode_session_sleeps_and_wakes_with_its_own_session_kept() {
    let (stack, llm) = sleepy_stack().await.unwrap();
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let session = owner
            .create_session_with(json!({ "title": "sleepy opencode", "agent": "opencode" }))
            .await?;
        owner.send(&session.id, "the codeword is PAPAYA").await?;
        let first = owner.wait_settled(&session.id).await?;
        anyhow::ensure!(
            first
                .iter()
                .all(|message| message.state == MessageState::Done),
            "{first:#?}"
        );
        let sandbox_id = owner
            .session(&session.id)
            .await?
            .sandbox_id
            .ok_or_else(|| anyhow::anyhow!("no sandbox"))?;
        // OpenCode keeps its sessions in the sandbox's home, which sleep keeps.
        asleep(&owner, &stack, &session.id, &sandbox_id).await?;

        owner.send(&session.id, "what was the codeword?").await?;
        let messages = owner.wait_settled(&session.id).await?;
        anyhow::ensure!(
            messages.len() == 2
                && messages
                    .iter()
                    .all(|message| message.state == MessageState::Done),
            "{messages:#?}"
        );
        let woke_request = llm
            .requests()
            .into_iter()
            .rev()
            .find(|body| body.to_string().contains("what was the codeword?"))
            .ok_or_else(|| anyhow::anyhow!("the LLM never saw the prompt after sleep"))?;
        anyhow::ensure!(
            woke_request.to_string().contains("the codeword is PAPAYA"),
            "the woken OpenCode's request lacks the earlier turn: {woke_request}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_asleep_session_rewinds_without_waking_and_wakes_into_that_turn() {
    let (stack, llm) = sleepy_stack().await.unwrap();
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let session = owner
            .create_session_with(json!({ "title": "rewind asleep" }))
            .await?;
        let ready = owner.wait_status(&session.id, "idle").await?;
        let sandbox_id = ready
            .sandbox_id
            .ok_or_else(|| anyhow::anyhow!("no sandbox"))?;
        let workspace = stack.workspace(&sandbox_id);
        // Each turn's checkpoint is taken right after it ends, with the files as then.
        std::fs::write(workspace.join("notes.txt"), "as of turn one")?;
        owner.send(&session.id, "turn one").await?;
        owner.wait_settled(&session.id).await?;
        std::fs::write(workspace.join("notes.txt"), "as of turn two")?;
        owner.send(&session.id, "turn two").await?;
        let messages = owner.wait_settled(&session.id).await?;
        let turn_one = messages[0]
            .turn_id
            .clone()
            .ok_or_else(|| anyhow::anyhow!("turn one never ran"))?;

        asleep(&owner, &stack, &session.id, &sandbox_id).await?;
        let rewound = owner
            .raw(
                Method::POST,
                &format!("/api/sessions/{}/rewind", session.id),
                Some(&json!({ "turn": turn_one }).to_string()),
            )
            .await?;
        anyhow::ensure!(rewound.status == 200, "{rewound:?}");
        // The stopped sandbox's files went back; the session did not wake for it.
        anyhow::ensure!(std::fs::read_to_string(workspace.join("notes.txt"))? == "as of turn one");
        let after = owner.session(&session.id).await?;
        anyhow::ensure!(after.status == SessionStatus::Asleep, "{after:?}");
        anyhow::ensure!(
            backend_sandbox(&stack, &sandbox_id)
                .await?
                .is_some_and(|sandbox| sandbox.status == SandboxStatus::Stopped)
        );

        // The next prompt wakes it into turn one: its files, and its conversation
        // without turn two.
        owner.send(&session.id, "turn three").await?;
        let messages = owner.wait_settled(&session.id).await?;
        anyhow::ensure!(
            messages
                .iter()
                .any(|message| message.content == "turn three"
                    && message.state == MessageState::Done),
            "{messages:#?}"
        );
        anyhow::ensure!(std::fs::read_to_string(workspace.join("notes.txt"))? == "as of turn one");
        let request = llm
            .requests()
            .into_iter()
            .rev()
            .find(|body| body.to_string().contains("turn three"))
            .ok_or_else(|| anyhow::anyhow!("the LLM never saw turn three"))?
            .to_string();
        anyhow::ensure!(
            request.contains("turn one") && !request.contains("turn two"),
            "the woken conversation is not turn one's: {request}"
        );
        Ok(())
    })
    .await;
}
