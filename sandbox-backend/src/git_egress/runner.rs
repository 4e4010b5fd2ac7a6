//! Asking a sandbox's runner, over the host-only socket it serves for the egress
//! (`RunnerBootConfig::egress_credential_socket`), which repository the session has
//! and for that repository's credential. The socket speaks git's `credential-cache`
//! protocol (the runner's `repo/credential.rs`, which asks the Worker and caches the
//! answer until shortly before it expires), plus `action=repository`.
//!
//! The runner runs outside the sandbox and the socket is not in any sandbox, so its
//! answers are the runner's; they are still bounded in size and time.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::providers::local::sandbox_agent::client::connect;

use super::rules::{RepoRoute, basic_authorization};

/// An answer is at most this long.
const MAX_ANSWER: u64 = 16 * 1024;
/// How long an answer may take (the runner may be asking the Worker).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The session's repository as the runner names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerRepo {
    pub host: String,
    pub path: String,
    pub route: RepoRoute,
}

/// A sandbox's runner, reached at its egress socket.
#[derive(Debug, Clone)]
pub struct RunnerSocket {
    pub path: PathBuf,
}

/// `key=value` lines.
fn attribute<'a>(answer: &'a str, key: &str) -> Option<&'a str> {
    answer
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

impl RunnerSocket {
    async fn ask(&self, request: &str) -> Option<String> {
        let exchange = async {
            // The sandbox's directory can be deeper than a socket address allows.
            let mut stream = connect(&self.path).await.ok()?;
            stream.write_all(request.as_bytes()).await.ok()?;
            stream.shutdown().await.ok()?;
            let mut answer = Vec::new();
            (&mut stream)
                .take(MAX_ANSWER)
                .read_to_end(&mut answer)
                .await
                .ok()?;
            String::from_utf8(answer).ok()
        };
        tokio::time::timeout(ANSWER_TIMEOUT, exchange)
            .await
            .ok()
            .flatten()
    }

    /// The session's repository, when it has one served over `https` (the only
    /// scheme the egress adds credentials to).
    pub async fn repository(&self) -> Option<RunnerRepo> {
        let answer = self.ask("action=repository\n").await?;
        if attribute(&answer, "protocol")? != "https" {
            return None;
        }
        let host = attribute(&answer, "host")?.to_string();
        let path = attribute(&answer, "path")?.to_string();
        let route = RepoRoute::new(&host, &path)?;
        Some(RunnerRepo { host, path, route })
    }

    /// The `Authorization` value for the repository's git requests, or `None` when
    /// the runner has none to give (it says `quit=1`).
    pub async fn authorization(&self, repo: &RunnerRepo) -> Option<String> {
        let answer = self
            .ask(&format!(
                "action=get\nprotocol=https\nhost={}\npath={}\n",
                repo.host, repo.path
            ))
            .await?;
        if attribute(&answer, "quit").is_some() {
            return None;
        }
        let username = attribute(&answer, "username")?;
        let password = attribute(&answer, "password")?;
        Some(basic_authorization(username, password))
    }
}
