//! The agent controls of the app in real headless Chromium against the real stack and
//! the scripted LLM: choose a model for a new session, switch agent and model in the
//! session header, edit a queued prompt, steer a running turn from the composer, see
//! a retry, answer the built-in agent's question by typing, see the session's totals;
//! and switch a session to OpenCode (really `opencode serve` in the sandbox), answer its
//! permission request with a click, and watch its turn render.

use std::time::Duration;

use anyhow::Context;
use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, send_prompt, text_of, wait_for};
use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, repo_root};
use nightshift_protocol::api::AgentKind;
use serde_json::{Value, json};

/// Picks `value` in the `<select>` matching `css` once that option exists.
async fn choose(client: &Client, css: &str, value: &str) -> anyhow::Result<()> {
    let option = format!("{css} option[value='{value}']");
    wait_for(&format!("option {value} of {css}"), || async {
        Ok(text_of(client, &option).await?.map(|_| ()))
    })
    .await?;
    client
        .find(Locator::Css(css))
        .await?
        .select_by_value(value)
        .await?;
    Ok(())
}

/// The model of the last LLM request whose prompt contains `marker`.
fn model_for(llm: &ScriptedLlm, marker: &str) -> Option<String> {
    llm.requests()
        .into_iter()
        .rev()
        .find(|body| body["messages"].to_string().contains(marker))
        .and_then(|body| body["model"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_user_picks_agent_and_model_edits_the_queue_and_steers_a_turn() {
    let llm = ScriptedLlm::start().await.unwrap();
    llm.on(
        "MARK-B-SLOW",
        Script::new(vec![Step::slow_text(
            "slow",
            400,
            Duration::from_millis(100),
        )]),
    );
    llm.on(
        "MARK-B-STEER",
        Script::new(vec![Step::text("steered in the browser")]),
    );
    llm.on(
        "MARK-B-ASK",
        Script::new(vec![
            Step::tool(
                "ask_user",
                json!({"question": "Which colour should it be?"}),
            ),
            Step::text("noted the colour"),
        ]),
    );
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![("LLM_MODELS".into(), "other-model".into())],
    })
    .await
    .unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.client(profile.path(), 1400).await.unwrap();
    let result = journey(&stack, &llm, &client).await;
    let shot = repo_root().join("target/browser-agents.png");
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(&shot, png);
    }
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?} (screenshot: {})", shot.display());
    }
}

/// Signs in through the app's development sign-in page, then opens a client for the
/// same person for assertions.
async fn sign_in(stack: &Stack, client: &Client) -> anyhow::Result<Api> {
    client
        .goto(&format!("{}/signin", stack.worker_url()))
        .await?;
    for (field, value) in [
        ("[data-testid=signin-dev-name]", "Alice"),
        ("[data-testid=signin-dev-email]", "alice@example.com"),
    ] {
        client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(field))
            .await?
            .send_keys(value)
            .await?;
    }
    client
        .find(Locator::Css("[data-testid=signin-dev-submit]"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=new-session]"))
        .await?;
    stack.signed_in_api("alice@example.com").await
}

