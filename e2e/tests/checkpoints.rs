//! Checkpoints, forks and rewinds on the real stack (wrangler dev, the sandbox
//! backend, runners under bubblewrap, the scripted LLM): every turn's files are
//! kept, a fork from the first turn diverges from its parent, a rewind brings back exactly the first turn's files (a nested git repository and a
//! link to a host path included) and the next LLM request carries only the first
//! turn's conversation; bad rewinds are refused with stable codes; a workspace over
//! the checkpoint limit fails its checkpoint with an event, not a stuck session.

use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, stack_with_llm, with_logs};
use nightshift_protocol::events::{EventBody, SessionEvent};
use reqwest::Method;
use serde_json::json;

const TURN_ONE: &str = "echo one > notes.txt && mkdir repo && cd repo && git init -q \
    && echo tracked > a.txt && git add a.txt \
    && git -c user.name=t -c user.email=t@example.com commit -qm first && cd .. \
    && ln -s /etc/passwd host-link";
const TURN_TWO: &str = "echo two > notes.txt && echo second > second.txt && rm -rf repo";

/// The user messages of an LLM request, in order.
fn user_texts(request: &serde_json::Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn turn_of(events: &[SessionEvent]) -> String {
    events
        .last()
        .and_then(|event| event.turn_id.clone())
        .expect("a checkpoint event names its turn")
}

async fn rewind(
    api: &Api,
    session: &str,
    body: &str,
) -> anyhow::Result<nightshift_e2e::client::Answer> {
    api.raw(
        Method::POST,
        &format!("/api/sessions/{session}/rewind"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_fork_diverges_and_a_rewind_brings_back_the_first_turns_files_and_conversation() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-TURN-ONE",
            Script::new(vec![
                Step::tool("bash", json!({"command": TURN_ONE})),
                Step::text("turn one done"),
            ]),
        );
        llm.on(
            "MARK-TURN-TWO",
            Script::new(vec![
                Step::tool("bash", json!({"command": TURN_TWO})),
                Step::text("turn two done"),
            ]),
        );
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let mut events = api.events(&session.id, None).await?;
        let saved = |body: &EventBody| matches!(body, EventBody::CheckpointSaved { .. });

        api.send(&session.id, "MARK-TURN-ONE write").await?;
        let turn_one = turn_of(&events.until(saved).await?);
        api.send(&session.id, "MARK-TURN-TWO write more").await?;
        let turn_two = turn_of(&events.until(saved).await?);
        assert_ne!(turn_one, turn_two);
        api.wait_settled(&session.id).await?;
        let sandbox = api
            .session(&session.id)
            .await?
            .sandbox_id
            .expect("a sandbox");
        let workspace = stack.workspace(&sandbox);
        assert!(workspace.join("second.txt").exists());

        // A fork from the first turn: its own sandbox with that turn's files and
        // conversation, independent of its parent from then on.
        let forked = api
            .raw(
                Method::POST,
                &format!("/api/sessions/{}/fork", session.id),
                Some(&json!({"turn": turn_one}).to_string()),
            )
            .await?;
        assert_eq!(forked.status, 201, "{}", forked.body);
        let fork_id = forked.body["id"]
            .as_str()
            .expect("the fork's id")
            .to_owned();
        assert_ne!(fork_id, session.id);
        api.wait_status(&fork_id, "idle").await?;
        let fork_sandbox = api.session(&fork_id).await?.sandbox_id.expect("a sandbox");
        assert_ne!(fork_sandbox, sandbox);
        let fork_workspace = stack.workspace(&fork_sandbox);
        assert_eq!(
            std::fs::read_to_string(fork_workspace.join("notes.txt"))?,
            "one\n"
        );
        assert!(!fork_workspace.join("second.txt").exists());
        assert!(fork_workspace.join("repo/.git/HEAD").is_file());
        llm.on(
            "MARK-FORK-WRITE",
            Script::new(vec![
                Step::tool("bash", json!({"command": "echo fork > fork-only.txt"})),
                Step::text("fork wrote"),
            ]),
        );
        api.send(&fork_id, "MARK-FORK-WRITE in the fork").await?;
        api.wait_settled(&fork_id).await?;
        let last = llm.requests().last().cloned().unwrap();
        assert_eq!(
            user_texts(&last),
            ["MARK-TURN-ONE write", "MARK-FORK-WRITE in the fork"],
            "{last}"
        );
        assert!(fork_workspace.join("fork-only.txt").exists());
        assert!(
            !workspace.join("fork-only.txt").exists(),
            "the parent does not see the fork's write"
        );
        assert!(
            !fork_workspace.join("second.txt").exists(),
            "nor the fork the parent's"
        );

        let answer = rewind(&api, &session.id, &json!({"turn": turn_one}).to_string()).await?;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["rewound_turns"], json!([turn_two]));
        let seen = events
            .until(|body| matches!(body, EventBody::Rewound { .. }))
            .await?;
        let event = seen.last().unwrap();
        assert_eq!(event.turn_id.as_deref(), Some(turn_one.as_str()));
        assert!(matches!(
            &event.body,
            EventBody::Rewound { rewound_turns } if *rewound_turns == [turn_two.clone()]
        ));

        // Exactly the first turn's files: its content back, the second's file gone,
        // the nested repository whole, the link a link.
        assert_eq!(
            std::fs::read_to_string(workspace.join("notes.txt"))?,
            "one\n"
        );
        assert!(!workspace.join("second.txt").exists());
        assert_eq!(
            std::fs::read_to_string(workspace.join("repo/a.txt"))?,
            "tracked\n"
        );
        assert!(workspace.join("repo/.git/HEAD").is_file());
        let link = std::fs::symlink_metadata(workspace.join("host-link"))?;
        assert!(link.file_type().is_symlink());
        assert_eq!(
            std::fs::read_link(workspace.join("host-link"))?,
            std::path::Path::new("/etc/passwd")
        );

        // The agent goes on from the first turn only.
        api.wait_status(&session.id, "idle").await?;
        api.send(&session.id, "what is there now?").await?;
        api.wait_settled(&session.id).await?;
        let last = llm.requests().last().cloned().unwrap();
        assert_eq!(
            user_texts(&last),
            ["MARK-TURN-ONE write", "what is there now?"],
            "{last}"
        );
        assert!(!last.to_string().contains("turn two done"), "{last}");

        // Refusals change nothing and say why.
        let again = rewind(&api, &session.id, &json!({"turn": turn_two}).to_string()).await?;
        assert_eq!(
            (again.status, again.error_code()),
            (409, Some("no_checkpoint"))
        );
        let unknown = rewind(&api, &session.id, r#"{"turn":"no-such-turn"}"#).await?;
        assert_eq!(
            (unknown.status, unknown.error_code()),
            (404, Some("not_found"))
        );
        let bad = rewind(&api, &session.id, r#"{"turn":"../x"}"#).await?;
        assert_eq!(
            (bad.status, bad.error_code()),
            (400, Some("invalid_request"))
        );
        let broken = rewind(&api, &session.id, r#"{"turn":1}"#).await?;
        assert_eq!(
            (broken.status, broken.error_code()),
            (400, Some("invalid_json"))
        );
        assert_eq!(
            std::fs::read_to_string(workspace.join("notes.txt"))?,
            "one\n"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_workspace_past_the_checkpoint_limit_fails_its_checkpoint_and_the_session_goes_on() {
    let llm = ScriptedLlm::start().await.unwrap();
    let stack = Stack::start_with_backend(
        StackOptions {
            llm_base_url: Some(llm.base_url()),
            ..StackOptions::default()
        },
        vec![("SANDBOX_CHECKPOINT_MAX_FILES".into(), "500".into())],
    )
    .await
    .unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-MANY",
            Script::new(vec![
                Step::tool(
                    "bash",
                    json!({"command": "mkdir many && cd many && seq 1 800 | xargs touch"}),
                ),
                Step::text("made many files"),
            ]),
        );
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let mut events = api.events(&session.id, None).await?;
        api.send(&session.id, "MARK-MANY files").await?;
        let seen = events
            .until(|body| matches!(body, EventBody::Error { message } if message.contains("could not be kept")))
            .await?;
        let failed_turn = turn_of(&seen);
        assert!(
            !seen.iter().any(|event| matches!(event.body, EventBody::CheckpointSaved { .. })),
            "no checkpoint was kept"
        );
        // Not stuck: the next prompt runs (and, the files gone, is kept again), and
        // the failed turn cannot be gone back to.
        llm.on(
            "MARK-FEWER",
            Script::new(vec![
                Step::tool("bash", json!({"command": "rm -rf many"})),
                Step::text("removed them"),
            ]),
        );
        api.send(&session.id, "MARK-FEWER still there?").await?;
        events
            .until(|body| matches!(body, EventBody::CheckpointSaved { .. }))
            .await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages.len(), 2);
        let refused = rewind(&api, &session.id, &json!({"turn": failed_turn}).to_string()).await?;
        assert_eq!((refused.status, refused.error_code()), (409, Some("no_checkpoint")));
        Ok(())
    })
    .await;
}
