//! The browser tools against a real headless Chromium (Debian's, as in the
//! sandbox), reached on the test's loopback the way a runner sharing the sandbox's
//! loopback reaches it. The DevTools names the tools send are checked against the
//! running Chromium's own protocol definition (`/json/protocol`).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::BrowserTools;
use super::actions::USED;
use super::devtools::Devtools;
use super::test_chromium::{chromium, free_port};

const PAGE: &str = r#"<!doctype html>
<html><head><title>Browser tools</title></head>
<body style="margin:0">
<p id="status">waiting for a click</p>
<button id="go" style="position:absolute;left:20px;top:80px;width:120px;height:40px"
  onclick="document.getElementById('status').textContent='clicked'">Go</button>
<input id="name" style="position:absolute;left:20px;top:140px"
  onkeydown="if (event.key === 'Enter') document.getElementById('echo').textContent = 'entered ' + this.value">
<p id="echo" style="position:absolute;top:200px"></p>
<p id="size" style="position:absolute;top:260px"></p>
<script>document.getElementById('size').textContent = 'viewport ' + innerWidth + 'x' + innerHeight;</script>
</body></html>"#;

fn write_page(dir: &Path) -> String {
    let path = dir.join("page.html");
    std::fs::write(&path, PAGE).unwrap();
    format!("file://{}", path.display())
}

async fn run(tools: &BrowserTools, name: &str, args: Value) -> super::ToolOutput {
    tokio::time::timeout(Duration::from_secs(60), tools.run(name, &args))
        .await
        .unwrap_or_else(|_| panic!("{name} did not end within a minute"))
}

#[tokio::test]
async fn every_devtools_method_and_field_the_tools_send_is_in_chromiums_protocol() {
    let chromium = chromium().expect("Chromium");
    // The definition is larger than the tools ever read from Chromium.
    let protocol: Value = reqwest::get(format!("http://127.0.0.1:{}/json/protocol", chromium.port))
        .await
        .expect("the protocol definition")
        .json()
        .await
        .expect("the protocol definition is JSON");
    for (method, fields) in USED {
        let (domain, command) = method.split_once('.').unwrap();
        let definition = protocol["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["domain"] == domain)
            .and_then(|d| {
                d["commands"]
                    .as_array()?
                    .iter()
                    .find(|c| c["name"] == command)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("{method} is not in Chromium's protocol"));
        let known: Vec<&str> = definition["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        for field in *fields {
            assert!(known.contains(field), "{method} has no parameter {field}");
        }
    }
}

#[tokio::test]
async fn the_agent_navigates_reads_clicks_types_and_takes_a_screenshot() {
    let chromium = chromium().expect("Chromium");
    let dir = tempfile::tempdir().unwrap();
    let url = write_page(dir.path());
    let tools = BrowserTools::new(Devtools::Direct(chromium.port));

    let loaded = run(&tools, "browser_navigate", json!({"url": url})).await;
    assert!(!loaded.is_error, "{}", loaded.text);
    assert!(
        loaded.text.contains("Title: Browser tools"),
        "{}",
        loaded.text
    );

    let read = run(&tools, "browser_read", json!({})).await;
    assert!(read.text.contains("waiting for a click"), "{}", read.text);
    assert!(!read.text.contains("[cut:"), "{}", read.text);

    let clicked = run(&tools, "browser_click", json!({"selector": "#go"})).await;
    assert!(!clicked.is_error, "{}", clicked.text);
    let read = run(&tools, "browser_read", json!({})).await;
    assert!(read.text.contains("clicked"), "{}", read.text);

    let typed = run(
        &tools,
        "browser_type",
        json!({"selector": "#name", "text": "Ada", "key": "Enter"}),
    )
    .await;
    assert!(!typed.is_error, "{}", typed.text);
    let read = run(&tools, "browser_read", json!({"max_chars": 5})).await;
    assert!(
        read.text.contains("[cut: the page's text has"),
        "{}",
        read.text
    );
    let read = run(&tools, "browser_read", json!({})).await;
    assert!(read.text.contains("entered Ada"), "{}", read.text);
    let size = read
        .text
        .lines()
        .find_map(|line| line.strip_prefix("viewport "))
        .expect("the page says its size")
        .to_string();

    let shot = run(&tools, "browser_screenshot", json!({})).await;
    assert!(!shot.is_error, "{}", shot.text);
    let png = shot.image.expect("a screenshot carries its image");
    assert_eq!(&png.bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(format!("{}x{}", png.width, png.height), size);
}

#[tokio::test]
async fn a_missing_browser_a_missing_element_and_a_silent_server_are_error_results_in_bounded_time()
{
    // No browser: a port nothing listens on.
    let nothing = BrowserTools::new(Devtools::Direct(free_port()));
    let answer = run(&nothing, "browser_read", json!({})).await;
    assert!(
        answer.is_error && answer.text.contains("does not answer"),
        "{}",
        answer.text
    );

    let chromium = chromium().expect("Chromium");
    let tools = BrowserTools::new(Devtools::Direct(chromium.port));
    let dir = tempfile::tempdir().unwrap();
    let loaded = run(
        &tools,
        "browser_navigate",
        json!({"url": write_page(dir.path())}),
    )
    .await;
    assert!(!loaded.is_error, "{}", loaded.text);

    let started = Instant::now();
    let missing = run(
        &tools,
        "browser_click",
        json!({"selector": "#nowhere", "wait_ms": 300}),
    )
    .await;
    assert!(
        missing.is_error && missing.text.contains("no element matches"),
        "{}",
        missing.text
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let bad = run(&tools, "browser_click", json!({"selector": "#go", "x": 1})).await;
    assert!(bad.is_error, "{}", bad.text);
    let bad_key = run(&tools, "browser_type", json!({"key": "Hyper"})).await;
    assert!(
        bad_key.is_error && bad_key.text.contains("unknown key"),
        "{}",
        bad_key.text
    );

    // A server that takes the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let stuck = run(
        &tools,
        "browser_navigate",
        json!({"url": format!("http://127.0.0.1:{port}/"), "wait_ms": 1000}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stuck.text.contains("still loading") || stuck.text.contains("did not answer"),
        "{}",
        stuck.text
    );
}
