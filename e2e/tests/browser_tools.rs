//! The built-in agent's browser tools on the real stack: a session's sandbox with its
//! gateway (Xvfb, Chromium with DevTools on the sandbox's loopback), the runner
//! reaching Chromium through a bridge into the sandbox, the scripted LLM driving the
//! tools, and the screenshot reaching the chat as an artifact the Worker stored in
//! R2. Then the artifact routes as an attacker meets them: uploads that are not a
//! PNG, too large or of absurd dimensions are refused and store nothing; another
//! session's artifact is not found; a viewer sees the image and a stranger does not.

use anyhow::Context;
use nightshift_e2e::artifacts::{png_header, upload};
use nightshift_e2e::browser::{Chromedriver, sign_in, wait_for};
use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, repo_root, with_logs};
use nightshift_protocol::events::{EventBody, SessionEvent};
use reqwest::Method;
use serde_json::json;

/// The page the agent browses: a button that changes the text, an input that echoes
/// what was typed on Enter, and the viewport's size in its text.
const PAGE: &str = r#"<!doctype html>
<html><head><title>Browser tools</title></head>
<body style="margin:0;font:16px sans-serif">
<p id="status">waiting for a click</p>
<button id="go" onclick="document.getElementById('status').textContent='clicked'">Go</button>
<input id="name" onkeydown="if (event.key === 'Enter') document.getElementById('echo').textContent = 'entered ' + this.value">
<p id="echo"></p>
<p id="size"></p>
<script>document.getElementById('size').textContent = 'viewport ' + innerWidth + 'x' + innerHeight;</script>
</body></html>"#;

/// Waits in the sandbox for Chromium's DevTools (the gateway starts it with the
/// sandbox), at most 120 s.
const WAIT_FOR_CHROMIUM: &str = "for i in $(seq 1 1200); do (exec 3<>/dev/tcp/127.0.0.1/9222) 2>/dev/null && echo devtools-up && exit 0; sleep 0.1; done; echo devtools-down; ps -eo pid,args | cut -c1-200; exit 1";

async fn stack() -> (Stack, ScriptedLlm) {
    let llm = ScriptedLlm::start().await.unwrap();
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![("WORKSPACE_PANELS".to_string(), "true".to_string())],
    })
    .await
    .unwrap();
    (stack, llm)
}

/// The session's events up to the end of its first turn. The browser may take a
/// while to start on a busy machine, so the turn gets 4 minutes, polled through the
/// messages (an event stream gives up after a quiet minute).
async fn turn_events(api: &Api, session_id: &str) -> anyhow::Result<Vec<SessionEvent>> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        let messages = api.messages(session_id).await?;
        if !messages.is_empty() && messages.iter().all(|m| m.state.is_final()) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let events = api
                .history_until(session_id, |events| {
                    events
                        .last()
                        .is_some_and(|e| matches!(e.body, EventBody::ToolCallStarted { .. }))
                })
                .await;
            anyhow::bail!("the turn did not end within 4 minutes: {events:#?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    api.history_until(session_id, |events| {
        events
            .iter()
            .any(|e| matches!(e.body, EventBody::TurnFinished { .. }))
    })
    .await
}

