//! The browser tools: `browser_navigate`, `browser_click`, `browser_type`,
//! `browser_read` and `browser_screenshot`, driving the Chromium of the session's
//! desktop (the same browser users watch in the Browser panel) over its DevTools
//! protocol ([`devtools`]); what each does on the page is [`actions`].
//!
//! A tool never fails a turn: a sandbox without a browser, a page that never loads,
//! a selector that never matches all come back as error results for the model.
//! Each call opens its own DevTools session on the first page and closes it, so a
//! browser restarted between calls (the gateway restarts it when it dies) is simply
//! found again.

pub mod actions;
pub mod devtools;
#[cfg(test)]
pub(crate) mod test_chromium;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::ToolOutput;
use crate::llm::ToolDefinition;
use actions::{Aim, MAX_TEXT_CHARS};
use devtools::Devtools;

pub use actions::Png;

/// The tools' names, in the order they are offered.
pub const NAMES: [&str; 5] = [
    "browser_navigate",
    "browser_click",
    "browser_type",
    "browser_read",
    "browser_screenshot",
];

/// Default and longest waits for a page to load or an element to appear.
const DEFAULT_LOAD_WAIT_MS: u64 = 15_000;
const DEFAULT_ELEMENT_WAIT_MS: u64 = 5_000;
const MAX_WAIT_MS: u64 = 60_000;
/// The longest URL taken.
const MAX_URL_CHARS: usize = 8_192;

