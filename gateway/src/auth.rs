//! Who is calling: every request but `GET /healthz` must carry a gateway token for
//! this session, and what its role allows is checked by each route.
//!
//! A token comes as `Authorization: Bearer <token>` (the Worker's proxy), as
//! `?token=` on the first request of a page, or in the `ns_gateway` cookie the
//! gateway sets in answer to that first request, so the rest of the page's requests
//! (code-server's scripts, its WebSocket) carry it without knowing about it. A page
//! load with `?token=` is redirected to the same URL without it, so the token does
//! not stay in the address bar, the history or a `Referer`.
//!
//! The cookie is ambient: another origin on the same site could make the browser
//! send it. So a request authenticated by the cookie whose `Origin` names another
//! host is refused (this is what stops a page of another session's panels from
//! opening this session's terminal). Bearer and query tokens are explicit and need
//! no such check.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nightshift_session::gateway_token::{GatewayClaims, GatewayTokenError};

use crate::error::GatewayError;
use crate::state::AppState;

/// The cookie that carries the token after the first request.
pub const COOKIE_NAME: &str = "ns_gateway";

/// Where the token of a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Bearer,
    Query,
    Cookie,
}

/// An authenticated caller, put in the request's extensions for the routes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: GatewayClaims,
    pub source: TokenSource,
}

/// The token a request presents: the first of bearer, query and cookie that is
/// there. A bad token is refused even if another one would pass, so what decides is
/// predictable.
pub fn presented_token(headers: &HeaderMap, query: Option<&str>) -> Option<(String, TokenSource)> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or_default();
        let token = text.strip_prefix("Bearer ").unwrap_or_default().trim();
        return Some((token.to_owned(), TokenSource::Bearer));
    }
    if let Some(token) = query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("token="))
    {
        return Some((token.to_owned(), TokenSource::Query));
    }
    cookie_token(headers).map(|token| (token, TokenSource::Cookie))
}

/// The gateway's cookie among the request's cookies.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME).then(|| value.to_owned())
        })
}

/// The `Cookie` header without the gateway's own cookie, for what is proxied on:
/// code-server never sees the token. `None` when nothing else is left.
pub fn cookies_without_ours(headers: &HeaderMap) -> Option<String> {
    let rest: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !pair.starts_with(&format!("{COOKIE_NAME}=")))
        .collect();
    (!rest.is_empty()).then(|| rest.join("; "))
}

/// The query string without `token=`, or `None` if nothing else is left.
pub fn query_without_token(query: &str) -> Option<String> {
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    (!rest.is_empty()).then(|| rest.join("&"))
}

/// Whether a cookie-authenticated request comes from the page the cookie was set
/// for: no `Origin` (a same-origin navigation), or one whose host and port are the
/// request's own (`X-Forwarded-Host` when a proxy set it, else `Host`).
pub fn origin_matches(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let origin = origin.to_str().unwrap_or_default();
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// The cookie that carries `token` until it expires. `Secure` when the page was
/// served over HTTPS (as the Worker says with `X-Forwarded-Proto`).
pub fn cookie_for(token: &str, claims: &GatewayClaims, now_ms: u64, secure: bool) -> String {
    let max_age = claims.expires_at_ms.saturating_sub(now_ms) / 1000;
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

fn refusal(error: GatewayTokenError) -> GatewayError {
    let message = match error {
        GatewayTokenError::Expired => "the gateway token has expired",
        GatewayTokenError::WrongSession => "the gateway token is for another session",
        GatewayTokenError::BadSignature => "the gateway token's signature does not match",
        _ => "the gateway token is not valid",
    };
    GatewayError::unauthorized(message)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}

/// The middleware in front of every route but `/healthz`.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = now_ms();
    let headers = request.headers();
    let Some((token, source)) = presented_token(headers, request.uri().query()) else {
        return GatewayError::unauthorized("a gateway token is required").into_response();
    };
    let claims = match state.key.verify(&token, &state.session_id, now) {
        Ok(claims) => claims,
        Err(error) => return refusal(error).into_response(),
    };
    if source == TokenSource::Cookie && !origin_matches(headers) {
        return GatewayError::forbidden("the request's Origin is not this gateway's")
            .into_response();
    }
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes() == b"https");
    let is_upgrade = headers.contains_key(header::UPGRADE);
    let page_load = matches!(*request.method(), Method::GET | Method::HEAD) && !is_upgrade;
    if source == TokenSource::Query && page_load {
        let path = request.uri().path();
        let location = match request.uri().query().and_then(query_without_token) {
            Some(rest) => format!("{path}?{rest}"),
            None => path.to_owned(),
        };
        let mut response = StatusCode::SEE_OTHER.into_response();
        let cookie = cookie_for(&token, &claims, now, secure);
        if let (Ok(location), Ok(cookie)) = (
            HeaderValue::from_str(&location),
            HeaderValue::from_str(&cookie),
        ) {
            response.headers_mut().insert(header::LOCATION, location);
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return response;
        }
        return GatewayError::unauthorized("the gateway token is not valid").into_response();
    }
    request.extensions_mut().insert(Caller { claims, source });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_token_is_taken_from_bearer_then_query_then_cookie() {
        let all = headers(&[
            ("authorization", "Bearer b"),
            ("cookie", "x=1; ns_gateway=c"),
        ]);
        assert_eq!(
            presented_token(&all, Some("token=q")),
            Some(("b".into(), TokenSource::Bearer))
        );
        let cookie = headers(&[("cookie", "x=1; ns_gateway=c")]);
        assert_eq!(
            presented_token(&cookie, Some("a=1&token=q")),
            Some(("q".into(), TokenSource::Query))
        );
        assert_eq!(
            presented_token(&cookie, Some("a=1")),
            Some(("c".into(), TokenSource::Cookie))
        );
        assert_eq!(presented_token(&HeaderMap::new(), Some("tokens=1")), None);
    }

    #[test]
    fn what_is_proxied_on_loses_the_token() {
        let cookies = headers(&[("cookie", "a=1; ns_gateway=secret"), ("cookie", "b=2")]);
        assert_eq!(cookies_without_ours(&cookies).as_deref(), Some("a=1; b=2"));
        assert_eq!(
            cookies_without_ours(&headers(&[("cookie", "ns_gateway=s")])),
            None
        );
        assert_eq!(
            query_without_token("token=t&folder=/w").as_deref(),
            Some("folder=/w")
        );
        assert_eq!(query_without_token("token=t"), None);
    }

    #[test]
    fn a_cookie_request_from_another_origin_is_spotted() {
        assert!(origin_matches(&headers(&[("host", "a.ws.localhost:8787")])));
        assert!(origin_matches(&headers(&[
            ("host", "a.ws.localhost:8787"),
            ("origin", "http://a.ws.localhost:8787")
        ])));
        assert!(!origin_matches(&headers(&[
            ("host", "a.ws.localhost:8787"),
            ("origin", "http://b.ws.localhost:8787")
        ])));
        assert!(origin_matches(&headers(&[
            ("host", "127.0.0.1:9000"),
            ("x-forwarded-host", "a.ws.localhost:8787"),
            ("origin", "http://a.ws.localhost:8787")
        ])));
        assert!(!origin_matches(&headers(&[
            ("host", "h"),
            ("origin", "null")
        ])));
        assert!(!origin_matches(&headers(&[("origin", "http://h")])));
    }
}
