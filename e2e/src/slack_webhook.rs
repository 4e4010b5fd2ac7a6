//! The double of a Slack incoming webhook: a real HTTP server that records every
//! POST and answers with the status a test sets, and Slack's own definition of what
//! such a POST may carry, to hold every body to.
//!
//! The definition is the message type of Slack's official Node client for incoming
//! webhooks (the npm package `@slack/webhook`, version [`PACKAGE_VERSION`], checked
//! against [`PACKAGE_INTEGRITY`]): the fields of `IncomingWebhookDefaultArguments`
//! and `IncomingWebhookSendArguments` in `dist/IncomingWebhook.d.ts`, with their
//! types. It is fetched once (`npm pack`) into `target/slack-webhook/<version>/`.
//! A body passes ([`SlackDefinition::check`]) when it is a JSON object whose `text`
//! is a non-empty string (Slack's documentation: `text` is required unless blocks or
//! attachments are sent, and we send neither), and every field Slack declares has
//! the declared type; other fields are returned as the ones Slack ignores.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use serde_json::Value;
use sha2::Digest;

pub const PACKAGE_VERSION: &str = "8.0.2";
/// `dist.integrity` of `@slack/webhook@8.0.2` on the npm registry.
pub const PACKAGE_INTEGRITY: &str = "sha512-gBPlV9W6zfP4qcijX47Ni5GznbZ8Q7oZYnCQMGkOGnEHPny+gR1xpjaUdafSwGNEVKjHtW39+A2Upzg1GPHyVg==";
/// The interfaces whose fields make a webhook message.
const INTERFACES: &[&str] = &[
    "IncomingWebhookDefaultArguments",
    "IncomingWebhookSendArguments",
];

/// Slack's declared message fields: name -> TypeScript type.
#[derive(Debug)]
pub struct SlackDefinition {
    pub fields: BTreeMap<String, String>,
}

impl SlackDefinition {
    /// The definition, fetched and read once per test process.
    pub fn load() -> anyhow::Result<&'static SlackDefinition> {
        static LOADED: OnceLock<Result<SlackDefinition, String>> = OnceLock::new();
        LOADED
            .get_or_init(|| {
                let text = std::fs::read_to_string(cached_declaration()?)
                    .map_err(|error| error.to_string())?;
                SlackDefinition::parse(&text)
            })
            .as_ref()
            .map_err(|why| {
                anyhow::anyhow!(
                    "Slack's webhook definition (@slack/webhook@{PACKAGE_VERSION} on npm) could not be had: {why}"
                )
            })
    }

    /// The fields of [`INTERFACES`] in a `.d.ts` file.
    pub fn parse(declaration: &str) -> Result<SlackDefinition, String> {
        let mut fields = BTreeMap::new();
        for interface in INTERFACES {
            let start = declaration
                .find(&format!("interface {interface} "))
                .ok_or_else(|| format!("no interface {interface}"))?;
            let body = &declaration[start..];
            let open = body.find('{').ok_or("an interface without a body")?;
            let mut depth = 0usize;
            for line in body[open..].lines() {
                let trimmed = line.trim();
                // Fields of the interface itself sit at depth 1.
                if depth == 1
                    && let Some((name, kind)) = trimmed.split_once("?:").or(trimmed.split_once(':'))
                {
                    fields.insert(
                        name.trim().to_owned(),
                        kind.trim().trim_end_matches(';').trim().to_owned(),
                    );
                }
                depth += trimmed.matches('{').count();
                depth = depth.saturating_sub(trimmed.matches('}').count());
                if depth == 0 {
                    break;
                }
            }
        }
        if !fields.contains_key("text") {
            return Err("the definition declares no `text`".to_owned());
        }
        Ok(SlackDefinition { fields })
    }

    /// Checks `body` as Slack would read it; answers the fields Slack ignores.
    pub fn check(&self, body: &Value) -> Result<Vec<String>, String> {
        let object = body.as_object().ok_or("the body is not a JSON object")?;
        match object.get("text") {
            Some(Value::String(text)) if !text.trim().is_empty() => {}
            other => return Err(format!("`text` must be a non-empty string, not {other:?}")),
        }
        let mut ignored = Vec::new();
        for (name, value) in object {
            let Some(kind) = self.fields.get(name) else {
                ignored.push(name.clone());
                continue;
            };
            let fits = match kind.as_str() {
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "number" => value.is_number(),
                _ => true,
            };
            if !fits {
                return Err(format!("`{name}` must be {kind}, not {value}"));
            }
        }
        Ok(ignored)
    }
}

