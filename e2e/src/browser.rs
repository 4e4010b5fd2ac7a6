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

/// Signs the browser in through the development sign-in (the page calls it, so the
/// browser keeps its own HttpOnly cookie).
pub async fn sign_in(client: &Client, worker_url: &str, email: &str) -> anyhow::Result<()> {
    client.goto(&format!("{worker_url}/api/health")).await?;
    let name = email.split('@').next().unwrap_or(email);
    let status = client
        .execute_async(
            r#"const [email, name, done] = arguments;
               fetch('/auth/dev/login', {
                 method: 'POST',
                 headers: {'content-type': 'application/json'},
                 body: JSON.stringify({email, name}),
               }).then(r => done(r.status), e => done(String(e)));"#,
            vec![email.into(), name.into()],
        )
        .await?;
    anyhow::ensure!(
        status == serde_json::json!(200),
        "browser sign-in: {status}"
    );
    Ok(())
}
