//! Reaching a session's panel host from the tests and the benchmark, as a browser
//! would: panel hosts are `<capability>.ws.localhost:<port>`, which Chromium
//! resolves to loopback but the C library here does not, so these clients connect
//! to 127.0.0.1 and name the panel host in the request.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};

/// `http://<label>.ws.localhost:<port>[/path]` -> (host with port, the Worker's
/// address).
pub fn panel_host(url: &str) -> (String, SocketAddr) {
    let host = url
        .split("://")
        .nth(1)
        .expect("a URL has a scheme")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
    (host, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The status and body of `GET <origin><path>`, reaching the panel host on loopback.
pub async fn panel_get(origin: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let (host, address) = panel_host(origin);
    let domain = host.split(':').next().unwrap().to_owned();
    let client = crate::client::http_builder()
        .resolve(&domain, address)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    // This client decompresses nothing: it asks for the body as it is (the Worker's
    // runtime otherwise asks the gateway for gzip on the browser's behalf).
    let response = client
        .get(format!("{origin}{path}"))
        .header(reqwest::header::ACCEPT_ENCODING, "identity")
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens a WebSocket on a panel URL (`ws://<label>.ws.localhost:<port>/...`); the
/// error is the HTTP status of a refused upgrade.
pub async fn panel_socket(url: &str) -> Result<Socket, u16> {
    let (_, address) = panel_host(url);
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|_| 0u16)?;
    match tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async(url, stream),
    )
    .await
    {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => Err(response.status().as_u16()),
        _ => Err(0),
    }
}

/// Types `command` into a terminal socket and reads until `wanted` appears.
pub async fn run_in_terminal(
    socket: &mut Socket,
    command: &str,
    wanted: &str,
) -> anyhow::Result<()> {
    let input = json!({"type": "input", "data": format!("{command}\n")}).to_string();
    socket.send(Message::Text(input.into())).await?;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(wanted) {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .with_context(|| format!("no {wanted:?} in the terminal; saw {seen:?}"))?
            .context("the terminal closed")??;
        match frame {
            Message::Binary(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Message::Text(text) => seen.push_str(&text),
            _ => {}
        }
    }
    Ok(())
}
