//! The gateway in front of the real services: the desktop's x11vnc answers the RFB
//! handshake through the VNC WebSocket (viewers on the view-only server), and
//! code-server's workbench and WebSocket come through `/vscode/`.
//!
//! These need Xvfb, x11vnc and code-server installed (`make setup`); without them
//! they fail, naming what to install.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use futures::StreamExt;
use harness::{Gateway, Options, Socket};
use nightshift_session::gateway_token::GatewayRole;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn first_binary(socket: &mut Socket) -> Vec<u8> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s");
        match frame {
            Some(Ok(Message::Binary(bytes))) => return bytes.to_vec(),
            Some(Ok(_)) => {}
            other => panic!("the socket ended before any RFB bytes: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_desktop_speaks_rfb_through_the_websocket_to_collaborators_and_viewers() {
    let gateway = Gateway::start(Options {
        services: "display,window_manager,vnc,vnc_view_only,browser",
        ..Options::default()
    })
    .await;
    let within = Duration::from_secs(30);
    gateway
        .wait_ready("display", within, "the Debian package xvfb")
        .await;
    gateway
        .wait_ready("vnc", within, "the Debian package x11vnc")
        .await;
    gateway
        .wait_ready("vnc_view_only", within, "the Debian package x11vnc")
        .await;
    gateway
        .wait_ready("window_manager", within, "the Debian package fluxbox")
        .await;
    for role in [
        GatewayRole::Collaborator,
        GatewayRole::Viewer,
        GatewayRole::Owner,
    ] {
        let mut socket = gateway
            .connect("/desktop/vnc", &gateway.token(role))
            .await
            .unwrap();
        let hello = first_binary(&mut socket).await;
        assert!(
            hello.starts_with(b"RFB 003.008"),
            "{role:?} got {:?}",
            String::from_utf8_lossy(&hello)
        );
    }
}

#[tokio::test]
async fn viewers_reach_only_the_view_only_vnc_server() {
    // Only the view-only server runs: viewers get it, collaborators (whose server is
    // the interactive one) are told it is unavailable, so the role alone decides.
    let gateway = Gateway::start(Options {
        services: "display,vnc_view_only",
        ..Options::default()
    })
    .await;
    let within = Duration::from_secs(30);
    gateway
        .wait_ready(
            "vnc_view_only",
            within,
            "the Debian packages xvfb and x11vnc",
        )
        .await;
    let mut socket = gateway
        .connect("/desktop/vnc", &gateway.token(GatewayRole::Viewer))
        .await
        .unwrap();
    assert!(first_binary(&mut socket).await.starts_with(b"RFB 003.008"));
    match gateway
        .connect("/desktop/vnc", &gateway.token(GatewayRole::Collaborator))
        .await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "service_unavailable");
        }
        other => panic!(
            "the interactive server is not running, got {:?}",
            other.map(|_| "a socket")
        ),
    }
}

#[tokio::test]
async fn vs_code_serves_its_workbench_and_websocket_through_the_prefix() {
    let gateway = Gateway::start(Options {
        services: "vscode",
        ..Options::default()
    })
    .await;
    std::fs::write(
        gateway.workspace.path().join("written-by-the-agent.txt"),
        "hi",
    )
    .unwrap();
    gateway
        .wait_ready(
            "vscode",
            Duration::from_secs(90),
            "code-server (scripts/install-code-server.sh)",
        )
        .await;
    let token = gateway.token(GatewayRole::Collaborator);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = client
        .get(format!("{}/vscode", gateway.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/vscode/");

    // Follow code-server's own redirects (to `?folder=`) by hand, staying under the prefix.
    let mut url = format!("{}/vscode/", gateway.base);
    let mut html = String::new();
    for _ in 0..5 {
        let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
        if response.status().is_redirection() {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            url = reqwest::Url::parse(&url)
                .unwrap()
                .join(&location)
                .unwrap()
                .to_string();
            assert!(
                url.contains("/vscode/"),
                "code-server redirected out of the prefix: {url}"
            );
            continue;
        }
        assert_eq!(response.status(), 200, "{url}");
        html = response.text().await.unwrap();
        break;
    }
    assert!(
        html.contains("vscode-workbench-web-configuration"),
        "not the workbench: {html}"
    );
    assert!(
        !html.contains(&token),
        "the token must not reach code-server's page"
    );

    // A static asset the page loads relative to itself comes through too.
    let asset = html
        .split('"')
        .find(|part| part.contains("/static/") && part.ends_with(".css"))
        .expect("the workbench links a stylesheet")
        .to_owned();
    let asset_url = reqwest::Url::parse(&url).unwrap().join(&asset).unwrap();
    let css = client
        .get(asset_url.clone())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200, "{asset_url}");

    // code-server's WebSocket, with a browser's Origin that is not the Host
    // code-server sees: the gateway authenticates it and code-server accepts it.
    let mut request = gateway
        .ws_url("/vscode/?reconnectionToken=a1b2c3&reconnection=false&skipWebSocketFrames=false")
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers.insert(
        "origin",
        HeaderValue::from_static("http://cap.ws.localhost:8787"),
    );
    let (_socket, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("code-server's WebSocket answered")
    .expect("code-server's WebSocket opened through the gateway");
    assert_eq!(response.status(), 101);
}
