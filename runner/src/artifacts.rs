//! Uploading the images a turn makes (browser screenshots) to the session, so
//! everyone watching sees them: `POST /api/sessions/{id}/artifacts` with the runner's
//! current token, one PNG per request. The Worker checks and stores it and answers
//! its id; the runner then sends an `image` event naming that id (the event log
//! never carries the bytes, and the link's frames stay small).

use std::time::Duration;

use nightshift_protocol::artifacts::{ArtifactCreated, PNG_MEDIA_TYPE, is_artifact_id};
use tokio::sync::watch;

use crate::tools::browser::Png;

/// How long one upload may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Uploads a session's images.
#[derive(Clone)]
pub struct ArtifactUploader {
    http: reqwest::Client,
    url: String,
    /// The runner's token as the link last renewed it.
    token: watch::Receiver<String>,
}

impl ArtifactUploader {
    /// `url` is the session's artifacts URL (`link::artifacts_url`).
    pub fn new(url: String, token: watch::Receiver<String>) -> reqwest::Result<ArtifactUploader> {
        let http = crate::outbound::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(UPLOAD_TIMEOUT)
            .build()?;
        Ok(ArtifactUploader { http, url, token })
    }

    /// Uploads `png`; the Worker's answer, or why not in words.
    pub async fn upload(&self, png: &Png) -> Result<ArtifactCreated, String> {
        let token = self.token.borrow().clone();
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, PNG_MEDIA_TYPE)
            .body(png.bytes.clone())
            .send()
            .await
            .map_err(|error| format!("the upload failed: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(format!("the session refused the image ({status}): {body}"));
        }
        let created: ArtifactCreated = response
            .json()
            .await
            .map_err(|error| format!("the session's answer was not understood: {error}"))?;
        if !is_artifact_id(&created.artifact) {
            return Err("the session answered an artifact id of the wrong shape".into());
        }
        Ok(created)
    }
}