/// The browser tools of one sandbox.
#[derive(Debug, Clone)]
pub struct BrowserTools {
    devtools: Devtools,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NavigateArgs {
    url: String,
    wait_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClickArgs {
    selector: Option<String>,
    x: Option<f64>,
    y: Option<f64>,
    wait_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeArgs {
    text: Option<String>,
    selector: Option<String>,
    key: Option<String>,
    wait_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    max_chars: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenshotArgs {}

fn wait(ms: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(ms.unwrap_or(default).min(MAX_WAIT_MS))
}

impl BrowserTools {
    pub fn new(devtools: Devtools) -> BrowserTools {
        BrowserTools { devtools }
    }

    /// Whether `name` is one of these tools.
    pub fn owns(name: &str) -> bool {
        NAMES.contains(&name)
    }

    /// Runs one browser tool call.
    pub async fn run(&self, name: &str, args: &Value) -> ToolOutput {
        let outcome = match name {
            "browser_navigate" => match super::parse::<NavigateArgs>(name, args) {
                Ok(args) => self.navigate(args).await,
                Err(output) => return output,
            },
            "browser_click" => match super::parse::<ClickArgs>(name, args) {
                Ok(args) => self.click(args).await,
                Err(output) => return output,
            },
            "browser_type" => match super::parse::<TypeArgs>(name, args) {
                Ok(args) => self.type_text(args).await,
                Err(output) => return output,
            },
            "browser_read" => match super::parse::<ReadArgs>(name, args) {
                Ok(args) => self.read(args).await,
                Err(output) => return output,
            },
            "browser_screenshot" => match super::parse::<ScreenshotArgs>(name, args) {
                Ok(_) => self.screenshot().await,
                Err(output) => return output,
            },
            _ => Err(format!("there is no browser tool named {name:?}")),
        };
        outcome.unwrap_or_else(ToolOutput::error)
    }

    async fn navigate(&self, args: NavigateArgs) -> Result<ToolOutput, String> {
        let url = args.url.trim();
        if url.is_empty() || url.chars().count() > MAX_URL_CHARS {
            return Err(format!("the url must be 1 to {MAX_URL_CHARS} characters"));
        }
        let mut page = self.devtools.open_page().await.map_err(|e| e.to_string())?;
        let done =
            actions::navigate(&mut page, url, wait(args.wait_ms, DEFAULT_LOAD_WAIT_MS)).await;
        page.close().await;
        done.map(ToolOutput::ok)
    }

    async fn click(&self, args: ClickArgs) -> Result<ToolOutput, String> {
        let aim = match (args.selector, args.x, args.y) {
            (Some(selector), None, None) if !selector.trim().is_empty() => Aim::Selector(selector),
            (None, Some(x), Some(y))
                if x.is_finite()
                    && y.is_finite()
                    && (0.0..=100_000.0).contains(&x)
                    && (0.0..=100_000.0).contains(&y) =>
            {
                Aim::Point(x, y)
            }
            _ => {
                return Err(
                    "give either a CSS selector, or x and y (CSS pixels from the viewport's top left corner)"
                        .into(),
                );
            }
        };
        let mut page = self.devtools.open_page().await.map_err(|e| e.to_string())?;
        let done =
            actions::click(&mut page, &aim, wait(args.wait_ms, DEFAULT_ELEMENT_WAIT_MS)).await;
        page.close().await;
        done.map(ToolOutput::ok)
    }

    async fn type_text(&self, args: TypeArgs) -> Result<ToolOutput, String> {
        if args.text.as_deref().unwrap_or("").is_empty() && args.key.is_none() {
            return Err("give the text to type, a key to press, or both".into());
        }
        let mut page = self.devtools.open_page().await.map_err(|e| e.to_string())?;
        let done = actions::type_text(
            &mut page,
            args.selector.as_deref().filter(|s| !s.trim().is_empty()),
            args.text.as_deref(),
            args.key.as_deref(),
            wait(args.wait_ms, DEFAULT_ELEMENT_WAIT_MS),
        )
        .await;
        page.close().await;
        done.map(ToolOutput::ok)
    }

    async fn read(&self, args: ReadArgs) -> Result<ToolOutput, String> {
        let mut page = self.devtools.open_page().await.map_err(|e| e.to_string())?;
        let done = actions::read_text(&mut page, args.max_chars.unwrap_or(MAX_TEXT_CHARS)).await;
        page.close().await;
        done.map(ToolOutput::ok)
    }

    async fn screenshot(&self) -> Result<ToolOutput, String> {
        let mut page = self.devtools.open_page().await.map_err(|e| e.to_string())?;
        let done = actions::screenshot(&mut page).await;
        page.close().await;
        let png = done?;
        let text = format!(
            "Took a screenshot of the page ({}x{} pixels, PNG); it is shown to the user in the chat.",
            png.width, png.height
        );
        Ok(ToolOutput::ok(text).with_image(png))
    }
}

/// The tools' definitions, as the LLM sees them.
pub fn definitions() -> Vec<ToolDefinition> {
    let tool = |name: &str, description: String, parameters: Value| ToolDefinition {
        name: name.to_string(),
        description,
        parameters,
    };
    let wait_ms = |default: u64| json!({"type": "integer", "description": format!("How long to wait in milliseconds (default {default}, at most {MAX_WAIT_MS}).")});
    vec![
        tool(
            "browser_navigate",
            "Open a URL in the sandbox's browser (Chromium on the session's desktop, which the user watches) and \
             wait for it to load. Pages served inside the sandbox are at http://127.0.0.1:<port>/ and files at \
             file:///workspace/...; returns the page's title and URL."
                .into(),
            json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "The URL to open."},
                    "wait_ms": wait_ms(DEFAULT_LOAD_WAIT_MS)
                },
                "required": ["url"]
            }),
        ),
        tool(
            "browser_click",
            "Click in the browser's page: the centre of the first element matching a CSS selector (waiting for it \
             to appear), or a point given as x and y in CSS pixels from the viewport's top left corner."
                .into(),
            json!({
                "type": "object",
                "properties": {
                    "selector": {"type": "string", "description": "A CSS selector, e.g. `#submit` or `button.primary`."},
                    "x": {"type": "number", "description": "Horizontal position (with y, instead of selector)."},
                    "y": {"type": "number", "description": "Vertical position (with x, instead of selector)."},
                    "wait_ms": wait_ms(DEFAULT_ELEMENT_WAIT_MS)
                }
            }),
        ),
        tool(
            "browser_type",
            format!(
                "Type text into the browser's page: into the element matching selector (focused first), or into the \
                 focused element; then optionally press one key ({}).",
                actions::key_names()
            ),
            json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "The text to type (at most 10000 characters)."},
                    "selector": {"type": "string", "description": "A CSS selector of the element to type into."},
                    "key": {"type": "string", "description": "A key to press after the text, e.g. `Enter`."},
                    "wait_ms": wait_ms(DEFAULT_ELEMENT_WAIT_MS)
                }
            }),
        ),
        tool(
            "browser_read",
            format!(
                "Read the visible text of the browser's page, with its title and URL (at most {MAX_TEXT_CHARS} \
                 characters; the answer says when the text was cut)."
            ),
            json!({
                "type": "object",
                "properties": {
                    "max_chars": {"type": "integer", "description": format!("At most this many characters (default and maximum {MAX_TEXT_CHARS}).")}
                }
            }),
        ),
        tool(
            "browser_screenshot",
            "Take a screenshot of the browser's page (the visible part, as PNG). The user sees it in the chat."
                .into(),
            json!({"type": "object", "properties": {}}),
        ),
    ]
}
