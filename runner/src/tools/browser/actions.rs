//! What each browser tool does on a page: the DevTools commands, the scripts run in
//! the page, and the waits, each bounded. Method and field names are Chromium's own
//! protocol definition (`/json/protocol` of the installed Chromium); the runner's
//! test checks every one used here against it.
//!
//! The page is the sandbox's: whatever a script returns is checked for shape and
//! cut to size before it reaches the model.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::devtools::{DevtoolsError, PageSession};
use nightshift_protocol::artifacts::{MAX_ARTIFACT_BYTES, png_dimensions};

/// How long one DevTools command may take.
const CALL: Duration = Duration::from_secs(10);
/// A screenshot of a big page takes longer.
const SCREENSHOT_CALL: Duration = Duration::from_secs(20);
/// Between two looks at a page that is loading or lacks an element.
const POLL: Duration = Duration::from_millis(100);
/// The most of a page's text returned.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// The most text typed at once.
pub const MAX_TYPED_CHARS: usize = 10_000;

/// The longest title or URL reported.
const MAX_LABEL_CHARS: usize = 300;

/// A PNG the page looked like, already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Png {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Why a tool did not do what was asked, in words for the model.
pub type Outcome<T> = Result<T, String>;

fn words(error: DevtoolsError) -> String {
    error.to_string()
}

/// Evaluates `expression` in the page and returns its value (by value).
async fn evaluate(page: &mut PageSession, expression: &str) -> Outcome<Value> {
    let answer = page
        .call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": false}),
            CALL,
        )
        .await
        .map_err(words)?;
    if let Some(details) = answer.get("exceptionDetails") {
        let text = details
            .pointer("/exception/description")
            .or_else(|| details.get("text"))
            .and_then(Value::as_str)
            .unwrap_or("an exception");
        return Err(format!("the page's script failed: {}", cut(text, 500)));
    }
    Ok(answer
        .pointer("/result/value")
        .cloned()
        .unwrap_or(Value::Null))
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The page's title and URL, for the model to know where it is.
async fn whereabouts(page: &mut PageSession) -> Outcome<String> {
    let value = evaluate(
        page,
        "JSON.stringify([String(document.title).slice(0, 300), String(location.href).slice(0, 300)])",
    )
    .await?;
    let pair: Vec<String> = value
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let title = pair
        .first()
        .map(|t| cut(t, MAX_LABEL_CHARS))
        .unwrap_or_default();
    let url = pair
        .get(1)
        .map(|u| cut(u, MAX_LABEL_CHARS))
        .unwrap_or_default();
    Ok(format!("Title: {title}\nURL: {url}"))
}

