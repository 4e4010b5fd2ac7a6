//! Ending sessions from the app, in real headless Chromium against the real stack:
//! the sidebar's search narrows the list, two sessions ticked there are archived
//! through the bulk bar, they leave the default list and come back with "Show
//! archived", and an archived session's page shows its history read-only under a
//! banner saying why the composer is off.

use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, sign_in, text_of, wait_for};
use nightshift_e2e::stack::{Stack, stack_with_llm};
use nightshift_protocol::api::SessionStatus;
use serde_json::json;

#[tokio::test]
async fn a_searched_selection_is_archived_from_the_list_and_read_only_after() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
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

/// The titles the sidebar lists now, in order.
async fn listed(client: &Client) -> anyhow::Result<Vec<String>> {
    let mut titles = Vec::new();
    for row in client
        .find_all(Locator::Css(
            "[data-testid=session-item] .session-item__title",
        ))
        .await?
    {
        titles.push(row.text().await?);
    }
    Ok(titles)
}

/// Waits until the sidebar lists exactly `expected` (in any order).
async fn wait_listed(client: &Client, expected: &[&str]) -> anyhow::Result<()> {
    let mut want: Vec<String> = expected.iter().map(|t| (*t).to_owned()).collect();
    want.sort();
    wait_for(&format!("the list to be {expected:?}"), || {
        let want = want.clone();
        async move {
            let mut titles = listed(client).await?;
            titles.sort();
            Ok((titles == want).then_some(()))
        }
    })
    .await
}

async fn journey(stack: &Stack, client: &Client) -> anyhow::Result<()> {
    let api = stack.signed_in_api("alice@example.com").await?;
    let mut reports = Vec::new();
    for title in ["Quarterly report", "Weekly REPORT", "Fix the login page"] {
        let session = api.create_session_with(json!({ "title": title })).await?;
        if title != "Fix the login page" {
            reports.push(session.id);
        }
    }
    api.send(&reports[0], "kept after archiving").await?;
    api.wait_settled(&reports[0]).await?;

    sign_in(client, &stack.worker_url(), "alice@example.com", "Alice").await?;
    wait_listed(
        client,
        &["Quarterly report", "Weekly REPORT", "Fix the login page"],
    )
    .await?;

    // The search narrows the list (any case), after a pause in typing.
    client
        .find(Locator::Css("[data-testid=session-search]"))
        .await?
        .send_keys("report")
        .await?;
    wait_listed(client, &["Quarterly report", "Weekly REPORT"]).await?;

    // Tick both, archive them through the bulk bar.
    for tick in client
        .find_all(Locator::Css("[data-testid=session-select]"))
        .await?
    {
        tick.click().await?;
    }
    let count = wait_for("the bulk bar", || async {
        text_of(client, "[data-testid=bulk-count]").await
    })
    .await?;
    anyhow::ensure!(count == "2 selected", "{count}");
    client
        .find(Locator::Css("[data-testid=bulk-archive]"))
        .await?
        .click()
        .await?;
    wait_listed(client, &[]).await?;
    for id in &reports {
        anyhow::ensure!(api.session(id).await?.status == SessionStatus::Archived);
    }

    // Gone from the default list; back with "Show archived".
    client
        .find(Locator::Css("[data-testid=session-search]"))
        .await?
        .clear()
        .await?;
    // Clearing sends no key; one space (which searches nothing) makes the box
    // filter again.
    client
        .find(Locator::Css("[data-testid=session-search]"))
        .await?
        .send_keys(" ")
        .await?;
    wait_listed(client, &["Fix the login page"]).await?;
    client
        .find(Locator::Css("[data-testid=show-archived]"))
        .await?
        .click()
        .await?;
    wait_listed(
        client,
        &["Quarterly report", "Weekly REPORT", "Fix the login page"],
    )
    .await?;

    // An archived session's history is there, read-only, with the reason.
    client
        .find(Locator::Css(&format!(
            "[data-testid=session-item][data-session-id='{}']",
            reports[0]
        )))
        .await?
        .click()
        .await?;
    let banner = wait_for("the archived banner", || async {
        text_of(client, "[data-testid=archived-banner]").await
    })
    .await?;
    anyhow::ensure!(
        banner.contains("archived") && banner.contains("checkpoint"),
        "{banner}"
    );
    wait_for("the history", || async {
        Ok(text_of(client, "[data-testid=timeline]")
            .await?
            .filter(|text| text.contains("echo: kept after archiving")))
    })
    .await?;
    let textarea = client
        .find(Locator::Css("[data-testid=composer] textarea"))
        .await?;
    anyhow::ensure!(
        textarea.prop("disabled").await?.as_deref() == Some("true"),
        "the composer is off"
    );
    anyhow::ensure!(
        client
            .find_all(Locator::Css("[data-testid=archive-session]"))
            .await?
            .is_empty(),
        "an archived session offers no Archive"
    );
    Ok(())
}
