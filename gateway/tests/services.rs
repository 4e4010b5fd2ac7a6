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

/// An RFB client over the gateway's WebSocket, far enough to send input: the
/// handshake (version 3.8, security type None as x11vnc offers it with `-nopw`,
/// shared) up to the server's init.
struct Rfb {
    socket: Socket,
    pending: Vec<u8>,
}

impl Rfb {
    async fn open(socket: Socket) -> Rfb {
        let mut rfb = Rfb {
            socket,
            pending: Vec::new(),
        };
        assert_eq!(rfb.take(12).await, b"RFB 003.008\n");
        rfb.send(b"RFB 003.008\n").await;
        let count = rfb.take(1).await[0] as usize;
        let types = rfb.take(count).await;
        assert!(
            types.contains(&1),
            "security type None is offered: {types:?}"
        );
        rfb.send(&[1]).await;
        assert_eq!(
            rfb.take(4).await,
            [0, 0, 0, 0],
            "security handshake accepted"
        );
        rfb.send(&[1]).await; // ClientInit: shared.
        let init = rfb.take(24).await;
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
        rfb.take(name_len).await;
        rfb
    }

    async fn send(&mut self, bytes: &[u8]) {
        use futures::SinkExt;
        self.socket
            .send(Message::binary(bytes.to_vec()))
            .await
            .unwrap();
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.pending.len() < n {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("RFB bytes within 10 s");
            match frame {
                Some(Ok(Message::Binary(bytes))) => self.pending.extend_from_slice(&bytes),
                Some(Ok(_)) => {}
                other => panic!("the desktop socket ended mid-handshake: {other:?}"),
            }
        }
        self.pending.drain(..n).collect()
    }

    /// Moves the pointer across the screen with the first button held, then lets go.
    async fn drag(&mut self) {
        for (mask, x, y) in [
            (0u8, 40u16, 40u16),
            (1, 120, 90),
            (1, 200, 150),
            (0, 260, 200),
        ] {
            let [xh, xl] = x.to_be_bytes();
            let [yh, yl] = y.to_be_bytes();
            self.send(&[5, mask, xh, xl, yh, yl]).await;
        }
    }
}

/// What `xev -root` printed of pointer events on the display, after `act` ran.
async fn pointer_events_on_root(
    gateway: &Gateway,
    act: impl std::future::Future<Output = ()>,
) -> String {
    let log = gateway
        .workspace
        .path()
        .join(format!("xev-{}.log", harness::now_ms()));
    let mut xev = std::process::Command::new("xev")
        .args([
            "-display",
            &format!(":{}", gateway.display),
            "-root",
            "-event",
            "mouse",
        ])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("xev runs (the Debian package x11-utils)");
    // xev has selected its events once it printed nothing yet but is running.
    tokio::time::sleep(Duration::from_millis(500)).await;
    act.await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let _ = xev.kill();
    let _ = xev.wait();
    std::fs::read_to_string(&log).unwrap_or_default()
}

/// A viewer's mouse never reaches the desktop: the same drag that moves the pointer
/// for a collaborator does nothing when a viewer sends it.
#[tokio::test]
async fn a_viewers_input_never_reaches_the_desktop() {
    let gateway = Gateway::start(Options {
        services: "display,vnc,vnc_view_only",
        ..Options::default()
    })
    .await;
    let within = Duration::from_secs(30);
    gateway
        .wait_ready("display", within, "the Debian package xvfb")
        .await;
    for service in ["vnc", "vnc_view_only"] {
        gateway
            .wait_ready(service, within, "the Debian package x11vnc")
            .await;
    }

    let viewer = gateway
        .connect("/desktop/vnc", &gateway.token(GatewayRole::Viewer))
        .await
        .unwrap();
    let mut viewer = Rfb::open(viewer).await;
    let seen = pointer_events_on_root(&gateway, viewer.drag()).await;
    assert!(
        !seen.contains("MotionNotify") && !seen.contains("ButtonPress"),
        "a viewer's input reached the display:\n{seen}"
    );

    // The control: the same drag from a collaborator does reach it, so the check
    // above can see input when there is some.
    let collaborator = gateway
        .connect("/desktop/vnc", &gateway.token(GatewayRole::Collaborator))
        .await
        .unwrap();
    let mut collaborator = Rfb::open(collaborator).await;
    let seen = pointer_events_on_root(&gateway, collaborator.drag()).await;
    assert!(
        seen.contains("MotionNotify"),
        "a collaborator's drag did not reach the display:\n{seen}"
    );
}
