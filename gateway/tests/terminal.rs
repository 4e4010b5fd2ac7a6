//! Terminal tabs through the real gateway binary: a shell on a PTY in the workspace,
//! shared by every client of a tab with its scroll-back replayed, resizable, capped,
//! and closed with a notice when the shell exits.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use harness::{Gateway, Options, read_on, read_until, send_json};
use nightshift_session::gateway_token::GatewayRole;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_terminal_runs_commands_and_every_client_of_the_tab_sees_the_same_screen() {
    let gateway = Gateway::start(Options::default()).await;
    let mut first = gateway
        .connect("/terminal/main", &gateway.token(GatewayRole::Collaborator))
        .await
        .unwrap();
    send_json(
        &mut first,
        json!({"type": "input", "data": "echo hello-$((6*7))\r"}),
    )
    .await;
    read_until(&mut first, "hello-42", WAIT).await;

    // A second client, with the token in the query (as a page would open it), gets
    // the scroll-back with the command's output before anything new happens.
    let url = format!("/terminal/main?token={}", gateway.token(GatewayRole::Owner));
    let (mut second, _) = tokio_tungstenite::connect_async(gateway.ws_url(&url))
        .await
        .unwrap();
    read_until(&mut second, "hello-42", WAIT).await;

    // Input from either client reaches the one shell; both see the answer.
    send_json(
        &mut second,
        json!({"type": "resize", "cols": 123, "rows": 45}),
    )
    .await;
    second
        .send(Message::Binary(b"stty size; pwd\r".to_vec().into()))
        .await
        .unwrap();
    read_until(&mut second, "45 123", WAIT).await;
    let screen = read_until(&mut first, "45 123", WAIT).await;
    let workspace = gateway.workspace.path().canonicalize().unwrap();
    // `pwd`'s answer may have come in the same frame as `stty`'s.
    let both = read_on(&mut first, screen, &workspace.display().to_string(), WAIT).await;
    assert!(both.contains("45 123"));

    // A message the gateway cannot use is refused on the socket, which stays open.
    send_json(&mut first, json!({"type": "resize", "cols": 0, "rows": 5})).await;
    read_until(&mut first, "out of range", WAIT).await;
    send_json(&mut first, json!({"type": "launch"})).await;
    read_until(&mut first, "not a terminal message", WAIT).await;

    // The shell's exit ends the tab for everyone, with a notice.
    send_json(&mut first, json!({"type": "input", "data": "exit 7\r"})).await;
    read_until(&mut second, "the shell exited with status 7", WAIT).await;
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match second.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket closes after the shell exits");

    // The tab's name opens a new shell afterwards.
    let mut again = gateway
        .connect("/terminal/main", &gateway.token(GatewayRole::Collaborator))
        .await
        .unwrap();
    send_json(
        &mut again,
        json!({"type": "input", "data": "echo new-$((2+3))\r"}),
    )
    .await;
    let fresh = read_until(&mut again, "new-5", WAIT).await;
    assert!(
        !fresh.contains("hello-42"),
        "a new shell starts with an empty scroll-back"
    );
}

#[tokio::test]
async fn tabs_are_capped_and_named_plainly() {
    let gateway = Gateway::start(Options {
        max_tabs: 2,
        ..Options::default()
    })
    .await;
    let token = gateway.token(GatewayRole::Owner);
    let _one = gateway.connect("/terminal/one", &token).await.unwrap();
    let _two = gateway.connect("/terminal/two", &token).await.unwrap();
    // A second client of an open tab is not a new tab.
    let _two_again = gateway.connect("/terminal/two", &token).await.unwrap();
    for (path, status, code) in [
        ("/terminal/three", 429, "quota_exceeded"),
        ("/terminal/a.b", 400, "invalid_request"),
    ] {
        match gateway.connect(path, &token).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), status, "{path}");
                let body: serde_json::Value =
                    serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
                assert_eq!(body["error"]["code"], code, "{path}");
            }
            other => panic!(
                "{path} must be refused, got {:?}",
                other.map(|_| "a socket")
            ),
        }
    }
}
