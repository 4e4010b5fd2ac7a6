//! The real Docker Engine the docker provider's tests run against, as
//! `scripts/docker-engine.sh` sets it up (`make test` does): where it listens and
//! which local image the sandboxes start from. A run without an Engine fails saying
//! so, unless it opts out with `DOCKER_TESTS=skip`; it never passes silently.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the script's daemon listens when `NIGHTSHIFT_TEST_DOCKER_HOST` is not set.
const DEFAULT_HOST: &str = "unix:///run/nightshift-docker/docker.sock";
/// The script's test image when `NIGHTSHIFT_TEST_DOCKER_IMAGE` is not set.
const DEFAULT_IMAGE: &str = "nightshift-test-base:bookworm";

pub struct RealEngine {
    /// `unix:///...` for `DOCKER_HOST`.
    pub host: String,
    pub image: String,
    /// What `GET /version` answered.
    pub version: serde_json::Value,
}

impl RealEngine {
    /// The Engine, or `None` when the run opted out (`DOCKER_TESTS=skip`, printed).
    /// Panics with what to do when there is none.
    pub async fn find(test: &str) -> Option<RealEngine> {
        if std::env::var("DOCKER_TESTS").is_ok_and(|value| value == "skip") {
            eprintln!("{test}: SKIPPED (DOCKER_TESTS=skip: no real Docker Engine in this run)");
            return None;
        }
        let host = std::env::var("NIGHTSHIFT_TEST_DOCKER_HOST")
            .unwrap_or_else(|_| DEFAULT_HOST.to_string());
        let image = std::env::var("NIGHTSHIFT_TEST_DOCKER_IMAGE")
            .unwrap_or_else(|_| DEFAULT_IMAGE.to_string());
        let how = "start one with `bash scripts/docker-engine.sh up` (make test does), \
                   or opt out with DOCKER_TESTS=skip";
        let version = match get(&host, "/version").await {
            Ok((200, body)) => serde_json::from_slice(&body).unwrap_or_default(),
            Ok((status, _)) => panic!("the Docker Engine at {host} answered {status} to /version"),
            Err(error) => panic!("{test}: no Docker Engine answers at {host} ({error}): {how}"),
        };
        match get(&host, &format!("/images/{image}/json")).await {
            Ok((200, _)) => {}
            other => panic!(
                "{test}: the Docker Engine at {host} has no image {image} ({other:?}): {how}"
            ),
        }
        Some(RealEngine {
            host,
            image,
            version,
        })
    }

    /// `GET path` (unversioned: the Engine answers in its own version).
    pub async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        get(&self.host, path).await.expect("the Engine answers")
    }

    /// Tags of the images sandboxes made (forks, snapshots, templates).
    pub async fn sandbox_images(&self) -> std::collections::BTreeSet<String> {
        let (_, body) = self.get("/images/json").await;
        let images: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
        images
            .iter()
            .flat_map(|image| image["RepoTags"].as_array().cloned().unwrap_or_default())
            .filter_map(|tag| tag.as_str().map(String::from))
            .filter(|tag| {
                [
                    "nightshift-fork:",
                    "nightshift-snapshot:",
                    "nightshift-template:",
                ]
                .iter()
                .any(|repo| tag.starts_with(repo))
            })
            .collect()
    }

    /// Removes the images a test's sandboxes made (those not in `before`), so runs
    /// do not fill the Engine's data root: the backend of a test forgets its
    /// templates and snapshots with its data directory, and a failed case may leave
    /// a fork's image.
    pub async fn remove_images_since(&self, before: &std::collections::BTreeSet<String>) {
        for tag in self.sandbox_images().await.difference(before) {
            let _ = request(&self.host, "DELETE", &format!("/images/{tag}?force=1")).await;
        }
    }
}

async fn get(host: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    request(host, "GET", path).await
}

/// One HTTP/1.0 request over the Engine's unix socket, read to its end (within 30 s).
async fn request(host: &str, method: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let socket = host
        .strip_prefix("unix://")
        .ok_or_else(|| std::io::Error::other("only unix:// Engines are supported here"))?;
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await?;
        stream
            .write_all(format!("{method} {path} HTTP/1.0\r\nHost: docker\r\n\r\n").as_bytes())
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let split = answer
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP head"))?;
        let head = String::from_utf8_lossy(&answer[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
        Ok((status, answer[split + 4..].to_vec()))
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), exchange)
        .await
        .map_err(|_| std::io::Error::other("no answer within 30 s"))?
}
