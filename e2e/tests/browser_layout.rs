//! The app's layout in real headless Chromium against the real stack, at a desktop
//! size (1280x800) and a phone size (390x844): on the phone nothing overflows
//! sideways, even with a wide table and a long code line in a reply, the Send button
//! is on screen, the session header's controls fold into a menu, and the sidebar is a
//! drawer from which a session can be chosen, and the session's panels (chat, VS
//! Code, browser, terminal) are tabs showing one at a time; on the desktop the
//! sidebar stands beside the session as before and the panels side by side.

use std::time::Duration;

use anyhow::{Context, ensure};
use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, sign_in, text_of, wait_for};
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, repo_root};
use serde_json::Value;

#[tokio::test]
async fn the_app_fits_a_phone_and_keeps_its_desktop_layout() {
    let llm = ScriptedLlm::start().await.unwrap();
    let wide_reply = format!(
        "A **wide** reply:\n\n| {} |\n| {} |\n| {} |\n\n```rust\nlet long = \"{}\";\n```\n",
        (0..14)
            .map(|i| format!("column-{i}"))
            .collect::<Vec<_>>()
            .join(" | "),
        (0..14).map(|_| "---").collect::<Vec<_>>().join(" | "),
        (0..14)
            .map(|i| format!("value-{i}"))
            .collect::<Vec<_>>()
            .join(" | "),
        "x".repeat(300),
    );
    llm.on(
        "MARK-PHONE-WIDE",
        Script::new(vec![Step::text(&wide_reply)]),
    );
    llm.on(
        "MARK-PHONE-SEND",
        Script::new(vec![Step::text("sent from a phone")]),
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
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?} (screenshots: target/browser-layout-*.png)");
    }
}

/// Keeps a screenshot of the page as a test artifact.
async fn shot(client: &Client, name: &str) {
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(
            repo_root().join(format!("target/browser-layout-{name}.png")),
            png,
        );
    }
}

/// The page's viewport, `[innerWidth, innerHeight]`.
async fn viewport(client: &Client) -> anyhow::Result<(i64, i64)> {
    let size = client
        .execute("return [window.innerWidth, window.innerHeight]", vec![])
        .await?;
    Ok((
        size[0].as_i64().context("innerWidth")?,
        size[1].as_i64().context("innerHeight")?,
    ))
}

/// Sizes the window so that the page's viewport is `width` x `height` (the window
/// is larger by whatever the browser keeps around the page), and checks it is.
async fn resize(client: &Client, width: u32, height: u32) -> anyhow::Result<()> {
    client.set_window_size(width, height).await?;
    let (inner_width, inner_height) = viewport(client).await?;
    let outer = |size: u32, inner: i64| u32::try_from(2 * i64::from(size) - inner);
    client
        .set_window_size(outer(width, inner_width)?, outer(height, inner_height)?)
        .await?;
    wait_for("the new viewport", || async {
        Ok((viewport(client).await? == (i64::from(width), i64::from(height))).then_some(()))
    })
    .await
}

/// Where the first element matching `css` is and whether it is shown: `left`,
/// `right`, `top`, `bottom` and `shown` (displayed, not hidden, not zero-sized).
async fn place(client: &Client, css: &str) -> anyhow::Result<Value> {
    let place = client
        .execute(
            r#"const element = document.querySelector(arguments[0]);
               if (!element) return null;
               const rect = element.getBoundingClientRect();
               const style = getComputedStyle(element);
               return {left: rect.left, right: rect.right, top: rect.top, bottom: rect.bottom,
                       shown: style.display !== 'none' && style.visibility !== 'hidden'
                              && rect.width > 0 && rect.height > 0};"#,
            vec![Value::from(css)],
        )
        .await?;
    ensure!(!place.is_null(), "no element matches {css}");
    Ok(place)
}

fn number(place: &Value, key: &str) -> f64 {
    place[key].as_f64().unwrap_or(f64::NAN)
}

/// Waits until the element matching `css` is shown (or hidden, with `shown` false).
async fn wait_shown(client: &Client, css: &str, shown: bool) -> anyhow::Result<Value> {
    wait_for(&format!("{css} shown: {shown}"), || async {
        let place = place(client, css).await?;
        Ok((place["shown"] == shown).then_some(place))
    })
    .await
}