async fn journey(stack: &Stack, llm: &ScriptedLlm, client: &Client) -> anyhow::Result<()> {
    let api = sign_in(stack, client).await?;

    // The new session gets the model chosen beside the button.
    choose(client, "[data-testid=new-session-model]", "other-model").await?;
    client
        .find(Locator::Css("[data-testid=new-session]"))
        .await?
        .click()
        .await?;
    let session_id = wait_for("navigation to the new session", || async {
        let url = client.current_url().await?;
        Ok(url.path().strip_prefix("/sessions/").map(str::to_string))
    })
    .await?;
    let session = api.session(&session_id).await?;
    assert_eq!(session.model.as_deref(), Some("other-model"));
    wait_for("the idle badge", || async {
        Ok(text_of(
            client,
            "[data-testid=session-header] [data-testid=status-badge]",
        )
        .await?
        .filter(|t| t.to_lowercase().contains("idle")))
    })
    .await?;

    // The header switches agent and model; each change is stored for the next turn.
    choose(client, "[data-testid=agent-select]", "opencode").await?;
    wait_for("the agent to be OpenCode", || async {
        Ok((api.session(&session_id).await?.agent == AgentKind::Opencode).then_some(()))
    })
    .await?;
    choose(client, "[data-testid=agent-select]", "builtin").await?;
    wait_for("the agent to be built-in again", || async {
        Ok((api.session(&session_id).await?.agent == AgentKind::Builtin).then_some(()))
    })
    .await?;
    choose(client, "[data-testid=model-select]", "scripted-model").await?;
    wait_for("the model to change", || async {
        Ok(
            (api.session(&session_id).await?.model.as_deref() == Some("scripted-model"))
                .then_some(()),
        )
    })
    .await?;

    // A slow turn runs; a follow-up waits in the queue and is edited there.
    send_prompt(client, "MARK-B-SLOW take your time").await?;
    wait_for("the slow reply to stream", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|t| t.contains("slow1")))
    })
    .await?;
    assert_eq!(
        model_for(llm, "MARK-B-SLOW").as_deref(),
        Some("scripted-model")
    );
    send_prompt(client, "the first wording").await?;
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=edit-prompt]"))
        .await?
        .click()
        .await?;
    let editor = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-testid=queued-prompt-editor]"))
        .await?;
    editor.clear().await?;
    editor.send_keys("the second wording").await?;
    client
        .find(Locator::Css("[data-testid=save-prompt]"))
        .await?
        .click()
        .await?;
    wait_for("the edited prompt in the queue", || async {
        Ok(text_of(client, "[data-testid=queued-prompt-text]")
            .await?
            .filter(|t| t.contains("the second wording")))
    })
    .await?;

    // Steer: the running turn is aborted and the steering prompt runs before the
    // queued follow-up.
    // The steering turn meets a rate limit once; the retry shows in its turn.
    llm.refuse_next("MARK-B-STEER", 1);
    choose(client, "[data-testid=queue-mode]", "steer").await?;
    send_prompt(client, "MARK-B-STEER change course").await?;
    wait_for("the slow turn to end as aborted", || async {
        text_of(client, "[data-testid=turn-footer][data-outcome=aborted]").await
    })
    .await?;
    wait_for("the steered reply", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|t| t.contains("steered in the browser")))
    })
    .await?;
    let notice = text_of(client, "[data-testid=retry-notice]")
        .await?
        .context("the retry notice")?;
    assert!(notice.contains("attempt 2"), "{notice}");
    wait_for("the edited follow-up to run", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|t| t.contains("echo: the second wording")))
    })
    .await?;
    let prompts = text_of(client, "[data-testid=user-prompt]")
        .await?
        .unwrap_or_default();
    let steer_at = prompts.find("MARK-B-STEER").context("steer prompt shown")?;
    let followup_at = prompts
        .find("the second wording")
        .context("follow-up shown")?;
    assert!(steer_at < followup_at, "{prompts}");

    // The agent asks; the answer is typed into the question card.
    send_prompt(client, "MARK-B-ASK pick a colour").await?;
    let input = client
        .wait()
        .at_most(Duration::from_secs(45))
        .for_element(Locator::Css("[data-testid=question-input]"))
        .await?;
    let card = text_of(client, "[data-testid=question]")
        .await?
        .unwrap_or_default();
    assert!(card.contains("Which colour should it be?"), "{card}");
    input.send_keys("green").await?;
    client
        .find(Locator::Css("[data-testid=question-submit]"))
        .await?
        .click()
        .await?;
    wait_for("the answer on the card", || async {
        Ok(text_of(client, "[data-testid=question-answered]")
            .await?
            .filter(|t| t.contains("green")))
    })
    .await?;
    wait_for("the reply after the answer", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|t| t.contains("noted the colour")))
    })
    .await?;

    // The header totals count the four finished turns, as the API does.
    let totals = wait_for("the session totals", || async {
        Ok(text_of(client, "[data-testid=session-totals]")
            .await?
            .filter(|t| t.contains("4 turns")))
    })
    .await?;
    let session = api.session(&session_id).await?;
    assert_eq!(session.usage.turns, 4, "{totals}");
    let messages: Vec<Value> = api
        .messages(&session_id)
        .await?
        .into_iter()
        .map(|m| json!({"content": m.content, "state": m.state}))
        .collect();
    assert_eq!(
        messages,
        [
            json!({"content": "MARK-B-SLOW take your time", "state": "aborted"}),
            json!({"content": "the second wording", "state": "done"}),
            json!({"content": "MARK-B-STEER change course", "state": "done"}),
            json!({"content": "MARK-B-ASK pick a colour", "state": "done"}),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_user_switches_a_session_to_opencode_and_answers_its_permission_request() {
    let llm = ScriptedLlm::start().await.unwrap();
    llm.on(
        "MARK-OC-WRITE",
        Script::new(vec![
            Step::tool(
                "write",
                json!({"filePath": "/workspace/oc.txt", "content": "written by opencode\n"}),
            ),
            Step::text("Wrote oc.txt from OpenCode."),
        ]),
    );
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        ..Default::default()
    })
    .await
    .unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.client(profile.path(), 1400).await.unwrap();
    let result = opencode_journey(&stack, &llm, &client).await;
    let shot = repo_root().join("target/browser-opencode.png");
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(&shot, png);
    }
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?} (screenshot: {})", shot.display());
    }
}

