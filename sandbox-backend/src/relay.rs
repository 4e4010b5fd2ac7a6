//! The gateway relay: one HTTP request (or WebSocket upgrade) from a client of the
//! backend, sent over a byte stream the provider opened to the sandbox's gateway
//! port ([`crate::providers::Provider::connect_gateway`]), and the gateway's answer
//! sent back; after a `101 Switching Protocols` the two connections are spliced.
//!
//! The stream is opened to the gateway's one port before anything of the request is
//! read, so nothing in the request picks where it goes: the path (with `..`,
//! percent-escapes or an absolute-form target) only becomes the request line the
//! gateway sees, and `Host` is passed on as a header. The backend's own bearer token
//! never reaches the sandbox: `Authorization` is dropped, and a caller that wants
//! to send the gateway a bearer token sends it as `X-Gateway-Authorization`.
//!
//! Plain rules (the target, which headers pass) are functions tested on their own;
//! [`forward`] does the HTTP/1.1 exchange with hyper.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::uri::PathAndQuery;
use axum::http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use nightshift_protocol::ErrorCode;
use nightshift_protocol::sandbox::GATEWAY_PORT;

use crate::error::ApiError;
use crate::providers::GatewayStream;

/// The largest request body relayed (the gateway's uploads go through here whole).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How long the gateway gets to take the HTTP/1.1 connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the gateway gets to answer with its status line and headers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// A caller's bearer token for the gateway itself, sent on as `Authorization`.
pub const GATEWAY_AUTHORIZATION: &str = "x-gateway-authorization";

/// Headers that belong to one connection, never forwarded as they are.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The request target the gateway sees: what follows `prefix` in the raw path
/// (`/` when nothing does), with the query. `None` when the path does not start
/// with `prefix` followed by `/` or its end.
pub fn target(uri: &Uri, prefix: &str) -> Option<PathAndQuery> {
    let rest = uri.path().strip_prefix(prefix)?;
    let path = match rest {
        "" => "/",
        rest if rest.starts_with('/') => rest,
        _ => return None,
    };
    let text = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    text.parse().ok()
}

/// Whether the request asks to switch protocols (a WebSocket upgrade).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// The headers of one hop without those that belong to the connection (the
/// hop-by-hop ones and those `Connection` names).
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect();
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower) || named.iter().any(|named| named == lower) {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

/// The headers sent to the gateway for a request with `headers`.
pub fn request_headers(headers: &HeaderMap, upgrade: bool) -> HeaderMap {
    let mut kept = end_to_end(headers);
    // The backend's token stays here; the gateway's own comes in its own header.
    kept.remove(header::AUTHORIZATION);
    kept.remove(header::CONTENT_LENGTH);
    // The body was read whole before the gateway was asked anything.
    kept.remove(header::EXPECT);
    if let Some(value) = kept.remove(GATEWAY_AUTHORIZATION) {
        kept.insert(header::AUTHORIZATION, value);
    }
    if !kept.contains_key(header::HOST) {
        kept.insert(
            header::HOST,
            HeaderValue::from_str(&format!("127.0.0.1:{GATEWAY_PORT}"))
                .expect("a loopback address is a valid header value"),
        );
    }
    if upgrade {
        kept.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(protocol) = headers.get(header::UPGRADE) {
            kept.insert(header::UPGRADE, protocol.clone());
        }
    }
    kept
}

/// The headers answered to the client for the gateway's `headers`.
pub fn response_headers(headers: &HeaderMap, switching: bool) -> HeaderMap {
    let mut kept = end_to_end(headers);
    if switching {
        kept.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(protocol) = headers.get(header::UPGRADE) {
            kept.insert(header::UPGRADE, protocol.clone());
        }
    }
    kept
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::SandboxUnavailable, message)
}

/// Reads a request body up to [`MAX_BODY_BYTES`].
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the relay takes request bodies of at most {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(current) = source {
                if current.is::<http_body_util::LengthLimitError>() {
                    return too_large();
                }
                source = current.source();
            }
            ApiError::invalid_request(format!("cannot read the request body: {error}"))
        })
}

