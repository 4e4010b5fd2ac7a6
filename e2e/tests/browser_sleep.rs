//! Sleep and wake from the app, in real headless Chromium against the real stack
//! (the deployment's default sleep time is 10 minutes, the shortest choice 1 s):
//! the user sets a short sleep time on the Settings page and their idle session goes
//! to sleep by it; they set it back to the default there; the session's page shows
//! it asleep with the Wake button; Wake brings it back ready, and a prompt sent then
//! gets its answer.

use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, send_prompt, sign_in, text_of, wait_for};
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, StackOptions};
use serde_json::json;

#[tokio::test]
async fn a_session_asleep_by_the_users_time_wakes_from_its_page_and_answers() {
    let llm = ScriptedLlm::start().await.unwrap();
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![
            ("SESSION_SLEEP_AFTER_MS".into(), "600000".into()),
            ("SESSION_SLEEP_MIN_MS".into(), "1000".into()),
        ],
    })
    .await
    .unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.client(profile.path(), 1280).await.unwrap();
    let result = journey(&stack, &client).await;
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

async fn click(client: &Client, css: &str) -> anyhow::Result<()> {
    client
        .wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await?
        .click()
        .await?;
    Ok(())
}

/// Waits until the text of `css` contains `want`.
async fn wait_text(client: &Client, css: &str, want: &str) -> anyhow::Result<String> {
    wait_for(&format!("{css} saying {want:?}"), || async move {
        Ok(text_of(client, css)
            .await?
            .filter(|text| text.contains(want)))
    })
    .await
}

/// Empties a text box the way typing would (an `input` event), for the app's
/// signal bound to it.
async fn empty_field(client: &Client, css: &str) -> anyhow::Result<()> {
    client
        .execute(
            "const field = document.querySelector(arguments[0]);
             field.value = '';
             field.dispatchEvent(new Event('input', { bubbles: true }));
             return null;",
            vec![json!(css)],
        )
        .await?;
    Ok(())
}

const BADGE: &str = "[data-testid=session-header] [data-testid=status-badge]";
const FIELD: &str = "[data-testid=sleep-minutes]";
const NOTE: &str = "[data-testid=sleep-note]";

async fn journey(stack: &Stack, client: &Client) -> anyhow::Result<()> {
    let api = stack.signed_in_api("alice@example.com").await?;
    let session = api
        .create_session_with(json!({ "title": "Sleepy" }))
        .await?;
    api.send(&session.id, "before sleep").await?;
    api.wait_settled(&session.id).await?;
    api.wait_status(&session.id, "idle").await?;

    // Settings: the default is shown; a short time of one's own puts the idle
    // session to sleep.
    sign_in(client, &stack.worker_url(), "alice@example.com", "Alice").await?;
    client
        .goto(&format!("{}/settings", stack.worker_url()))
        .await?;
    wait_text(client, NOTE, "The default is 10 minutes").await?;
    client
        .find(Locator::Css(FIELD))
        .await?
        .send_keys("0.05")
        .await?;
    click(client, "[data-testid=sleep-save]").await?;
    wait_text(client, NOTE, "Sessions sleep after 3 seconds idle").await?;
    api.wait_status(&session.id, "asleep").await?;

    // Back to the default, so the woken session stays awake while it is checked.
    empty_field(client, FIELD).await?;
    click(client, "[data-testid=sleep-save]").await?;
    wait_text(client, NOTE, "Sessions sleep after 10 minutes idle").await?;

    // The session's page: asleep, with Wake; Wake brings it back ready.
    client
        .goto(&format!("{}/sessions/{}", stack.worker_url(), session.id))
        .await?;
    wait_text(client, BADGE, "asleep").await?;
    click(client, "[data-testid=wake]").await?;
    wait_text(client, BADGE, "idle").await?;
    wait_for("the Wake button to go", || async {
        Ok(client
            .find_all(Locator::Css("[data-testid=wake]"))
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;

    // A prompt now is answered.
    send_prompt(client, "after wake").await?;
    wait_text(client, "[data-testid=assistant-text]", "echo: after wake").await?;
    wait_text(client, BADGE, "idle").await?;
    Ok(())
}
