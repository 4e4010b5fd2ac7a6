//! The reverse proxy to code-server (`/vscode/...`), HTTP and WebSocket.
//!
//! code-server is served under the `/vscode/` prefix, which the proxy strips:
//! code-server builds every URL of its workbench relative to the page (`./static/...`),
//! so it works under any prefix as long as the page's URL ends in `/vscode/`
//! (`/vscode` is redirected there). No `--abs-proxy-base-path` is needed; that flag
//! only concerns code-server's own port proxy.
//!
//! code-server compares a WebSocket's `Origin` with the `Host` it sees and refuses a
//! mismatch; behind the Worker and the backend's relay the `Host` it sees is not the
//! browser's. The gateway has already authenticated the request (and checked the
//! `Origin` of cookie-authenticated ones), so it drops `Origin` before proxying, which
//! code-server accepts as a non-browser client. The gateway's token (its cookie, the
//! `Authorization` header, `?token=`) is removed too: code-server and the extensions
//! it runs never see it. Viewers get 403: code-server has no read-only mode the
//! gateway could enforce, so they get no VS Code at all.

use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::auth::{Caller, cookies_without_ours, query_without_token};
use crate::error::GatewayError;
use crate::services::ServiceName;
use crate::state::AppState;

const PREFIX: &str = "/vscode";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long code-server may take to start answering a request.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers that belong to one hop and are not forwarded (RFC 9110, 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

pub async fn proxy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    mut request: Request,
) -> Response {
    if !caller.claims.role.may_change_workspace() {
        return GatewayError::forbidden("viewers do not get VS Code").into_response();
    }
    let path = request.uri().path();
    let query = request.uri().query().and_then(query_without_token);
    if path == PREFIX {
        let target = match &query {
            Some(query) => format!("{PREFIX}/?{query}"),
            None => format!("{PREFIX}/"),
        };
        return Redirect::permanent(&target).into_response();
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    let target = match &query {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return GatewayError::new(
            nightshift_protocol::error::ErrorCode::InvalidRequest,
            "the path is not a valid URI",
        )
        .into_response();
    };
    let upgrade = is_upgrade(request.headers());
    let client_upgrade = request.extensions_mut().remove::<OnUpgrade>();
    let (mut parts, body) = request.into_parts();
    parts.uri = uri;
    clean_request_headers(&mut parts.headers, upgrade);
    let outbound = hyper::Request::from_parts(parts, body);

    let port = state.config.vscode_port;
    let stream = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        _ => {
            return GatewayError::unavailable(state.status.why_not_ready(ServiceName::Vscode))
                .into_response();
        }
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(error) => {
                return GatewayError::unavailable(format!("code-server: {error}")).into_response();
            }
        };
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let mut response = match tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(outbound))
        .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            return GatewayError::unavailable(format!("code-server: {error}")).into_response();
        }
        Err(_) => {
            return GatewayError::unavailable("code-server did not answer in time").into_response();
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        match client_upgrade {
            Some(client_upgrade) => {
                tokio::spawn(async move {
                    if let (Ok(client), Ok(upstream)) =
                        (client_upgrade.await, upstream_upgrade.await)
                    {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
            None => {
                return GatewayError::new(
                    nightshift_protocol::error::ErrorCode::InvalidRequest,
                    "this connection cannot be upgraded",
                )
                .into_response();
            }
        }
    } else {
        for name in HOP_BY_HOP {
            response.headers_mut().remove(name);
        }
    }
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(body))
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get(header::CONNECTION)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// What code-server is sent: no token in any form, no `Origin` (see the module's
/// comment), no hop-by-hop headers but the upgrade handshake's own.
fn clean_request_headers(headers: &mut HeaderMap, upgrade: bool) {
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::ORIGIN);
    let cookies = cookies_without_ours(headers);
    headers.remove(header::COOKIE);
    if let Some(cookies) = cookies.and_then(|text| HeaderValue::from_str(&text).ok()) {
        headers.insert(header::COOKIE, cookies);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_server_never_sees_the_token_or_the_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer g1.x"),
        );
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://a.ws.localhost"),
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("ns_gateway=g1.x; vscode-tkn=1"),
        );
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&headers));
        clean_request_headers(&mut headers, true);
        assert_eq!(headers.get(header::AUTHORIZATION), None);
        assert_eq!(headers.get(header::ORIGIN), None);
        assert_eq!(headers.get(header::COOKIE).unwrap(), "vscode-tkn=1");
        assert_eq!(headers.get(header::CONNECTION).unwrap(), "upgrade");
        assert_eq!(headers.get(header::UPGRADE).unwrap(), "websocket");
    }
}