/// Outputs of the turn's finished tool calls, in order.
fn outputs(events: &[SessionEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|event| match &event.body {
            EventBody::ToolCallFinished {
                output, is_error, ..
            } => Some((output.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

async fn get_artifact(
    api: &Api,
    session_id: &str,
    artifact: &str,
) -> anyhow::Result<reqwest::Response> {
    let http = reqwest::Client::new();
    Ok(api
        .sign(http.get(api.url(&format!("/api/sessions/{session_id}/artifacts/{artifact}"))))
        .send()
        .await?)
}

#[tokio::test]
async fn the_agent_browses_a_page_in_its_sandbox_and_its_screenshot_reaches_the_chat() {
    let (stack, llm) = stack().await;
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let viewer = stack.signed_in_member(&owner, "viewer@example.com").await?;
        let stranger = stack
            .signed_in_member(&owner, "stranger@example.com")
            .await?;
        let session = owner.create_session().await?;
        owner
            .share(&session.id, &viewer.user_id().await?, "viewer")
            .await?;
        owner.wait_status(&session.id, "idle").await?;

        llm.on(
            "browse-the-page",
            Script::new(vec![
                Step::tool(
                    "write_file",
                    json!({"path": "site/index.html", "content": PAGE}),
                ),
                Step::tool(
                    "bash",
                    json!({"command": WAIT_FOR_CHROMIUM, "timeout_ms": 150000}),
                ),
                Step::tool(
                    "browser_navigate",
                    json!({"url": "file:///workspace/site/index.html"}),
                ),
                Step::tool("browser_read", json!({})),
                Step::tool("browser_click", json!({"selector": "#go"})),
                Step::tool(
                    "browser_type",
                    json!({"selector": "#name", "text": "Ada", "key": "Enter"}),
                ),
                Step::tool("browser_read", json!({})),
                Step::tool("browser_screenshot", json!({})),
                Step::text("browsed"),
            ]),
        );
        owner.send(&session.id, "browse-the-page please").await?;
        let events = turn_events(&owner, &session.id).await?;
        let outputs = outputs(&events);
        assert_eq!(outputs.len(), 8, "{events:#?}");
        for (output, is_error) in &outputs {
            assert!(!is_error, "a tool failed: {output}");
        }
        assert!(outputs[1].0.contains("devtools-up"), "{}", outputs[1].0);
        assert!(
            outputs[2].0.contains("Title: Browser tools"),
            "{}",
            outputs[2].0
        );
        assert!(
            outputs[3].0.contains("waiting for a click"),
            "{}",
            outputs[3].0
        );
        let after = &outputs[6].0;
        assert!(
            after.contains("clicked") && after.contains("entered Ada"),
            "{after}"
        );
        let size = after
            .lines()
            .find_map(|line| line.strip_prefix("viewport "))
            .context("the page says its size")?
            .to_string();

        // The screenshot is an image event naming an artifact of the page's size.
        let (artifact, width, height) = events
            .iter()
            .find_map(|event| match &event.body {
                EventBody::Image {
                    artifact,
                    width,
                    height,
                    ..
                } => Some((artifact.clone(), *width, *height)),
                _ => None,
            })
            .context("an image event")?;
        assert_eq!(format!("{width}x{height}"), size);

        // Served to the owner and a viewer, as a PNG that cannot run as a page.
        for api in [&owner, &viewer] {
            let response = get_artifact(api, &session.id, &artifact).await?;
            assert_eq!(response.status().as_u16(), 200);
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            assert_eq!(header("content-type"), "image/png");
            assert_eq!(header("x-content-type-options"), "nosniff");
            assert_eq!(header("content-security-policy"), "sandbox");
            assert!(
                header("cache-control").starts_with("private"),
                "{}",
                header("cache-control")
            );
            let bytes = response.bytes().await?;
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
            assert_eq!((be(16), be(20)), (width, height));
        }
        // Hidden from a stranger, refused to nobody-signed-in, absent elsewhere.
        let response = get_artifact(&stranger, &session.id, &artifact).await?;
        assert_eq!(response.status().as_u16(), 404);
        let response = get_artifact(&stack.api(), &session.id, &artifact).await?;
        assert_eq!(response.status().as_u16(), 401);
        let other = owner.create_session().await?;
        let response = get_artifact(&owner, &other.id, &artifact).await?;
        assert_eq!(response.status().as_u16(), 404);
        let response = get_artifact(&owner, &session.id, "../../../api/me").await?;
        assert_eq!(response.status().as_u16(), 404);

        // The viewer's chat in headless Chromium shows it, loaded through the route.
        let shown = shown_in_chat(&stack, "viewer@example.com", &session.id).await?;
        assert_eq!(
            shown,
            json!([
                width,
                height,
                format!("/api/sessions/{}/artifacts/{artifact}", session.id)
            ])
        );
        Ok(())
    })
    .await;
}

/// Opens the session page as `email` in headless Chromium and waits for the chat's
/// image to load: its natural size and its link, or an error after 45 s. A
/// screenshot of the page is kept in `target/e2e-artifacts/browser-tools-chat.png`.
async fn shown_in_chat(
    stack: &Stack,
    email: &str,
    session_id: &str,
) -> anyhow::Result<serde_json::Value> {
    let driver = Chromedriver::start().await?;
    let profile = tempfile::tempdir()?;
    let client = driver.client(profile.path(), 1280).await?;
    let shown = async {
        let name = email.split('@').next().unwrap_or(email);
        sign_in(&client, &stack.worker_url(), email, name).await?;
        client
            .goto(&format!("{}/sessions/{session_id}", stack.worker_url()))
            .await?;
        wait_for("the screenshot in the chat", || async {
            let value = client
                .execute(
                    "const img = document.querySelector('[data-testid=chat-image] img'); \
                     return img && img.complete && img.naturalWidth > 0 \
                       ? [img.naturalWidth, img.naturalHeight, img.closest('a').getAttribute('href')] : null;",
                    vec![],
                )
                .await?;
            Ok((!value.is_null()).then_some(value))
        })
        .await
    }
    .await;
    if let Ok(png) = client.screenshot().await {
        let dir = repo_root().join("target/e2e-artifacts");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("browser-tools-chat.png"), png);
    }
    let _ = client.close().await;
    shown
}

#[tokio::test]
async fn uploads_that_are_not_a_sane_png_are_refused_and_store_nothing() {
    let (stack, _llm) = stack().await;
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let session = owner.create_session().await?;
        owner.wait_status(&session.id, "idle").await?;
        let other = owner.create_session().await?;
        owner.wait_status(&other.id, "idle").await?;
        let token = stack.runner_token(&session.id)?;

        // A good upload works (so the refusals below are the checks, not the route).
        let (status, created) =
            upload(&stack, &session.id, &token, "image/png", png_header(64, 48)).await?;
        assert_eq!(status, 201, "{created}");
        assert_eq!(
            (created["width"].as_u64(), created["height"].as_u64()),
            (Some(64), Some(48))
        );

        let mut oversized = png_header(64, 48);
        oversized.resize(8 * 1024 * 1024 + 1, 0);
        let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
            (
                "not a PNG",
                "image/png",
                b"<svg onload=alert(1)></svg>".repeat(4),
                400,
                "invalid_request",
            ),
            (
                "an HTML page",
                "text/html",
                png_header(10, 10),
                400,
                "invalid_request",
            ),
            (
                "zero wide",
                "image/png",
                png_header(0, 10),
                400,
                "invalid_request",
            ),
            (
                "too tall",
                "image/png",
                png_header(10, 100_000),
                400,
                "invalid_request",
            ),
            (
                "too many pixels",
                "image/png",
                png_header(8000, 8000),
                400,
                "invalid_request",
            ),
            ("empty", "image/png", Vec::new(), 400, "invalid_request"),
            (
                "over 8 MiB",
                "image/png",
                oversized,
                413,
                "payload_too_large",
            ),
        ];
        for (what, content_type, body, expected, code) in cases {
            let (status, answer) = upload(&stack, &session.id, &token, content_type, body).await?;
            assert_eq!(status, expected, "{what}: {answer}");
            assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        }
        // A token of one session uploads nothing to another, and a user cannot upload.
        let (status, answer) =
            upload(&stack, &other.id, &token, "image/png", png_header(10, 10)).await?;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_runner_token");
        let response = owner
            .sign(
                reqwest::Client::new()
                    .post(owner.url(&format!("/api/sessions/{}/artifacts", session.id))),
            )
            .header("content-type", "image/png")
            .body(png_header(10, 10))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 401);

        // Nothing but the good upload was stored.
        let stored = std::fs::read_dir(stack.persist_dir())
            .map(|_| count_objects(&stack.persist_dir()))
            .unwrap_or(0);
        assert_eq!(stored, 1, "objects in the local R2");
        let answer = owner
            .raw(
                Method::GET,
                &format!(
                    "/api/sessions/{}/artifacts/{}",
                    session.id,
                    created["artifact"].as_str().unwrap_or_default()
                ),
                None,
            )
            .await?;
        assert_eq!(answer.status, 200);
        Ok(())
    })
    .await;
}