/// The element matching `css` lies wholly inside the viewport.
async fn ensure_on_screen(client: &Client, css: &str) -> anyhow::Result<()> {
    let place = place(client, css).await?;
    let (width, height) = viewport(client).await?;
    let (width, height) = (width as f64, height as f64);
    ensure!(
        place["shown"] == true
            && number(&place, "left") >= 0.0
            && number(&place, "top") >= 0.0
            && number(&place, "right") <= width
            && number(&place, "bottom") <= height,
        "{css} at {place} is not inside the {width}x{height} viewport"
    );
    Ok(())
}

/// Nothing makes the page wider than the viewport.
async fn ensure_no_sideways_overflow(client: &Client, width: u64) -> anyhow::Result<()> {
    let scroll_width = client
        .execute("return document.documentElement.scrollWidth", vec![])
        .await?
        .as_u64()
        .context("scrollWidth")?;
    ensure!(
        scroll_width <= width,
        "the page is {scroll_width} px wide in a {width} px viewport"
    );
    Ok(())
}

async fn click(client: &Client, css: &str) -> anyhow::Result<()> {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await?
        .click()
        .await?;
    Ok(())
}

async fn journey(stack: &Stack, client: &Client) -> anyhow::Result<()> {
    let api = stack.signed_in_api("pat@example.com").await?;
    let wide = api.create_session().await?;
    api.send(&wide.id, "MARK-PHONE-WIDE show something wide")
        .await?;
    let other = api.create_session().await?;

    sign_in(client, &stack.worker_url(), "pat@example.com", "pat").await?;

    // Desktop: the sidebar stands beside the session, the header shows its controls.
    resize(client, 1280, 800).await?;
    client
        .goto(&format!("{}/sessions/{}", stack.worker_url(), wide.id))
        .await?;
    wait_for("the wide reply", || async {
        Ok(text_of(client, "[data-testid=assistant-text] table")
            .await?
            .filter(|text| text.contains("value-13")))
    })
    .await?;
    let sidebar = wait_shown(client, "[data-testid=sidebar]", true).await?;
    ensure!(
        number(&sidebar, "left") == 0.0 && number(&sidebar, "right") >= 200.0,
        "desktop sidebar at {sidebar}"
    );
    ensure!(place(client, "[data-testid=mobile-bar]").await?["shown"] == false);
    ensure!(place(client, "[data-testid=session-menu]").await?["shown"] == false);
    wait_shown(client, "[data-testid=session-controls]", true).await?;
    let session = place(client, "[data-testid=session-view]").await?;
    ensure!(
        number(&session, "left") >= number(&sidebar, "right"),
        "the session {session} overlaps the sidebar {sidebar}"
    );
    ensure_on_screen(client, "[data-testid=send]").await?;
    ensure_no_sideways_overflow(client, 1280).await?;
    // The panels stand beside the chat.
    for panel in ["chat", "vscode", "browser", "terminal"] {
        let css = format!(".pane[data-panel={panel}]");
        ensure!(
            place(client, &css).await?["shown"] == true,
            "{css} hidden on a desktop"
        );
    }
    ensure!(place(client, "[data-testid=splitter]").await?["shown"] == true);
    shot(client, "desktop").await;

    // Phone: the same page folds up.
    resize(client, 390, 844).await?;
    wait_shown(client, "[data-testid=mobile-bar]", true).await?;
    wait_shown(client, "[data-testid=sidebar]", false).await?;
    ensure_no_sideways_overflow(client, 390).await?;
    ensure_on_screen(client, "[data-testid=send]").await?;
    ensure_on_screen(client, "[data-testid=session-title]").await?;
    ensure_on_screen(client, "[data-testid=session-menu]").await?;
    shot(client, "phone").await;

    // The panels are tabs: the chat alone, then the terminal alone, then back.
    wait_shown(client, "[data-testid=panel-bar]", true).await?;
    ensure_on_screen(client, "[data-testid=panel-tab][data-panel=terminal]").await?;
    ensure!(place(client, "[data-testid=chat-panel]").await?["shown"] == true);
    for panel in ["vscode", "browser", "terminal"] {
        let css = format!(".pane[data-panel={panel}]");
        ensure!(
            place(client, &css).await?["shown"] == false,
            "{css} shown on a phone"
        );
    }
    click(client, "[data-testid=panel-tab][data-panel=terminal]").await?;
    wait_shown(client, ".pane[data-panel=terminal]", true).await?;
    wait_shown(client, "[data-testid=chat-panel]", false).await?;
    ensure_on_screen(
        client,
        "[data-testid=terminal-panel] [data-testid=panel-state]",
    )
    .await?;
    // This stack runs no dev environment (WORKSPACE_PANELS=false): the panel says so.
    wait_for(
        "the terminal panel unavailable, with the reason",
        || async {
            let reason = text_of(
                client,
                "[data-testid=terminal-panel] [data-testid=panel-placeholder]",
            )
            .await?
            .filter(|text| text.contains("WORKSPACE_PANELS=false"));
            let state = client
                .find(Locator::Css(
                    "[data-testid=terminal-panel] [data-testid=panel-state]",
                ))
                .await?
                .attr("data-state")
                .await?;
            Ok(reason.filter(|_| state.as_deref() == Some("unavailable")))
        },
    )
    .await?;
    ensure_no_sideways_overflow(client, 390).await?;
    shot(client, "phone-terminal-tab").await;
    click(client, "[data-testid=panel-tab][data-panel=chat]").await?;
    wait_shown(client, "[data-testid=chat-panel]", true).await?;
    wait_shown(client, ".pane[data-panel=terminal]", false).await?;

    // The header's controls live in its menu.
    ensure!(place(client, "[data-testid=session-controls]").await?["shown"] == false);
    click(client, "[data-testid=session-menu]").await?;
    wait_shown(client, "[data-testid=session-controls]", true).await?;
    ensure_on_screen(client, "[data-testid=session-controls]").await?;
    ensure_no_sideways_overflow(client, 390).await?;
    shot(client, "phone-menu").await;
    click(client, "[data-testid=session-menu]").await?;
    wait_shown(client, "[data-testid=session-controls]", false).await?;

    // The drawer opens from the menu button and a session is chosen from it.
    click(client, "[data-testid=open-drawer]").await?;
    wait_for("the drawer open", || async {
        let place = place(client, "[data-testid=sidebar]").await?;
        Ok((place["shown"] == true && number(&place, "left") == 0.0).then_some(()))
    })
    .await?;
    ensure_on_screen(client, "[data-testid=sidebar]").await?;
    ensure_no_sideways_overflow(client, 390).await?;
    shot(client, "phone-drawer").await;
    click(
        client,
        &format!("[data-testid=session-item][data-session-id='{}']", other.id),
    )
    .await?;
    wait_for("the chosen session", || async {
        let url = client.current_url().await?;
        Ok((url.path() == format!("/sessions/{}", other.id)).then_some(()))
    })
    .await?;
    wait_shown(client, "[data-testid=sidebar]", false).await?;
    wait_shown(client, "[data-testid=drawer-backdrop]", false).await?;

    // The composer is reachable there and sends.
    ensure_on_screen(client, "[data-testid=composer] textarea").await?;
    client
        .find(Locator::Css("[data-testid=composer] textarea"))
        .await?
        .send_keys("MARK-PHONE-SEND from a phone")
        .await?;
    ensure_on_screen(client, "[data-testid=send]").await?;
    click(client, "[data-testid=send]").await?;
    wait_for("the reply to the phone's prompt", || async {
        Ok(text_of(client, "[data-testid=assistant-text]")
            .await?
            .filter(|text| text.contains("sent from a phone")))
    })
    .await?;
    ensure_on_screen(client, "[data-testid=send]").await?;
    ensure_no_sideways_overflow(client, 390).await?;
    shot(client, "phone-sent").await;

    // Back at desktop size the sidebar is there without the drawer.
    resize(client, 1280, 800).await?;
    let sidebar = wait_shown(client, "[data-testid=sidebar]", true).await?;
    ensure!(
        number(&sidebar, "left") == 0.0,
        "desktop sidebar at {sidebar}"
    );
    ensure!(place(client, "[data-testid=mobile-bar]").await?["shown"] == false);
    Ok(())
}
