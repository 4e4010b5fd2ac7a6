//! The session page's panels in real headless Chromium on the real stack (wrangler
//! dev, the sandbox backend, the session's gateway and its services under
//! bubblewrap), with the panel grant's lifetime shortened to a few seconds:
//!
//! - the owner types `echo hello-$((6*7))` into the Terminal panel (xterm.js) and
//!   reads `hello-42` on its screen;
//! - the Browser panel's VNC canvas (noVNC) draws the sandbox's desktop;
//! - past several grant lifetimes, without a reload, the page keeps the same panel
//!   origin, the open terminal still answers, the open editor's own requests are
//!   answered and a new terminal tab connects (which only a renewed grant allows); when its shell exits the tab reconnects by itself;
//! - the agent (scripted LLM) writes a file and the VS Code panel's explorer lists
//!   it, read through the iframe;
//! - a viewer sees the desktop view-only, and neither a terminal nor VS Code.
//!
//! Screenshots of each panel are kept in `target/e2e-artifacts/browser-panels-*.png`.

use std::time::Duration;

use anyhow::{Context, ensure};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, sign_in, text_of};
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, repo_root};
use serde_json::{Value, json};

/// The panel grant's lifetime here: short, so renewal is needed several times over.
const GRANT_SECS: u64 = 5;
/// The services start under load on a small machine; code-server is the slowest.
const PANEL_WAIT: Duration = Duration::from_secs(150);
const AGENT_FILE: &str = "from-the-agent.txt";

#[tokio::test]
async fn the_panels_show_the_sandbox_live_and_outlive_their_grants() {
    let llm = ScriptedLlm::start().await.unwrap();
    llm.on(
        "MARK-PANELS",
        Script::new(vec![
            Step::tool(
                "write_file",
                json!({"path": AGENT_FILE, "content": "written by the agent\n"}),
            ),
            Step::text("the file is written"),
        ]),
    );
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![
            (
                "PANEL_CAPABILITY_TTL_SECS".to_string(),
                GRANT_SECS.to_string(),
            ),
            ("WORKSPACE_PANELS".to_string(), "true".to_string()),
        ],
    })
    .await
    .unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let owner_profile = tempfile::tempdir().unwrap();
    let viewer_profile = tempfile::tempdir().unwrap();
    let owner = driver.client(owner_profile.path(), 1920).await.unwrap();
    let viewer = driver.client(viewer_profile.path(), 1600).await.unwrap();
    let result = journey(&stack, &owner, &viewer).await;
    if result.is_err() {
        shot(&owner, "failed-owner").await;
        shot(&viewer, "failed-viewer").await;
    }
    let _ = owner.close().await;
    let _ = viewer.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?} (screenshots: target/e2e-artifacts/browser-panels-*.png)");
    }
}

fn artifact(name: &str) -> std::path::PathBuf {
    let dir = repo_root().join("target/e2e-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("browser-panels-{name}.png"))
}

/// Keeps a screenshot of the whole page as a test artifact.
async fn shot(client: &Client, name: &str) {
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(artifact(name), png);
    }
}

/// Keeps a screenshot of the element matching `css` as a test artifact.
async fn shot_of(client: &Client, css: &str, name: &str) -> anyhow::Result<()> {
    let png = client
        .find(Locator::Css(css))
        .await?
        .screenshot()
        .await
        .with_context(|| format!("a screenshot of {css}"))?;
    std::fs::write(artifact(name), png)?;
    Ok(())
}