/// `browser_navigate`: loads `url` and waits until the document is complete.
pub async fn navigate(page: &mut PageSession, url: &str, wait: Duration) -> Outcome<String> {
    // A server that never answers keeps `Page.navigate` from answering too.
    let answer = page
        .call("Page.navigate", json!({"url": url}), wait.max(CALL))
        .await
        .map_err(words)?;
    if let Some(error) = answer.get("errorText").and_then(Value::as_str)
        && !error.is_empty()
    {
        return Err(format!("the page did not load: {}", cut(error, 200)));
    }
    let started = Instant::now();
    loop {
        let state = evaluate(page, "document.readyState").await?;
        if state.as_str() == Some("complete") {
            break;
        }
        if started.elapsed() >= wait {
            let here = whereabouts(page).await?;
            return Ok(format!(
                "The page is still loading after {} ms (it may work already).\n{here}",
                wait.as_millis()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(format!("Loaded.\n{}", whereabouts(page).await?))
}

/// Where an element's centre is, after scrolling it into view; `None` while the
/// page has no element matching `selector`.
async fn locate(page: &mut PageSession, selector: &str) -> Outcome<Option<(f64, f64)>> {
    let literal = serde_json::to_string(selector).map_err(|error| error.to_string())?;
    let script = format!(
        "(() => {{ const el = document.querySelector({literal}); if (!el) return null; \
         el.scrollIntoView({{block: 'center', inline: 'center'}}); \
         const r = el.getBoundingClientRect(); \
         return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
    );
    let value = evaluate(page, &script).await?;
    let point = value.as_array().and_then(|pair| {
        let x = pair.first()?.as_f64()?;
        let y = pair.get(1)?.as_f64()?;
        (x.is_finite() && y.is_finite()).then_some((x, y))
    });
    Ok(point)
}

/// Waits up to `wait` for `selector` to match, then gives its centre.
async fn wait_for(page: &mut PageSession, selector: &str, wait: Duration) -> Outcome<(f64, f64)> {
    let started = Instant::now();
    loop {
        if let Some(point) = locate(page, selector).await? {
            return Ok(point);
        }
        if started.elapsed() >= wait {
            return Err(format!(
                "no element matches {selector:?} after {} ms",
                wait.as_millis()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What a click aims at.
pub enum Aim {
    Selector(String),
    Point(f64, f64),
}

/// `browser_click`: a left click (press and release) at the element's centre or the
/// point, as a user's mouse would make it.
pub async fn click(page: &mut PageSession, aim: &Aim, wait: Duration) -> Outcome<String> {
    let (x, y) = match aim {
        Aim::Selector(selector) => wait_for(page, selector, wait).await?,
        Aim::Point(x, y) => (*x, *y),
    };
    for (kind, buttons) in [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)] {
        let mut event = json!({"type": kind, "x": x, "y": y, "buttons": buttons});
        if kind != "mouseMoved" {
            event["button"] = json!("left");
            event["clickCount"] = json!(1);
        }
        page.call("Input.dispatchMouseEvent", event, CALL)
            .await
            .map_err(words)?;
    }
    Ok(format!(
        "Clicked at ({x:.0}, {y:.0}).\n{}",
        whereabouts(page).await?
    ))
}

/// A key the `key` argument may name: its DOM `key`, `code`, Windows key code and
/// the text it types.
struct Key {
    key: &'static str,
    code: &'static str,
    key_code: u32,
    text: Option<&'static str>,
}

const KEYS: &[Key] = &[
    Key {
        key: "Enter",
        code: "Enter",
        key_code: 13,
        text: Some("\r"),
    },
    Key {
        key: "Tab",
        code: "Tab",
        key_code: 9,
        text: None,
    },
    Key {
        key: "Escape",
        code: "Escape",
        key_code: 27,
        text: None,
    },
    Key {
        key: "Backspace",
        code: "Backspace",
        key_code: 8,
        text: None,
    },
    Key {
        key: "Delete",
        code: "Delete",
        key_code: 46,
        text: None,
    },
    Key {
        key: "ArrowUp",
        code: "ArrowUp",
        key_code: 38,
        text: None,
    },
    Key {
        key: "ArrowDown",
        code: "ArrowDown",
        key_code: 40,
        text: None,
    },
    Key {
        key: "ArrowLeft",
        code: "ArrowLeft",
        key_code: 37,
        text: None,
    },
    Key {
        key: "ArrowRight",
        code: "ArrowRight",
        key_code: 39,
        text: None,
    },
    Key {
        key: "Home",
        code: "Home",
        key_code: 36,
        text: None,
    },
    Key {
        key: "End",
        code: "End",
        key_code: 35,
        text: None,
    },
    Key {
        key: "PageUp",
        code: "PageUp",
        key_code: 33,
        text: None,
    },
    Key {
        key: "PageDown",
        code: "PageDown",
        key_code: 34,
        text: None,
    },
    Key {
        key: " ",
        code: "Space",
        key_code: 32,
        text: Some(" "),
    },
];

/// The names `key` accepts, for the tool's description and errors.
pub fn key_names() -> String {
    KEYS.iter()
        .map(|key| if key.key == " " { "Space" } else { key.key })
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_key(name: &str) -> Option<&'static Key> {
    let name = if name.eq_ignore_ascii_case("space") {
        " "
    } else {
        name
    };
    KEYS.iter().find(|key| key.key.eq_ignore_ascii_case(name))
}

/// `browser_type`: focuses `selector` (when given), types `text` (when given), then
/// presses `key` (when given).
pub async fn type_text(
    page: &mut PageSession,
    selector: Option<&str>,
    text: Option<&str>,
    key: Option<&str>,
    wait: Duration,
) -> Outcome<String> {
    let key = match key {
        Some(name) => Some(
            find_key(name)
                .ok_or_else(|| format!("unknown key {name:?}; the keys are {}", key_names()))?,
        ),
        None => None,
    };
    if let Some(text) = text
        && text.chars().count() > MAX_TYPED_CHARS
    {
        return Err(format!(
            "the text is longer than {MAX_TYPED_CHARS} characters"
        ));
    }
    if let Some(selector) = selector {
        wait_for(page, selector, wait).await?;
        let literal = serde_json::to_string(selector).map_err(|error| error.to_string())?;
        evaluate(page, &format!("document.querySelector({literal}).focus()")).await?;
    }
    if let Some(text) = text.filter(|text| !text.is_empty()) {
        page.call("Input.insertText", json!({"text": text}), CALL)
            .await
            .map_err(words)?;
    }
    if let Some(key) = key {
        let down = if key.text.is_some() {
            "keyDown"
        } else {
            "rawKeyDown"
        };
        let mut event = json!({
            "type": down,
            "key": key.key,
            "code": key.code,
            "windowsVirtualKeyCode": key.key_code,
            "nativeVirtualKeyCode": key.key_code,
        });
        if let Some(text) = key.text {
            event["text"] = json!(text);
            event["unmodifiedText"] = json!(text);
        }
        page.call("Input.dispatchKeyEvent", event.clone(), CALL)
            .await
            .map_err(words)?;
        event["type"] = json!("keyUp");
        if let Some(object) = event.as_object_mut() {
            object.remove("text");
            object.remove("unmodifiedText");
        }
        page.call("Input.dispatchKeyEvent", event, CALL)
            .await
            .map_err(words)?;
    }
    Ok(format!("Typed.\n{}", whereabouts(page).await?))
}

/// `browser_read`: the page's visible text, at most `max_chars`, saying when cut.
pub async fn read_text(page: &mut PageSession, max_chars: usize) -> Outcome<String> {
    let max_chars = max_chars.clamp(1, MAX_TEXT_CHARS);
    // The page cuts first (so a huge page does not cross the socket), and the
    // runner again (the page's script is the page's).
    let script = format!(
        "(() => {{ const root = document.body || document.documentElement; \
         const t = root ? String(root.innerText) : ''; \
         return [t.length, t.slice(0, {max_chars})]; }})()"
    );
    let value = evaluate(page, &script).await?;
    let total = value.get(0).and_then(Value::as_u64).unwrap_or(0);
    let text = value.get(1).and_then(Value::as_str).unwrap_or("");
    let kept: String = text.chars().take(max_chars).collect();
    let kept_chars = kept.chars().count() as u64;
    let mut answer = format!("{}\n\n{kept}", whereabouts(page).await?);
    if total > kept_chars {
        answer.push_str(&format!(
            "\n\n[cut: the page's text has {total} characters; the first {kept_chars} are shown]"
        ));
    }
    Ok(answer)
}

/// `browser_screenshot`: the viewport as a PNG, checked like an upload is.
pub async fn screenshot(page: &mut PageSession) -> Outcome<Png> {
    let answer = page
        .call(
            "Page.captureScreenshot",
            json!({"format": "png"}),
            SCREENSHOT_CALL,
        )
        .await
        .map_err(words)?;
    let data = answer
        .get("data")
        .and_then(Value::as_str)
        .ok_or("the browser's screenshot has no data")?;
    if data.len() > MAX_ARTIFACT_BYTES / 3 * 4 + 4 {
        return Err("the screenshot is larger than 8 MiB".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| "the browser's screenshot is not base64".to_string())?;
    let (width, height) =
        png_dimensions(&bytes).map_err(|refusal| refusal.message().to_string())?;
    Ok(Png {
        bytes,
        width,
        height,
    })
}

/// Every DevTools method and parameter this module sends, for the test that checks
/// them against Chromium's protocol definition.
#[cfg(test)]
pub const USED: &[(&str, &[&str])] = &[
    (
        "Runtime.evaluate",
        &["expression", "returnByValue", "awaitPromise"],
    ),
    ("Page.navigate", &["url"]),
    (
        "Input.dispatchMouseEvent",
        &["type", "x", "y", "buttons", "button", "clickCount"],
    ),
    ("Input.insertText", &["text"]),
    (
        "Input.dispatchKeyEvent",
        &[
            "type",
            "key",
            "code",
            "windowsVirtualKeyCode",
            "nativeVirtualKeyCode",
            "text",
            "unmodifiedText",
        ],
    ),
    ("Page.captureScreenshot", &["format"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_name_whatever_the_case() {
        assert_eq!(find_key("enter").map(|key| key.key_code), Some(13));
        assert_eq!(find_key("Space").map(|key| key.code), Some("Space"));
        assert!(find_key("F13").is_none());
        assert!(key_names().contains("ArrowDown"));
    }
}