/// The tool names the LLM was offered in the last call for `marker`.
fn tools_offered(llm: &ScriptedLlm, marker: &str) -> Vec<String> {
    llm.requests()
        .into_iter()
        .rev()
        .find(|body| body["messages"].to_string().contains(marker))
        .and_then(|body| body["tools"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|tool| tool["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

async fn opencode_journey(stack: &Stack, llm: &ScriptedLlm, client: &Client) -> anyhow::Result<()> {
    let api = sign_in(stack, client).await?;
    client
        .find(Locator::Css("[data-testid=new-session]"))
        .await?
        .click()
        .await?;
    let session_id = wait_for("navigation to the new session", || async {
        let url = client.current_url().await?;
        Ok(url.path().strip_prefix("/sessions/").map(str::to_string))
    })
    .await?;
    assert_eq!(api.session(&session_id).await?.agent, AgentKind::Builtin);
    wait_for("the idle badge", || async {
        Ok(text_of(
            client,
            "[data-testid=session-header] [data-testid=status-badge]",
        )
        .await?
        .filter(|t| t.to_lowercase().contains("idle")))
    })
    .await?;

    // A first turn on the built-in agent, then the session is switched to OpenCode
    // in its header; the next turn runs there (OpenCode offers the LLM its own tools).
    send_prompt(client, "MARK-OC-FIRST hello").await?;
    wait_for("the built-in reply", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|t| t.contains("echo: MARK-OC-FIRST hello")))
    })
    .await?;
    let builtin_tools = tools_offered(llm, "MARK-OC-FIRST");
    assert!(
        builtin_tools.iter().any(|t| t == "write_file"),
        "{builtin_tools:?}"
    );
    choose(client, "[data-testid=agent-select]", "opencode").await?;
    wait_for("the switch to OpenCode", || async {
        Ok((api.session(&session_id).await?.agent == AgentKind::Opencode).then_some(()))
    })
    .await?;
    send_prompt(client, "MARK-OC-WRITE please write oc.txt").await?;

    // OpenCode asks before writing; the card shows the request and a countdown, and
    // the answer is given with a click.
    let card = wait_for("the permission request", || async {
        text_of(client, "[data-testid=question]").await
    })
    .await?;
    assert!(
        card.to_lowercase().contains("permission requested"),
        "{card}"
    );
    let countdown = text_of(client, "[data-testid=question-countdown]")
        .await?
        .unwrap_or_default();
    assert!(countdown.contains("left"), "{countdown}");
    let mut clicked = false;
    for button in client
        .find_all(Locator::Css("[data-testid=question-option]"))
        .await?
    {
        if button.text().await? == "allow" {
            button.click().await?;
            clicked = true;
            break;
        }
    }
    anyhow::ensure!(clicked, "no allow button on {card}");
    wait_for("the answer on the card", || async {
        Ok(text_of(client, "[data-testid=question-answered]")
            .await?
            .filter(|t| t.contains("allow")))
    })
    .await?;

    // The OpenCode turn renders like a built-in one: the tool call, the reply, the
    // outcome.
    wait_for("the write tool call", || async {
        text_of(client, "[data-testid=tool-call][data-tool=write]").await
    })
    .await?;
    wait_for("OpenCode's reply", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|t| t.contains("Wrote oc.txt from OpenCode.")))
    })
    .await?;
    wait_for("the finished turn", || async {
        text_of(client, "[data-testid=turn-footer][data-outcome=done]").await
    })
    .await?;
    let sandbox = api
        .session(&session_id)
        .await?
        .sandbox_id
        .context("sandbox id")?;
    assert_eq!(
        std::fs::read_to_string(stack.workspace(&sandbox).join("oc.txt"))?,
        "written by opencode\n"
    );
    let opencode_tools = tools_offered(llm, "MARK-OC-WRITE");
    assert!(
        opencode_tools.iter().any(|t| t == "write")
            && !opencode_tools.iter().any(|t| t == "write_file"),
        "{opencode_tools:?}"
    );
    Ok(())
}