/// Sends `request` to the gateway over `stream` as `target` and answers what the
/// gateway answers. An upgrade the gateway accepts is spliced in the background.
pub async fn forward(
    stream: Box<dyn GatewayStream>,
    mut request: Request<Body>,
    target: PathAndQuery,
) -> Result<Response<Body>, ApiError> {
    let upgrade = wants_upgrade(request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let body = if upgrade {
        Bytes::new()
    } else {
        read_body(&parts.headers, body).await?
    };
    let mut upstream = Request::builder()
        .method(parts.method)
        .uri(target)
        .version(Version::HTTP_11)
        .body(Full::new(body.clone()))
        .map_err(|error| {
            ApiError::invalid_request(format!("cannot relay this request: {error}"))
        })?;
    *upstream.headers_mut() = request_headers(&parts.headers, upgrade);
    if !body.is_empty() || !matches!(upstream.method().as_str(), "GET" | "HEAD" | "OPTIONS") {
        upstream
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }

    let (mut sender, connection) = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| unavailable("the sandbox's gateway did not take the connection in time"))?
    .map_err(|error| {
        unavailable(format!(
            "the sandbox's gateway refused the connection: {error}"
        ))
    })?;
    tokio::spawn(async move {
        // Ends with the exchange (or, after an upgrade, hands the stream over).
        let _ = connection.with_upgrades().await;
    });
    let mut response = tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(upstream))
        .await
        .map_err(|_| {
            unavailable(format!(
                "the sandbox's gateway did not answer within {RESPONSE_TIMEOUT:?}"
            ))
        })?
        .map_err(|error| unavailable(format!("the sandbox's gateway did not answer: {error}")))?;

    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let headers = response_headers(response.headers(), switching);
    let status = response.status();
    if switching {
        let Some(client_upgrade) = client_upgrade else {
            return Err(unavailable(
                "the sandbox's gateway switched protocols on a request that did not ask to",
            ));
        };
        let gateway_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(client), Ok(gateway)) = tokio::join!(client_upgrade, gateway_upgrade) else {
                return;
            };
            let mut client = TokioIo::new(client);
            let mut gateway = TokioIo::new(gateway);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut gateway).await;
        });
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        return Ok(answer);
    }
    let mut answer = Response::new(Body::new(response.into_body()));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use axum::http::header::HeaderName;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (key, value) in pairs {
            map.append(
                HeaderName::from_static(key),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn the_target_is_what_follows_the_relay_prefix() {
        let prefix = "/v1/sandboxes/sbx_1/gateway";
        let target = |uri: &str| target(&uri.parse().unwrap(), prefix).map(|t| t.to_string());
        assert_eq!(target("/v1/sandboxes/sbx_1/gateway").as_deref(), Some("/"));
        assert_eq!(
            target("/v1/sandboxes/sbx_1/gateway/vscode/a?x=1&token=t").as_deref(),
            Some("/vscode/a?x=1&token=t")
        );
        // Escapes and dot segments are the gateway's to read, as sent.
        assert_eq!(
            target("/v1/sandboxes/sbx_1/gateway/%2e%2e/../x").as_deref(),
            Some("/%2e%2e/../x")
        );
        assert_eq!(
            target("http://evil.example:1/v1/sandboxes/sbx_1/gateway/a").as_deref(),
            Some("/a")
        );
        assert_eq!(target("/v1/sandboxes/sbx_1/gatewayx"), None);
        assert_eq!(target("/v1/sandboxes/sbx_2/gateway/a"), None);
    }

    #[test]
    fn the_backends_token_never_passes_and_the_gateways_does() {
        let sent = request_headers(
            &headers(&[
                ("authorization", "Bearer backend-secret"),
                ("host", "anything.example"),
                ("cookie", "ns_gateway=1"),
                ("connection", "keep-alive, x-private"),
                ("x-private", "1"),
                ("transfer-encoding", "chunked"),
                ("content-length", "5"),
            ]),
            false,
        );
        assert!(sent.get("authorization").is_none());
        assert_eq!(sent["host"], "anything.example");
        assert_eq!(sent["cookie"], "ns_gateway=1");
        for gone in [
            "connection",
            "x-private",
            "transfer-encoding",
            "content-length",
        ] {
            assert!(sent.get(gone).is_none(), "{gone} passed");
        }
        let sent = request_headers(
            &headers(&[
                ("authorization", "Bearer backend-secret"),
                ("x-gateway-authorization", "Bearer g1.token"),
            ]),
            false,
        );
        assert_eq!(sent["authorization"], "Bearer g1.token");
        assert!(sent.get(GATEWAY_AUTHORIZATION).is_none());
        assert_eq!(sent["host"], "127.0.0.1:9000");
    }

    #[test]
    fn upgrades_keep_their_connection_headers() {
        let asked = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(wants_upgrade(&asked));
        let sent = request_headers(&asked, true);
        assert_eq!(sent["connection"], "upgrade");
        assert_eq!(sent["upgrade"], "websocket");
        assert_eq!(sent["sec-websocket-key"], "k");
        assert!(!wants_upgrade(&headers(&[("upgrade", "websocket")])));
        let answered = response_headers(
            &headers(&[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-accept", "a"),
            ]),
            true,
        );
        assert_eq!(answered["upgrade"], "websocket");
        assert_eq!(answered["sec-websocket-accept"], "a");
        let plain = response_headers(&headers(&[("keep-alive", "5"), ("etag", "x")]), false);
        assert!(plain.get("keep-alive").is_none());
        assert_eq!(plain["etag"], "x");
    }
}