/// Polls `probe` until it gives a value, for at most `limit`.
async fn wait_long<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting for {what} (last error: {last_error:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `data-state` of a panel (`vscode`, `browser`, `terminal`) and its reason.
async fn panel_state(client: &Client, panel: &str) -> anyhow::Result<(String, String)> {
    let state = client
        .execute(
            r#"const frame = document.querySelector(`[data-testid="${arguments[0]}-panel"]`);
               if (!frame) return null;
               return [frame.querySelector('[data-testid=panel-state]').dataset.state,
                       frame.querySelector('[data-testid=panel-reason]').textContent];"#,
            vec![Value::from(panel)],
        )
        .await?;
    Ok((
        state[0].as_str().unwrap_or_default().to_owned(),
        state[1].as_str().unwrap_or_default().to_owned(),
    ))
}

async fn wait_panel_state(client: &Client, panel: &str, wanted: &str) -> anyhow::Result<()> {
    let seen = std::cell::RefCell::new((String::new(), String::new()));
    let waited = wait_long(
        &format!("the {panel} panel {wanted}"),
        PANEL_WAIT,
        || async {
            let state = panel_state(client, panel).await?;
            let done = state.0 == wanted;
            *seen.borrow_mut() = state;
            Ok(done.then_some(()))
        },
    )
    .await;
    let seen = seen.into_inner();
    waited.with_context(|| format!("the {panel} panel is {:?}: {:?}", seen.0, seen.1))
}

/// The active terminal tab's screen.
const TERMINAL_SCREEN: &str = "[data-testid=terminal-panel] .terminal-screen--active";

/// Types `command` and Enter into the active terminal tab, as keystrokes to the
/// focused page (xterm.js listens on a hidden textarea, which WebDriver will not
/// type into directly).
async fn type_into_terminal(client: &Client, command: &str) -> anyhow::Result<()> {
    client
        .find(Locator::Css(&format!("{TERMINAL_SCREEN} .xterm-screen")))
        .await?
        .click()
        .await?;
    let mut keys = KeyActions::new("keyboard".to_owned());
    for key in command.chars().chain(['\u{e007}']) {
        keys = keys
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
    }
    client.perform_actions(keys).await?;
    Ok(())
}

/// Runs `command` in the active terminal tab and waits for `wanted` on its screen
/// (xterm.js draws its rows as DOM text).
async fn run_in_terminal(client: &Client, command: &str, wanted: &str) -> anyhow::Result<()> {
    type_into_terminal(client, command).await?;
    wait_long(
        &format!("{wanted:?} in the terminal"),
        PANEL_WAIT,
        || async {
            Ok(text_of(client, &format!("{TERMINAL_SCREEN} .xterm-rows"))
                .await?
                .filter(|text| text.contains(wanted)))
        },
    )
    .await
    .map(drop)
}

/// How many of the desktop canvas's pixels are not black, or `None` before it has
/// a size.
async fn lit_pixels(client: &Client) -> anyhow::Result<Option<u64>> {
    let lit = client
        .execute(
            r#"const canvas = document.querySelector('[data-testid=desktop-screen] canvas');
               if (!canvas || canvas.width === 0 || canvas.height === 0) return null;
               const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
               let lit = 0;
               for (let i = 0; i < data.length; i += 4) {
                 if (data[i] + data[i + 1] + data[i + 2] > 24) lit++;
               }
               return lit;"#,
            vec![],
        )
        .await?;
    Ok(lit.as_u64())
}

async fn wait_desktop_drawn(client: &Client) -> anyhow::Result<u64> {
    wait_long("the desktop canvas to draw", PANEL_WAIT, || async {
        Ok(lit_pixels(client).await?.filter(|lit| *lit > 100))
    })
    .await
}

async fn journey(stack: &Stack, owner: &Client, viewer: &Client) -> anyhow::Result<()> {
    let owner_api = stack.signed_in_api("owner@example.com").await?;
    let viewer_api = stack
        .signed_in_member(&owner_api, "viewer@example.com")
        .await?;
    let session = owner_api.create_session().await?;
    owner_api
        .share(&session.id, &viewer_api.user_id().await?, "viewer")
        .await?;
    let page = format!("{}/sessions/{}", stack.worker_url(), session.id);

    sign_in(owner, &stack.worker_url(), "owner@example.com", "owner").await?;
    owner.goto(&page).await?;
    // Four panels side by side on a wide window.
    for panel in ["vscode", "browser", "terminal"] {
        owner
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(&format!("[data-testid={panel}-panel]")))
            .await?;
    }
    let shown = owner
        .execute(
            r#"return [...document.querySelectorAll('[data-testid=panels] > .pane')]
                 .filter(pane => pane.getBoundingClientRect().width > 100).length;"#,
            vec![],
        )
        .await?;
    ensure!(shown == json!(4), "{shown} panels shown side by side");

    // The terminal: typed into in the page, answered by a shell in the sandbox.
    wait_panel_state(owner, "terminal", "ready").await?;
    run_in_terminal(owner, "echo hello-$((6*7))", "hello-42").await?;
    shot_of(owner, "[data-testid=terminal-panel]", "terminal").await?;

    // The desktop: the VNC canvas draws.
    wait_panel_state(owner, "browser", "ready").await?;
    wait_desktop_drawn(owner).await?;
    shot_of(owner, "[data-testid=browser-panel]", "browser").await?;
    ensure!(
        owner
            .find(Locator::Css("[data-testid=desktop-screen]"))
            .await?
            .attr("data-view-only")
            .await?
            .as_deref()
            == Some("false"),
        "the owner's desktop is view-only"
    );

    // The agent writes a file while the panels are open.
    owner_api
        .send(&session.id, "MARK-PANELS write a file")
        .await?;
    wait_long("the agent's reply", PANEL_WAIT, || async {
        Ok(text_of(owner, "[data-testid=assistant-text]")
            .await?
            .filter(|text| text.contains("the file is written")))
    })
    .await?;

    // Several grant lifetimes later, with no reload: the same origin, the terminal
    // answers, and a new tab (a new socket on that origin) connects.
    wait_panel_state(owner, "vscode", "ready").await?;
    let frame_src = |client: &Client| {
        let client = client.clone();
        async move {
            client
                .find(Locator::Css("[data-testid=vscode-frame]"))
                .await?
                .attr("src")
                .await?
                .context("the VS Code frame has a src")
        }
    };
    let src = frame_src(owner).await?;
    ensure!(
        src.contains(".ws.localhost:") && src.contains("/vscode/?folder=/workspace"),
        "VS Code frame at {src}"
    );
    owner
        .execute(
            "window.__panelsPageMark = 'still here'; return null;",
            vec![],
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3 * GRANT_SECS + 2)).await;
    let mark = owner
        .execute("return window.__panelsPageMark || null;", vec![])
        .await?;
    ensure!(mark == json!("still here"), "the page was reloaded");
    ensure!(
        frame_src(owner).await? == src,
        "the VS Code frame moved to another origin"
    );
    run_in_terminal(owner, "echo still-$((40+2))", "still-42").await?;
    owner
        .find(Locator::Css("[data-testid=terminal-add]"))
        .await?
        .click()
        .await?;
    wait_long("the second terminal tab", PANEL_WAIT, || async {
        text_of(owner, "[data-testid=terminal-tab][data-tab=t2]").await
    })
    .await?;
    wait_panel_state(owner, "terminal", "ready").await?;
    run_in_terminal(owner, "echo tab-two-$((40+2))", "tab-two-42").await?;
    // The shell ends: the tab reconnects by itself to a fresh shell (its screen
    // reset for the replay), which answers.
    type_into_terminal(owner, "exit").await?;
    wait_long(
        "the tab to reconnect to a new shell",
        PANEL_WAIT,
        || async {
            let screen = text_of(owner, &format!("{TERMINAL_SCREEN} .xterm-rows")).await?;
            Ok(screen.filter(|text| !text.contains("tab-two-42") && text.contains('$')))
        },
    )
    .await?;
    wait_panel_state(owner, "terminal", "ready").await?;
    run_in_terminal(owner, "echo again-$((40+2))", "again-42").await?;
    ensure!(
        panel_state(owner, "vscode").await?.0 == "ready",
        "VS Code is no longer ready after renewals"
    );
    // The editor loaded lifetimes ago still reaches its origin: a request of its
    // own, from inside the frame, is answered (only a renewed grant lets it through).
    owner
        .find(Locator::Css("[data-testid=vscode-frame]"))
        .await?
        .enter_frame()
        .await?;
    let health = owner
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               fetch('healthz').then(r => done([r.status, location.pathname]), e => done(String(e)));"#,
            vec![],
        )
        .await;
    owner.enter_parent_frame().await?;
    let health = health?;
    ensure!(
        health == json!([200, "/vscode/"]),
        "the editor's own request after several grant lifetimes: {health}"
    );

    // The split between the chat and VS Code moves with the keyboard, and the
    // layout is remembered under the user's id.
    let chat_width = |client: &Client| {
        let client = client.clone();
        async move {
            let width = client
                .execute(
                    "return document.querySelector('[data-testid=chat-panel]').getBoundingClientRect().width;",
                    vec![],
                )
                .await?;
            width.as_f64().context("a width")
        }
    };
    let before = chat_width(owner).await?;
    owner
        .find(Locator::Css("[data-testid=splitter][data-panel=chat]"))
        .await?
        .send_keys("\u{e014}\u{e014}")
        .await?;
    let after = chat_width(owner).await?;
    ensure!(
        after > before + 20.0,
        "the chat was {before} px, now {after} px"
    );
    let owner_id = owner_api.user_id().await?;
    let stored = owner
        .execute(
            "return localStorage.getItem(arguments[0]);",
            vec![Value::from(format!("nightshift.panels.{owner_id}"))],
        )
        .await?;
    ensure!(
        stored.as_str().is_some_and(|text| text.contains("weights")),
        "the layout is not remembered: {stored}"
    );
    shot(owner, "owner").await;

    // VS Code alone (its "open in a new tab" page): the agent's file in the explorer.
    let alone = owner
        .find(Locator::Css(
            "[data-testid=vscode-panel] [data-testid=panel-open-new-tab]",
        ))
        .await?
        .attr("href")
        .await?
        .context("VS Code's new-tab link")?;
    ensure!(alone.ends_with("?panel=vscode"), "{alone}");
    owner
        .goto(&format!("{}{alone}", stack.worker_url()))
        .await?;
    wait_panel_state(owner, "vscode", "ready").await?;
    let frame = owner
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=vscode-frame]"))
        .await?;
    frame.enter_frame().await?;
    let listed = wait_long(
        "the agent's file in VS Code's explorer",
        PANEL_WAIT,
        || async {
            Ok(text_of(owner, ".explorer-folders-view .monaco-list-row")
                .await?
                .filter(|text| text.contains(AGENT_FILE)))
        },
    )
    .await;
    owner.enter_parent_frame().await?;
    listed?;
    shot_of(owner, "[data-testid=vscode-panel]", "vscode").await?;

    // A viewer: the desktop, view-only; no terminal and no VS Code.
    sign_in(viewer, &stack.worker_url(), "viewer@example.com", "viewer").await?;
    viewer.goto(&page).await?;
    wait_panel_state(viewer, "browser", "ready").await?;
    wait_desktop_drawn(viewer).await?;
    ensure!(
        viewer
            .find(Locator::Css("[data-testid=desktop-screen]"))
            .await?
            .attr("data-view-only")
            .await?
            .as_deref()
            == Some("true"),
        "the viewer's desktop is not view-only"
    );
    for panel in ["terminal", "vscode"] {
        wait_panel_state(viewer, panel, "unavailable").await?;
    }
    let (_, reason) = panel_state(viewer, "terminal").await?;
    ensure!(
        reason.contains("viewers"),
        "the viewer's terminal: {reason}"
    );
    let content = viewer
        .execute(
            r#"return document.querySelectorAll(
                 '[data-testid=terminal-screen], [data-testid=vscode-frame], .xterm').length;"#,
            vec![],
        )
        .await?;
    ensure!(
        content == json!(0),
        "a viewer got {content} terminal or VS Code elements"
    );
    shot(viewer, "viewer").await;
    Ok(())
}
