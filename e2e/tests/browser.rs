//! The app in real headless Chromium against the real stack: create a session, send
//! a prompt, watch the streamed text and the tool call render, and see the sessions
//! list update live when a session is created elsewhere.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, free_port, repo_root};
use serde_json::json;

struct Chromedriver {
    child: tokio::process::Child,
    port: u16,
}

impl Chromedriver {
    async fn start() -> anyhow::Result<Chromedriver> {
        let port = free_port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver (make setup installs it)")?;
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await
                .is_ok()
            {
                return Ok(Chromedriver { child, port });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("chromedriver did not start")
    }

    async fn client(&self, profile: &std::path::Path) -> anyhow::Result<Client> {
        // Two TLS backends are linked in; pick one for the WebDriver client (which
        // only speaks plain HTTP to chromedriver on loopback anyway).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,900", format!("--user-data-dir={}", profile.display())],
            }),
        );
        Ok(ClientBuilder::rustls()?
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await?)
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        if let Ok(Some(value)) = probe().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn text_of(client: &Client, css: &str) -> anyhow::Result<Option<String>> {
    let mut texts = Vec::new();
    for element in client.find_all(Locator::Css(css)).await? {
        texts.push(element.text().await?);
    }
    Ok(if texts.is_empty() {
        None
    } else {
        Some(texts.join("\n"))
    })
}

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
            Step::slow_text("streamed-", 5, Duration::from_millis(50)),
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
    let client = driver.client(profile.path()).await.unwrap();
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

async fn journey(stack: &Stack, client: &Client) -> anyhow::Result<()> {
    // Signed in through the development sign-in: the test's client, and the browser
    // itself (the page calls it, so the browser keeps its own HttpOnly cookie).
    let api = stack.signed_in_api("alice@example.com").await?;
    client
        .goto(&format!("{}/api/health", stack.worker_url()))
        .await?;
    let status = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               fetch('/auth/dev/login', {
                 method: 'POST',
                 headers: {'content-type': 'application/json'},
                 body: JSON.stringify({email: 'alice@example.com', name: 'alice'}),
               }).then(r => done(r.status), e => done(String(e)));"#,
            vec![],
        )
        .await?;
    anyhow::ensure!(
        status == serde_json::json!(200),
        "browser sign-in: {status}"
    );
    client.goto(&stack.worker_url()).await?;
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
