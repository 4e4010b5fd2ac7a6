//! How the runner reaches the Worker and the LLM: directly, or through the HTTP
//! proxy its boot config names (`RunnerBootConfig::proxy`). A runner inside an
//! `isolated` docker sandbox has no network but the proxy on the container's
//! loopback, whose far end applies the sandbox's egress policy; the Worker and the
//! LLM are reached through it like anything else.
//!
//! Only the clients of the Worker and the LLM go through here. Clients of what
//! shares the runner's loopback (OpenCode's server, its MCP bridge) must never go
//! through the proxy: its far end would dial the backend host's loopback instead.
//! That is also why the proxy is not taken from `HTTP_PROXY` in the environment,
//! which every `reqwest` client would follow.
//!
//! The setting is made once at start-up ([`use_proxy`]), before any client is built.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

static PROXY: OnceLock<Option<String>> = OnceLock::new();

/// The longest proxy answer head read before giving up on it.
const MAX_ANSWER_HEAD: usize = 8 * 1024;

/// Sets the proxy for the rest of the process (the first call wins).
pub fn use_proxy(proxy: Option<String>) {
    let _ = PROXY.set(proxy.filter(|url| !url.trim().is_empty()));
}

fn proxy() -> Option<&'static str> {
    PROXY.get().and_then(|proxy| proxy.as_deref())
}

/// A `reqwest` client builder for the Worker or the LLM, through the proxy when
/// there is one.
pub fn client_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    match proxy().map(reqwest::Proxy::all) {
        Some(Ok(proxy)) => builder.proxy(proxy),
        Some(Err(error)) => {
            // A bad proxy URL is refused when the config is read ([`check`]).
            tracing::warn!(%error, "the runner's proxy is not a URL");
            builder
        }
        None => builder,
    }
}

/// Refuses a proxy that is not `http://host:port` (the only kind the sandbox offers).
pub fn check(proxy: Option<&str>) -> Result<(), String> {
    match proxy {
        None => Ok(()),
        Some(url) => proxy_address(url)
            .map(|_| ())
            .ok_or_else(|| format!("the proxy {url:?} is not http://host:port")),
    }
}

/// `host:port` of an `http://host:port[/]` proxy URL.
fn proxy_address(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':')?;
    (!host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok())
        .then(|| rest.to_string())
}

/// The host and port a WebSocket URL connects to.
fn target_of(request: &Request) -> Result<String, String> {
    let uri = request.uri();
    let host = uri.host().ok_or("the Worker URL has no host")?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    Ok(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the WebSocket of `request`, through a `CONNECT` tunnel of the proxy when
/// there is one (TLS, for `wss`, runs inside the tunnel, end to end).
pub async fn connect_websocket(
    request: Request,
) -> Result<(Socket, Response), tokio_tungstenite::tungstenite::Error> {
    let Some(address) = proxy().and_then(proxy_address) else {
        return tokio_tungstenite::connect_async(request).await;
    };
    let target = target_of(&request).map_err(|reason| {
        tokio_tungstenite::tungstenite::Error::Io(std::io::Error::other(reason))
    })?;
    let stream = tunnel(&address, &target)
        .await
        .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
    tokio_tungstenite::client_async_tls(request, stream).await
}

/// A TCP stream to `target` through the proxy at `address` (`CONNECT`).
async fn tunnel(address: &str, target: &str) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await?;
    // Read the answer's head byte by byte: what follows it is the tunnel's.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_ANSWER_HEAD {
            return Err(std::io::Error::other("the proxy's answer is too long"));
        }
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte))
            .await
            .map_err(|_| std::io::Error::other("the proxy did not answer in time"))??;
        if read == 0 {
            return Err(std::io::Error::other("the proxy closed the connection"));
        }
        head.push(byte[0]);
    }
    let status_line = String::from_utf8_lossy(&head);
    let status_line = status_line.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(std::io::Error::other(format!(
            "the proxy refused {target}: {status_line}"
        )));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    #[test]
    fn only_plain_http_proxies_with_a_port_are_taken() {
        assert_eq!(
            proxy_address("http://127.0.0.1:3128"),
            Some("127.0.0.1:3128".into())
        );
        assert_eq!(
            proxy_address("http://127.0.0.1:3128/"),
            Some("127.0.0.1:3128".into())
        );
        assert!(proxy_address("https://127.0.0.1:3128").is_none());
        assert!(proxy_address("http://127.0.0.1").is_none());
        assert!(proxy_address("http://:3128").is_none());
        assert!(check(Some("socks5://x:1")).is_err());
        assert!(check(None).is_ok());
    }

    #[test]
    fn the_tunnel_names_the_workers_host_and_port() {
        let request = "ws://127.0.0.1:8787/api/sessions/s/runner"
            .into_client_request()
            .unwrap();
        assert_eq!(target_of(&request).unwrap(), "127.0.0.1:8787");
        let request = "wss://nightshift.example.com/api/sessions/s/runner"
            .into_client_request()
            .unwrap();
        assert_eq!(target_of(&request).unwrap(), "nightshift.example.com:443");
    }

    /// A proxy that answers `answer` to the `CONNECT` and then echoes.
    async fn proxy_answering(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            socket.write_all(answer.as_bytes()).await.unwrap();
            let mut rest = [0u8; 5];
            if socket.read_exact(&mut rest).await.is_ok() {
                socket.write_all(&rest).await.unwrap();
            }
            String::from_utf8_lossy(&head).into_owned()
        });
        (address, task)
    }

    #[tokio::test]
    async fn a_tunnel_opens_only_on_a_200() {
        let (address, proxy) = proxy_answering("HTTP/1.1 200 Connection established\r\n\r\n").await;
        let mut stream = tunnel(&address, "127.0.0.1:8787").await.unwrap();
        stream.write_all(b"hello").await.unwrap();
        let mut echoed = [0u8; 5];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"hello");
        assert!(
            proxy
                .await
                .unwrap()
                .starts_with("CONNECT 127.0.0.1:8787 HTTP/1.1\r\n")
        );

        let (address, _proxy) =
            proxy_answering("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
        let error = tunnel(&address, "10.0.0.1:80").await.unwrap_err();
        assert!(error.to_string().contains("403"), "{error}");
    }
}
