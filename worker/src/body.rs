//! Reading request bodies: bounded in size, parsed strictly.
//!
//! A body over [`MAX_REQUEST_BYTES`] is refused as soon as that is known (from
//! `Content-Length`, or while streaming it in), so an oversized request never sits in
//! memory whole. JSON that is malformed or does not fit the route's type (wrong field
//! types, unknown fields) is `invalid_json`.

use futures::StreamExt;
use nightshift_protocol::ErrorCode;
use nightshift_protocol::limits::MAX_REQUEST_BYTES;
use serde::de::DeserializeOwned;
use worker::Request;

use crate::api_error::{ApiError, ApiResult};

/// The request body, at most [`MAX_REQUEST_BYTES`] long.
pub async fn read_limited(req: &mut Request) -> ApiResult<Vec<u8>> {
    read_at_most(req, MAX_REQUEST_BYTES).await
}

/// The request body, at most `max` bytes long (routes that take more than JSON,
/// such as a runner's image upload).
pub async fn read_at_most(req: &mut Request, max: usize) -> ApiResult<Vec<u8>> {
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large(max));
    }
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream()?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > max {
            // Read (and drop) the rest before answering, up to a bound: answering a
            // request whose body is still arriving makes some HTTP clients and
            // proxies (wrangler's local one among them) fail the connection's next
            // request.
            let mut seen = body.len() + chunk.len();
            drop(body);
            while seen <= MAX_DRAINED_BYTES {
                match stream.next().await {
                    Some(Ok(chunk)) => seen += chunk.len(),
                    _ => break,
                }
            }
            return Err(too_large(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How much of an oversized body without `Content-Length` is read and dropped before
/// the refusal is sent.
const MAX_DRAINED_BYTES: usize = 16 * 1024 * 1024;

/// The body parsed as `T`; an empty body is `invalid_json`.
pub async fn read_json<T: DeserializeOwned>(req: &mut Request) -> ApiResult<T> {
    let body = read_limited(req).await?;
    parse_json(&body)
}

/// The body parsed as `T`, or `T::default()` when the body is empty.
pub async fn read_json_or_default<T: DeserializeOwned + Default>(
    req: &mut Request,
) -> ApiResult<T> {
    let body = read_limited(req).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(&body)
}

/// Parses `body` as `T`, answering `invalid_json` with serde's explanation.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("invalid JSON body: {error}"),
        )
    })
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::api::{CreateSessionRequest, PostMessageRequest};

    use super::*;

    #[test]
    fn wrong_shapes_are_invalid_json() {
        for body in [
            &b"{not json"[..],
            br#"{"content": 42}"#,
            br#"{"text": "x"}"#,
            b"",
        ] {
            let error = parse_json::<PostMessageRequest>(body).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidJson);
        }
        let error = parse_json::<CreateSessionRequest>(br#"{"title": 5}"#).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn good_bodies_parse() {
        let request: PostMessageRequest = parse_json(br#"{"content": "hi"}"#).unwrap();
        assert_eq!(request.content, "hi");
    }
}
