//! Telling people, in real headless Chromium against the real stack: with
//! notification permission granted, a turn that finishes while the tab shows another
//! page becomes a browser notification (title: the session's, body: what happened)
//! and the tab title's count; clicking the notification opens the session and reads
//! the entry; the inbox page lists a later entry and clicking it opens the session;
//! and a turn that finishes while its session is on screen counts but does not
//! notify.
//!
//! The page's `Notification` is wrapped (a subclass that records each construction
//! and is still the real constructor), so the test sees exactly what the app asked
//! the browser to show.

use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, sign_in, wait_for};
use nightshift_e2e::stack::{Stack, stack_with_llm};
use serde_json::json;

#[tokio::test]
async fn a_finished_turn_notifies_counts_in_the_title_and_opens_from_the_inbox() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.client(profile.path(), 1280).await.unwrap();
    let result = journey(&stack, &driver, &client).await;
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

/// Wraps the page's `Notification` to record every construction (once per page).
const RECORD_NOTIFICATIONS: &str = r#"
    if (!window.__notes) {
        window.__notes = [];
        const Real = window.Notification;
        class Recording extends Real {
            constructor(title, options) {
                super(title, options);
                window.__notes.push({ title, body: options && options.body, shown: this });
            }
        }
        window.Notification = Recording;
    }
    return Notification.permission;
"#;

/// The notifications the app constructed so far: (title, body).
async fn notes(client: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let notes = client
        .execute(
            "return (window.__notes || []).map(n => [n.title, n.body || '']);",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(notes)?)
}

async fn title(client: &Client) -> anyhow::Result<String> {
    Ok(client
        .execute("return document.title;", vec![])
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

async fn wait_title(client: &Client, want: &str) -> anyhow::Result<()> {
    wait_for(&format!("the tab title {want:?}"), || async move {
        Ok((title(client).await? == want).then_some(()))
    })
    .await
}

async fn wait_path(client: &Client, want: &str) -> anyhow::Result<()> {
    wait_for(&format!("the page {want}"), || async move {
        Ok((client.current_url().await?.path() == want).then_some(()))
    })
    .await
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

async fn journey(stack: &Stack, driver: &Chromedriver, client: &Client) -> anyhow::Result<()> {
    let api = stack.signed_in_api("alice@example.com").await?;
    let session = api
        .create_session_with(json!({ "title": "Nightly refactor" }))
        .await?;
    api.wait_status(&session.id, "idle").await?;
    let session_path = format!("/sessions/{}", session.id);

    sign_in(client, &stack.worker_url(), "alice@example.com", "Alice").await?;
    driver.grant(client, "notifications").await?;
    client
        .goto(&format!("{}{session_path}", stack.worker_url()))
        .await?;
    client
        .wait()
        .for_element(Locator::Css("[data-testid=composer]"))
        .await?;
    let permission = client.execute(RECORD_NOTIFICATIONS, vec![]).await?;
    anyhow::ensure!(permission == json!("granted"), "{permission}");
    wait_title(client, "Nightshift").await?;

    // Another page in the app (no reload: the recorder stays), then the turn ends.
    click(client, "[data-testid=nav-settings]").await?;
    wait_path(client, "/settings").await?;
    api.send(&session.id, "MARK-NOTIFY first").await?;
    let first = wait_for("a notification", || async move {
        Ok(notes(client).await?.into_iter().next())
    })
    .await?;
    anyhow::ensure!(first.0 == "Nightly refactor", "{first:?}");
    anyhow::ensure!(first.1 == "Finished: echo: MARK-NOTIFY first", "{first:?}");
    wait_title(client, "(1) Nightshift").await?;
    let badge = client
        .find(Locator::Css("[data-testid=inbox-count]"))
        .await?
        .text()
        .await?;
    anyhow::ensure!(badge == "1", "{badge}");

    // Clicking the notification opens its session and reads the entry.
    client
        .execute(
            "window.__notes[0].shown.dispatchEvent(new Event('click')); return null;",
            vec![],
        )
        .await?;
    wait_path(client, &session_path).await?;
    wait_title(client, "Nightshift").await?;

    // A later entry, from the inbox page.
    click(client, "[data-testid=nav-settings]").await?;
    wait_path(client, "/settings").await?;
    api.send(&session.id, "MARK-NOTIFY second").await?;
    wait_title(client, "(1) Nightshift").await?;
    anyhow::ensure!(notes(client).await?.len() == 2);
    click(client, "[data-testid=nav-inbox]").await?;
    wait_path(client, "/inbox").await?;
    let entries = wait_for("two inbox entries", || async move {
        let entries = client
            .find_all(Locator::Css("[data-testid=inbox-entry]"))
            .await?;
        Ok((entries.len() == 2).then_some(entries))
    })
    .await?;
    let newest = entries[0].text().await?;
    anyhow::ensure!(
        newest.contains("Nightly refactor") && newest.contains("echo: MARK-NOTIFY second"),
        "{newest}"
    );
    entries[0].click().await?;
    wait_path(client, &session_path).await?;
    wait_title(client, "Nightshift").await?;

    // With its session on screen, a finished turn counts but does not notify.
    api.send(&session.id, "MARK-NOTIFY third").await?;
    wait_title(client, "(1) Nightshift").await?;
    let all: Vec<(String, String)> = notes(client).await?;
    anyhow::ensure!(
        all.len() == 2,
        "no notification for the session on screen: {all:?}"
    );
    Ok(())
}
