//! Who gets in: the real gateway binary refuses every request without a valid token
//! for its session with the JSON error, hands a query token over to a cookie, checks
//! a cookie request's Origin, keeps viewers out of the terminal and VS Code, and
//! closes a connection that never finishes its request's headers.

#[path = "support/harness.rs"]
mod harness;

use harness::{Gateway, Options, SESSION, now_ms};
use nightshift_session::gateway_token::{GatewayKey, GatewayRole};
use reqwest::StatusCode;
use serde_json::Value;

async fn get(gateway: &Gateway, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", gateway.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_refused(answer: (StatusCode, Value), status: u16, code: &str, message: &str) {
    assert_eq!(answer.0.as_u16(), status, "{answer:?}");
    assert_eq!(answer.1["error"]["code"], code, "{answer:?}");
    let text = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(
        text.contains(message),
        "{text:?} should mention {message:?}"
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_for_this_session_are_refused_with_the_json_error() {
    let gateway = Gateway::start(Options::default()).await;
    let (status, _) = get(&gateway, "/healthz", None).await;
    assert_eq!(status, 200, "/healthz needs no token");

    assert_refused(
        get(&gateway, "/status", None).await,
        401,
        "unauthorized",
        "required",
    );
    let other_session = gateway.token_for("another-session", GatewayRole::Owner, now_ms() + 60_000);
    assert_refused(
        get(&gateway, "/status", Some(&other_session)).await,
        401,
        "unauthorized",
        "another session",
    );
    let expired = gateway.token_for(SESSION, GatewayRole::Owner, now_ms() - 1);
    assert_refused(
        get(&gateway, "/status", Some(&expired)).await,
        401,
        "unauthorized",
        "expired",
    );
    let viewer = gateway.token(GatewayRole::Viewer);
    let promoted = viewer.replacen(".viewer.", ".owner.", 1);
    assert_refused(
        get(&gateway, "/terminal/main", Some(&promoted)).await,
        401,
        "unauthorized",
        "signature",
    );
    let foreign = GatewayKey::from_hex(&"11".repeat(32))
        .unwrap()
        .mint(&nightshift_session::gateway_token::GatewayClaims {
            session_id: SESSION.into(),
            user_id: "user-1".into(),
            role: GatewayRole::Owner,
            expires_at_ms: now_ms() + 60_000,
        })
        .unwrap();
    assert_refused(
        get(&gateway, "/status", Some(&foreign)).await,
        401,
        "unauthorized",
        "signature",
    );
    assert_refused(
        get(&gateway, "/status", Some("garbage")).await,
        401,
        "unauthorized",
        "not valid",
    );
    // A refused token is refused on every route, WebSockets included.
    for path in ["/vscode/", "/desktop/vnc", "/terminal/main", "/nowhere"] {
        assert_refused(
            get(&gateway, path, Some(&expired)).await,
            401,
            "unauthorized",
            "expired",
        );
    }

    let (status, body) = get(&gateway, "/status", Some(&viewer)).await;
    assert_eq!(status, 200);
    assert_eq!(body["session_id"], SESSION);
    assert_refused(
        get(&gateway, "/nowhere", Some(&viewer)).await,
        404,
        "not_found",
        "no such route",
    );
}

#[tokio::test]
async fn a_query_token_becomes_a_cookie_that_only_this_origin_can_use() {
    let gateway = Gateway::start(Options::default()).await;
    let token = gateway.token(GatewayRole::Collaborator);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/status?token={token}&x=1", gateway.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/status?x=1",
        "the token leaves the URL"
    );
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with(&format!("ns_gateway={token};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );

    let host = gateway.base.trim_start_matches("http://").to_owned();
    let with_cookie = |origin: Option<&str>| {
        let mut request = client
            .get(format!("{}/status", gateway.base))
            .header("cookie", format!("other=1; ns_gateway={token}"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(with_cookie(None).await.unwrap().status(), 200);
    assert_eq!(
        with_cookie(Some(&format!("http://{host}")))
            .await
            .unwrap()
            .status(),
        200
    );
    let foreign = with_cookie(Some("http://another-session.ws.localhost:8787"))
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
}

#[tokio::test]
async fn viewers_get_neither_a_terminal_nor_vs_code() {
    let gateway = Gateway::start(Options::default()).await;
    let viewer = gateway.token(GatewayRole::Viewer);
    assert_refused(
        get(&gateway, "/vscode/", Some(&viewer)).await,
        403,
        "forbidden",
        "VS Code",
    );
    match gateway.connect("/terminal/main", &viewer).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "forbidden");
        }
        other => panic!(
            "a viewer's terminal must be refused, got {:?}",
            other.map(|_| "a socket")
        ),
    }
    // A plain request to a WebSocket route is refused in the envelope too.
    let collaborator = gateway.token(GatewayRole::Collaborator);
    for path in ["/terminal/main", "/desktop/vnc"] {
        assert_refused(
            get(&gateway, path, Some(&collaborator)).await,
            400,
            "invalid_request",
            "WebSocket",
        );
    }
    // The same request with a collaborator's token opens the terminal.
    let collaborator = gateway.token(GatewayRole::Collaborator);
    assert!(
        gateway
            .connect("/terminal/main", &collaborator)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_missing_program_makes_its_service_unavailable_and_the_gateway_keeps_serving() {
    let empty = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(Options {
        services: "all",
        path: Some(empty.path().display().to_string()),
        ..Options::default()
    })
    .await;
    let owner = gateway.token(GatewayRole::Owner);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = get(&gateway, "/status", Some(&owner)).await;
        assert_eq!(status, 200);
        let services = body["services"].as_array().unwrap().clone();
        assert_eq!(services.len(), 6, "{body}");
        let display = services
            .iter()
            .find(|service| service["name"] == "display")
            .unwrap();
        let vscode = services
            .iter()
            .find(|service| service["name"] == "vscode")
            .unwrap();
        let vnc = services
            .iter()
            .find(|service| service["name"] == "vnc")
            .unwrap();
        if display["state"] == "unavailable"
            && vscode["state"] == "unavailable"
            && vnc["state"] == "unavailable"
        {
            assert!(
                display["reason"]
                    .as_str()
                    .unwrap()
                    .contains("Xvfb is not installed (Debian package xvfb)")
            );
            assert!(
                vscode["reason"]
                    .as_str()
                    .unwrap()
                    .contains("code-server is not installed")
            );
            assert!(
                vnc["reason"]
                    .as_str()
                    .unwrap()
                    .contains("the display is unavailable")
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A panel whose service is down answers 503 with the reason, not a blank.
    let (status, body) = get(&gateway, "/vscode/", Some(&owner)).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "service_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not installed"),
        "{body}"
    );
}

/// A client that opens a connection and never finishes its request's headers is
/// cut off at the deadline, and the gateway keeps answering everyone else.
#[tokio::test]
async fn a_request_whose_headers_never_end_is_cut_off_at_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let gateway = Gateway::start(Options {
        header_timeout_ms: Some(1_000),
        ..Options::default()
    })
    .await;
    let address = gateway.base.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /status HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
            .await
            .unwrap();
        stalled.push(stream);
    }
    // Everyone else is still served while those hang.
    let (status, _) = get(&gateway, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    let started = std::time::Instant::now();
    for mut stream in stalled {
        let mut rest = Vec::new();
        // The server closes the connection (with or without a 408 first); without
        // a deadline this read would wait for ever (and with the default one, 10 s).
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut rest),
        )
        .await;
        assert!(
            read.is_ok(),
            "a connection with unfinished headers was still open after {:?}",
            started.elapsed()
        );
        let answer = String::from_utf8_lossy(&rest);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
}
