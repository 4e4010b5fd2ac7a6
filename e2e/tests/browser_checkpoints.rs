//! Rewinding and forking from the app, in real headless Chromium against the real
//! stack: each finished turn offers "Rewind to here" and "Fork from here"; a rewind
//! to the first turn, confirmed in the browser's dialog, greys the second turn with
//! its label and puts the first turn's files back in the sandbox; a fork opens the
//! new session's page.

use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, sign_in, wait_for};
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, stack_with_llm};
use nightshift_protocol::events::EventBody;
use serde_json::json;

#[tokio::test]
async fn a_turn_is_rewound_and_forked_from_the_chat() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.client(profile.path(), 1280).await.unwrap();
    let result = journey(&stack, &llm, &client).await;
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

/// Clicks the `index`th element matching `css`.
async fn click_nth(client: &Client, css: &str, index: usize) -> anyhow::Result<()> {
    let elements = client.find_all(Locator::Css(css)).await?;
    let element = elements
        .get(index)
        .ok_or_else(|| anyhow::anyhow!("no {css} number {index}"))?;
    element.click().await?;
    Ok(())
}

async fn journey(stack: &Stack, llm: &ScriptedLlm, client: &Client) -> anyhow::Result<()> {
    llm.on(
        "MARK-UI-ONE",
        Script::new(vec![
            Step::tool("bash", json!({"command": "echo one > notes.txt"})),
            Step::text("first"),
        ]),
    );
    llm.on(
        "MARK-UI-TWO",
        Script::new(vec![
            Step::tool(
                "bash",
                json!({"command": "echo two > notes.txt && touch later.txt"}),
            ),
            Step::text("second"),
        ]),
    );
    let api = stack.signed_in_api("alice@example.com").await?;
    let session = api
        .create_session_with(json!({"title": "Rewind me"}))
        .await?;
    api.wait_status(&session.id, "idle").await?;
    let mut events = api.events(&session.id, None).await?;
    let saved = |body: &EventBody| matches!(body, EventBody::CheckpointSaved { .. });
    api.send(&session.id, "MARK-UI-ONE").await?;
    events.until(saved).await?;
    api.send(&session.id, "MARK-UI-TWO").await?;
    let second = events.until(saved).await?;
    let turn_two = second
        .last()
        .and_then(|event| event.turn_id.clone())
        .unwrap();
    api.wait_settled(&session.id).await?;
    let sandbox = api.session(&session.id).await?.sandbox_id.unwrap();
    let workspace = stack.workspace(&sandbox);

    sign_in(client, &stack.worker_url(), "alice@example.com", "Alice").await?;
    client
        .goto(&format!("{}/sessions/{}", stack.worker_url(), session.id))
        .await?;
    wait_for("a rewind button under each turn", || async {
        let buttons = client
            .find_all(Locator::Css("[data-testid=rewind-turn]"))
            .await?;
        Ok((buttons.len() == 2).then_some(()))
    })
    .await?;

    // Rewind to the first turn; the browser asks first.
    click_nth(client, "[data-testid=rewind-turn]", 0).await?;
    wait_for("the confirmation", || async {
        Ok(client.accept_alert().await.is_ok().then_some(()))
    })
    .await?;
    let rewound = wait_for("the second turn greyed and labelled", || async {
        let turns = client
            .find_all(Locator::Css("article.turn--rewound"))
            .await?;
        let Some(turn) = turns.first() else {
            return Ok(None);
        };
        let label = client
            .find(Locator::Css("[data-testid=turn-rewound]"))
            .await?
            .text()
            .await?;
        Ok(Some((turns.len(), turn.attr("data-turn-id").await?, label)))
    })
    .await?;
    anyhow::ensure!(rewound.0 == 1, "one turn rewound: {rewound:?}");
    anyhow::ensure!(
        rewound.1.as_deref() == Some(turn_two.as_str()),
        "{rewound:?}"
    );
    anyhow::ensure!(rewound.2.starts_with("Rewound"), "{rewound:?}");
    anyhow::ensure!(std::fs::read_to_string(workspace.join("notes.txt"))? == "one\n");
    anyhow::ensure!(!workspace.join("later.txt").exists());
    // A rewound turn offers neither action any more.
    let buttons = client
        .find_all(Locator::Css("[data-testid=rewind-turn]"))
        .await?;
    anyhow::ensure!(buttons.len() == 1, "{} rewind buttons", buttons.len());

    // Fork from the first turn: the new session's page opens.
    click_nth(client, "[data-testid=fork-turn]", 0).await?;
    let url = wait_for("the fork's page", || async {
        let url = client.current_url().await?;
        Ok(
            (url.path().starts_with("/sessions/") && !url.path().ends_with(&session.id))
                .then(|| url.path().to_owned()),
        )
    })
    .await?;
    let fork_id = url.trim_start_matches("/sessions/").to_owned();
    let fork = api.session(&fork_id).await?;
    anyhow::ensure!(fork.title == "Rewind me (fork)", "{}", fork.title);
    Ok(())
}
