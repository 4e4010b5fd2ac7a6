//! Spend in the app, in real headless Chromium against the real stack: after a
//! scripted turn priced by the admin, `/admin/usage` shows the team's cost and
//! tokens, a bar chart with today's bar drawn, and the member's line; the session's
//! header shows its cost; the admin's spend-cap form saves a cap the API then holds.

use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, sign_in, text_of, wait_for};
use nightshift_e2e::scripted_llm::{Script, Step};
use nightshift_e2e::stack::{Stack, stack_with_llm};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn the_usage_page_charts_the_teams_spend_and_the_caps_form_saves() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    // 1,000 tokens in and 100 out at $2 and $10 per million: $0.0030.
    llm.on(
        "PRICED",
        Script::new(vec![Step::text("priced answer").with_usage(1000, 100)]),
    );
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

async fn journey(stack: &Stack, client: &Client) -> anyhow::Result<()> {
    let admin = stack.signed_in_api("admin@example.com").await?;
    let prices = json!({"prices": [{"model": "scripted-model", "input_usd_per_mtok": 2,
                                    "output_usd_per_mtok": 10}]});
    let _: Value = admin
        .expect(
            Method::PUT,
            "/api/admin/spend",
            Some(&prices.to_string()),
            200,
        )
        .await?;
    let session = admin.create_session().await?;
    admin.wait_status(&session.id, "idle").await?;
    admin.send(&session.id, "PRICED please").await?;
    admin.wait_settled(&session.id).await?;

    sign_in(client, &stack.worker_url(), "admin@example.com", "Admin").await?;

    // The session's header shows what it cost.
    client
        .goto(&format!("{}/sessions/{}", stack.worker_url(), session.id))
        .await?;
    let spend = wait_for("the session's cost", || async {
        Ok(text_of(client, "[data-testid=session-spend]")
            .await?
            .filter(|text| text.contains("$0.0030")))
    })
    .await?;
    anyhow::ensure!(spend.contains("sandbox"), "{spend}");

    // The usage page: the numbers, the chart with today's bar, the member's line.
    client
        .goto(&format!("{}/admin/usage", stack.worker_url()))
        .await?;
    let cost = wait_for("the team's cost", || async {
        Ok(text_of(client, "[data-testid=usage-cost]")
            .await?
            .filter(|text| text == "$0.0030"))
    })
    .await?;
    anyhow::ensure!(cost == "$0.0030");
    let input = text_of(client, "[data-testid=usage-input]").await?;
    anyhow::ensure!(input.as_deref() == Some("1000"), "{input:?}");
    let bars = client
        .find_all(Locator::Css("[data-testid=usage-chart] rect"))
        .await?;
    anyhow::ensure!(bars.len() == 30, "a bar per day of 30: {}", bars.len());
    let mut drawn = Vec::new();
    for bar in &bars {
        let value = bar.attr("data-value").await?.unwrap_or_default();
        let height: f64 = bar
            .attr("height")
            .await?
            .unwrap_or_default()
            .parse()
            .unwrap_or(0.0);
        if value != "0" {
            drawn.push((value, height));
        }
    }
    anyhow::ensure!(
        drawn.len() == 1 && drawn[0].0 == "3000" && drawn[0].1 > 100.0,
        "only today's bar stands, full height: {drawn:?}"
    );
    let line = text_of(client, "[data-testid=usage-user-cost]").await?;
    anyhow::ensure!(line.as_deref() == Some("$0.0030"), "{line:?}");

    // The caps form saves a per-session cap of $5 the API then holds.
    client
        .goto(&format!("{}/admin", stack.worker_url()))
        .await?;
    let field = wait_for("the spend-cap form", || async {
        Ok(client
            .find(Locator::Css("[data-testid=cap-session-usd]"))
            .await
            .ok())
    })
    .await?;
    field.send_keys("5").await?;
    client
        .find(Locator::Css("[data-testid=spend-save]"))
        .await?
        .click()
        .await?;
    let saved = wait_for("the cap to be stored", || async {
        let settings: Value = admin
            .expect(Method::GET, "/api/admin/spend", None, 200)
            .await?;
        Ok((settings["caps"]["session"]["cost_micro_usd"] == 5_000_000).then_some(settings))
    })
    .await?;
    anyhow::ensure!(saved["prices"][0]["model"] == "scripted-model", "{saved}");
    Ok(())
}