/// The objects wrangler's local R2 holds for the `FILES` bucket (its blobs).
fn count_objects(persist: &std::path::Path) -> usize {
    fn walk(dir: &std::path::Path, count: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, count);
            } else if path.components().any(|c| c.as_os_str() == "blobs") {
                *count += 1;
            }
        }
    }
    let mut count = 0;
    walk(&persist.join("v3").join("r2"), &mut count);
    count
}

/// OpenCode gets the same tools from the runner's MCP server (`nightshift_*` in
/// OpenCode's naming), reached from OpenCode's sandbox through the sockets the
/// runner exposes there, and driving the Chromium of the session's sandbox.
#[tokio::test]
async fn opencode_drives_the_sandboxs_browser_through_the_runners_mcp_server() {
    let (stack, llm) = stack().await;
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let session = owner
            .create_session_with(json!({"agent": "opencode", "permission_mode": "allow"}))
            .await?;
        owner.wait_status(&session.id, "idle").await?;
        llm.on(
            "browse-through-mcp",
            Script::new(vec![
                Step::tool(
                    "bash",
                    json!({"command": WAIT_FOR_CHROMIUM, "description": "wait for the browser", "timeout": 150000}),
                ),
                Step::tool(
                    "nightshift_browser_navigate",
                    json!({"url": "data:text/html,<title>MCP page</title><p>hello through MCP</p>"}),
                ),
                Step::tool("nightshift_browser_read", json!({})),
                Step::text("browsed through MCP"),
            ]),
        );
        owner.send(&session.id, "browse-through-mcp please").await?;
        let events = turn_events(&owner, &session.id).await?;
        let outputs = outputs(&events);
        assert!(
            outputs
                .iter()
                // The page's text after the title and URL lines: browser_read's answer
                // (the URL alone also holds the words).
                .any(|(output, is_error)| !is_error && output.contains("\n\nhello through MCP")),
            "{events:#?}"
        );
        Ok(())
    })
    .await;
}
