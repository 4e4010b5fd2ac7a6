//! The app in real headless Chromium against the real stack: create a session, send
//! a prompt, watch the streamed text and the tool call render, see the reply's
//! markdown become elements (with its raw HTML and `javascript:` link made harmless),
//! and see the sessions list update live when a session is created elsewhere.

use std::time::Duration;

use anyhow::Context;
use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, sign_in, text_of, wait_for};
use nightshift_e2e::scripted_llm::{Chunk, Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, repo_root};
use serde_json::json;

#[tokio::test]
async fn a_user_creates_a_session_sends_a_prompt_and_watches_the_agent_work() {
    let llm = ScriptedLlm::start().await.unwrap();
    llm.on(
        "MARK-UI",
        Script::new(vec![
            Step::tool(
                "write_file",
                json!({"path": "ui.txt", "content": "from the browser"}),
            ),
            markdown_reply(),
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
    let client = driver.client(profile.path(), 1280).await.unwrap();
    let result = journey(&stack, &client).await;
    let shot = repo_root().join("target/browser-journey.png");
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(&shot, png);
    }
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?} (screenshot: {})", shot.display());
    }
}

/// Five plain deltas, then markdown streamed in pieces that split its code fence,
/// with raw HTML that would run script if it were injected and a `javascript:` link.
fn markdown_reply() -> Step {
    let mut step = Step::slow_text("streamed-", 5, Duration::from_millis(50));
    for piece in [
        "\n\nThis is **bold-md** with `inline-md` and a table:\n\n",
        "| file | lines |\n|---|---:|\n| ui.txt | 1 |\n\n",
        "```rust\nfn main() {\n",
        "    let answer = 42;\n}\n``",
        "`\n\n[inert-md](javascript:window.__clicked=1) ",
        "<img src=x onerror=\"window.__injected=1\"> done-md",
    ] {
        step.chunks.push(Chunk::Pause(Duration::from_millis(50)));
        step.chunks.push(Chunk::Text(piece.to_owned()));
    }
    step
}

/// The reply's markdown rendered as elements, and nothing in it ran or links out.
async fn check_markdown(client: &Client) -> anyhow::Result<()> {
    let reply = "[data-testid=assistant-text]";
    let bold = text_of(client, &format!("{reply} strong")).await?;
    anyhow::ensure!(bold.as_deref() == Some("bold-md"), "{bold:?}");
    let inline = text_of(client, &format!("{reply} p code")).await?;
    anyhow::ensure!(inline.as_deref() == Some("inline-md"), "{inline:?}");
    let cell = text_of(client, &format!("{reply} table td.md-right")).await?;
    anyhow::ensure!(cell.as_deref() == Some("1"), "{cell:?}");
    let keywords = text_of(
        client,
        &format!("{reply} pre.code-block[data-language=rust] code .hl-kw"),
    )
    .await?;
    anyhow::ensure!(keywords.as_deref() == Some("fn\nlet"), "{keywords:?}");
    let number = text_of(client, &format!("{reply} pre.code-block .hl-num")).await?;
    anyhow::ensure!(number.as_deref() == Some("42"), "{number:?}");
    let inert = text_of(client, &format!("{reply} .md-link-inert")).await?;
    anyhow::ensure!(inert.as_deref() == Some("inert-md"), "{inert:?}");
    let dangerous = client
        .execute(
            r#"const reply = document.querySelector(arguments[0]);
               return [reply.querySelectorAll('img, script, a[href^="javascript"]').length,
                       window.__injected === undefined, reply.textContent.includes('<img src=x')];"#,
            vec![serde_json::Value::from(reply)],
        )
        .await?;
    anyhow::ensure!(dangerous == json!([0, true, true]), "{dangerous}");
    Ok(())
}

async fn journey(stack: &Stack, client: &Client) -> anyhow::Result<()> {
    // Signed in through the development sign-in: the test's client, and the browser
    // itself (the page calls it, so the browser keeps its own HttpOnly cookie).
    let api = stack.signed_in_api("alice@example.com").await?;
    sign_in(client, &stack.worker_url(), "alice@example.com", "alice").await?;
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=new-session]"))
        .await?
        .click()
        .await?;

    let session_id = wait_for("navigation to the new session", || async {
        let url = client.current_url().await?;
        Ok(url.path().strip_prefix("/sessions/").map(str::to_string))
    })
    .await?;
    wait_for("the new session in the sidebar", || async {
        text_of(
            client,
            &format!("[data-testid=session-item][data-session-id='{session_id}']"),
        )
        .await
    })
    .await?;

    let textarea = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=composer] textarea"))
        .await?;
    textarea.send_keys("MARK-UI write ui.txt please").await?;
    client
        .find(Locator::Css("[data-testid=send]"))
        .await?
        .click()
        .await?;

    wait_for("the user's prompt", || async {
        Ok(text_of(client, "[data-testid=user-prompt]")
            .await?
            .filter(|t| t.contains("MARK-UI")))
    })
    .await?;
    let tool = wait_for("the write_file tool call with its output", || async {
        Ok(
            text_of(client, "[data-testid=tool-call][data-tool=write_file]")
                .await?
                .filter(|t| t.contains("ui.txt")),
        )
    })
    .await?;
    assert!(tool.contains("write_file"), "{tool}");
    let text = wait_for("the streamed reply", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|t| t.contains("streamed-4")))
    })
    .await?;
    assert!(text.contains("streamed-0 streamed-1"), "{text}");
    wait_for("the whole markdown reply", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|t| t.contains("done-md")))
    })
    .await?;
    check_markdown(client).await?;
    wait_for("the idle badge after the turn", || async {
        Ok(text_of(
            client,
            "[data-testid=session-header] [data-testid=status-badge]",
        )
        .await?
        .filter(|t| t.to_lowercase().contains("idle")))
    })
    .await?;

    // The file is in the session's sandbox.
    let session = api.session(&session_id).await?;
    let sandbox = session.sandbox_id.context("sandbox id")?;
    assert_eq!(
        std::fs::read_to_string(stack.workspace(&sandbox).join("ui.txt"))?,
        "from the browser"
    );

    // A session created elsewhere (another tab, a script) appears without reload.
    let other = api.create_session().await?;
    wait_for("the other session to appear live", || async {
        text_of(
            client,
            &format!("[data-testid=session-item][data-session-id='{}']", other.id),
        )
        .await
    })
    .await?;
    // And its title follows its first prompt, live.
    api.send(&other.id, "Live title check").await?;
    wait_for("the other session's title", || async {
        Ok(text_of(
            client,
            &format!("[data-testid=session-item][data-session-id='{}']", other.id),
        )
        .await?
        .filter(|t| t.contains("Live title check")))
    })
    .await?;
    Ok(())
}
