//! Driving headless Chromium for the browser tests: chromedriver on a free port, one
//! browser per profile, and polling helpers.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::stack::free_port;

/// A chromedriver process, killed when dropped.
pub struct Chromedriver {
    child: tokio::process::Child,
    port: u16,
}

impl Chromedriver {
    pub async fn start() -> anyhow::Result<Chromedriver> {
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

    /// A browser with its own profile (so its cookies are its own), `width` pixels wide.
    pub async fn client(&self, profile: &std::path::Path, width: u32) -> anyhow::Result<Client> {
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
                         format!("--window-size={width},900"), format!("--user-data-dir={}", profile.display())],
            }),
        );
        Ok(ClientBuilder::rustls()?
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await?)
    }

    /// Grants `permission` (a Permissions API name: `notifications`) to the origin of
    /// `client`'s current page, through chromedriver's Set Permission command (the
    /// WebDriver extension of the Permissions specification), as a user answering
    /// "Allow" would.
    pub async fn grant(&self, client: &Client, permission: &str) -> anyhow::Result<()> {
        let session = client
            .session_id()
            .await?
            .context("the browser has no WebDriver session")?;
        let response = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/session/{session}/permissions",
                self.port
            ))
            .json(&json!({"descriptor": {"name": permission}, "state": "granted"}))
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "granting {permission}: {status} {}",
            response.text().await.unwrap_or_default()
        );
        Ok(())
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Polls `probe` until it gives a value, for at most 45 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> anyhow::Result<T>
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

/// The texts of every element matching `css`, joined by newlines; `None` when none matches.
pub async fn text_of(client: &Client, css: &str) -> anyhow::Result<Option<String>> {
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

/// Types `text` into the session page's composer (waiting up to 30 s for it) and
/// presses Send.
pub async fn send_prompt(client: &Client, text: &str) -> anyhow::Result<()> {
    let textarea = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid=composer] textarea"))
        .await?;
    textarea.send_keys(text).await?;
    client
        .find(Locator::Css("[data-testid=send]"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// Signs the browser in as `email` through the development sign-in, called from a
/// page of the app's origin so that the browser keeps its own HttpOnly cookie, then
/// opens the app. A person who is not yet a member needs to be the stack's first
/// (who becomes the admin) or to have been signed in once with an invite (see
/// `Stack::signed_in_member`).
pub async fn sign_in(
    client: &Client,
    app_url: &str,
    email: &str,
    name: &str,
) -> anyhow::Result<()> {
    client.goto(&format!("{app_url}/api/health")).await?;
    let status = client
        .execute_async(
            r#"const [email, name, done] = arguments;
               fetch('/auth/dev/login', {
                 method: 'POST',
                 headers: {'content-type': 'application/json'},
                 body: JSON.stringify({email, name}),
               }).then(r => done(r.status), e => done(String(e)));"#,
            vec![json!(email), json!(name)],
        )
        .await?;
    anyhow::ensure!(status == json!(200), "browser sign-in of {email}: {status}");
    client.goto(app_url).await?;
    Ok(())
}