/// `package/dist/IncomingWebhook.d.ts`, from the cache or fetched and verified.
fn cached_declaration() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::stack::repo_root().join("target"));
    let dir = target.join("slack-webhook").join(PACKAGE_VERSION);
    let declaration = dir.join("package/dist/IncomingWebhook.d.ts");
    if declaration.is_file() {
        return Ok(declaration);
    }
    std::fs::create_dir_all(&target).map_err(|error| error.to_string())?;
    let download = tempfile::tempdir_in(&target).map_err(|error| error.to_string())?;
    let output = std::process::Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(download.path())
        .arg(format!("@slack/webhook@{PACKAGE_VERSION}"))
        .output()
        .map_err(|error| format!("cannot run npm: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "npm pack failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let tarball = download
        .path()
        .join(format!("slack-webhook-{PACKAGE_VERSION}.tgz"));
    let bytes =
        std::fs::read(&tarball).map_err(|error| format!("{}: {error}", tarball.display()))?;
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&bytes))
    );
    if integrity != PACKAGE_INTEGRITY {
        return Err(format!(
            "the package's integrity is {integrity}, not the pinned {PACKAGE_INTEGRITY}"
        ));
    }
    let output = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(download.path())
        .arg("package/dist/IncomingWebhook.d.ts")
        .output()
        .map_err(|error| format!("cannot run tar: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "the package holds no dist/IncomingWebhook.d.ts: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    std::fs::remove_file(&tarball).map_err(|error| error.to_string())?;
    std::fs::create_dir_all(dir.parent().expect("the cache has a parent"))
        .map_err(|error| error.to_string())?;
    // Another test binary may have won the race; its copy is the same file.
    let _ = std::fs::rename(download.keep(), &dir);
    declaration
        .is_file()
        .then_some(declaration.clone())
        .ok_or_else(|| format!("{} was not written", declaration.display()))
}

#[derive(Default)]
struct Book {
    posts: Vec<Value>,
    status: Option<u16>,
}

/// A running receiver. Dropping it stops the server.
pub struct SlackReceiver {
    addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SlackReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SlackReceiver {
    /// Listens on 127.0.0.1 and answers `200 ok`, as Slack does, until told otherwise.
    pub async fn start() -> anyhow::Result<SlackReceiver> {
        let book = Arc::new(Mutex::new(Book::default()));
        let app = Router::new()
            .route("/services/hook", post(receive))
            .with_state(book.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SlackReceiver { addr, book, task })
    }

    /// The URL to set as the team's webhook.
    pub fn url(&self) -> String {
        format!("http://{}/services/hook", self.addr)
    }

    /// Answer every later post with `status`.
    pub fn answer_with(&self, status: u16) {
        lock(&self.book).status = Some(status);
    }

    /// Every body received so far, in order (a body that was not JSON is a string).
    pub fn posts(&self) -> Vec<Value> {
        lock(&self.book).posts.clone()
    }

    /// Waits until a post satisfies `pick`, for at most [`crate::WAIT`].
    pub async fn wait_for(&self, pick: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        loop {
            if let Some(post) = self.posts().into_iter().find(|post| pick(post)) {
                return Ok(post);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "no such webhook post came; got {:?}",
                self.posts()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

async fn receive(State(book): State<Arc<Mutex<Book>>>, body: String) -> (StatusCode, &'static str) {
    let mut book = lock(&book);
    book.posts
        .push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
    match book
        .status
        .and_then(|status| StatusCode::from_u16(status).ok())
    {
        Some(status) if !status.is_success() => (status, "invalid_payload"),
        _ => (StatusCode::OK, "ok"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARATION: &str = "export interface IncomingWebhookDefaultArguments {\n    username?: string;\n    text?: string;\n    link_names?: boolean;\n}\nexport interface IncomingWebhookSendArguments extends IncomingWebhookDefaultArguments {\n    unfurl_links?: boolean;\n    metadata?: {\n        event_type: string;\n    };\n}\n";

    #[test]
    fn the_definition_is_read_at_the_interfaces_own_depth() {
        let definition = SlackDefinition::parse(DECLARATION).unwrap();
        assert_eq!(
            definition.fields.get("text").map(String::as_str),
            Some("string")
        );
        assert!(definition.fields.contains_key("metadata"));
        assert!(!definition.fields.contains_key("event_type"));
    }

    #[test]
    fn a_body_needs_text_and_declared_types_and_extras_are_named() {
        let definition = SlackDefinition::parse(DECLARATION).unwrap();
        let ignored = definition
            .check(&serde_json::json!({"text": "hi", "kind": "x"}))
            .unwrap();
        assert_eq!(ignored, ["kind"]);
        assert!(definition.check(&serde_json::json!({"kind": "x"})).is_err());
        assert!(definition.check(&serde_json::json!({"text": ""})).is_err());
        assert!(
            definition
                .check(&serde_json::json!({"text": "hi", "link_names": "yes"}))
                .is_err()
        );
    }
}
