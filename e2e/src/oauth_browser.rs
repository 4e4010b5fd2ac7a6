//! A browser as far as an OAuth flow needs one (sign-in, connecting GitHub): it
//! keeps cookies and follows no redirect by itself, so a test sees every hop between
//! the Worker and a fake provider.

/// A browser as far as sign-in needs one: keeps cookies, follows nothing by itself.
pub struct Browser {
    http: reqwest::Client,
    pub cookies: std::collections::BTreeMap<String, String>,
}

/// One hop: the status and where it points.
pub struct Hop {
    pub status: u16,
    pub location: String,
}

impl Browser {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Browser {
        Browser {
            http: crate::client::http_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a reqwest client without redirects"),
            cookies: Default::default(),
        }
    }

    pub async fn get(&mut self, url: &str) -> anyhow::Result<Hop> {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let response = self
            .http
            .get(url)
            .header("cookie", cookie.join("; "))
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await?;
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str()?;
            let first = value.split(';').next().unwrap_or_default();
            let (name, val) = first.split_once('=').unwrap_or_default();
            if value.contains("Max-Age=0") || val.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                assert!(value.contains("HttpOnly"), "{value}");
                self.cookies
                    .insert(name.trim().to_string(), val.to_string());
            }
        }
        Ok(Hop {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// Starts a sign-in at the Worker and follows it to the provider's answer: the
    /// callback URL the provider sends the browser to.
    pub async fn start_flow(&mut self, worker: &str, start: &str) -> anyhow::Result<String> {
        let hop = self.get(&format!("{worker}{start}")).await?;
        anyhow::ensure!(hop.status == 302, "login answered {}", hop.status);
        anyhow::ensure!(self.cookies.contains_key("ns_oauth"), "no ns_oauth cookie");
        let hop = self.get(&hop.location).await?;
        anyhow::ensure!(
            hop.status == 303 || hop.status == 302,
            "provider answered {}",
            hop.status
        );
        Ok(hop.location)
    }

    /// Follows the callback; answers where the Worker sends the browser.
    pub async fn finish(&mut self, callback: &str) -> anyhow::Result<String> {
        let hop = self.get(callback).await?;
        anyhow::ensure!(hop.status == 302, "callback answered {}", hop.status);
        Ok(hop.location)
    }

    pub async fn sign_in(&mut self, worker: &str, start: &str) -> anyhow::Result<String> {
        let callback = self.start_flow(worker, start).await?;
        self.finish(&callback).await
    }
}
