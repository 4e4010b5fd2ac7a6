//! Where the runner dials: the Worker's base URL turned into the WebSocket URL of its
//! session's runner route. Plain string handling, unit tested.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("worker_url {0:?} must start with http://, https://, ws:// or wss://")]
pub struct BadWorkerUrl(pub String);

/// `http://host:8787` + `s1` -> `ws://host:8787/api/sessions/s1/runner`
/// (`https` becomes `wss`). A path prefix on the base URL is kept, a trailing slash
/// is not doubled, and the session id is percent-encoded.
pub fn runner_url(worker_url: &str, session_id: &str) -> Result<String, BadWorkerUrl> {
    let trimmed = worker_url.trim().trim_end_matches('/');
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| BadWorkerUrl(worker_url.to_string()))?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => return Err(BadWorkerUrl(worker_url.to_string())),
    };
    if rest.is_empty() {
        return Err(BadWorkerUrl(worker_url.to_string()));
    }
    Ok(format!(
        "{ws_scheme}://{rest}/api/sessions/{}/runner",
        percent_encode(session_id)
    ))
}

/// `POST` URL of the session's artifact uploads: `http(s)://<host>/api/sessions/<id>/artifacts`.
pub fn artifacts_url(worker_url: &str, session_id: &str) -> Result<String, BadWorkerUrl> {
    Ok(format!(
        "{}/artifacts",
        session_url(worker_url, session_id)?
    ))
}

/// The session's HTTP base for the runner-token routes:
/// `http(s)://<host>/api/sessions/<id>`.
pub fn session_url(worker_url: &str, session_id: &str) -> Result<String, BadWorkerUrl> {
    let link = runner_url(worker_url, session_id)?;
    let http = match link.split_once("://") {
        Some(("wss", rest)) => format!("https://{rest}"),
        Some((_, rest)) => format!("http://{rest}"),
        None => return Err(BadWorkerUrl(worker_url.to_string())),
    };
    Ok(http.trim_end_matches("/runner").to_string())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_becomes_ws_and_https_becomes_wss() {
        assert_eq!(
            runner_url("http://127.0.0.1:8787", "abc").unwrap(),
            "ws://127.0.0.1:8787/api/sessions/abc/runner"
        );
        assert_eq!(
            runner_url("https://nightshift.example.com/", "abc").unwrap(),
            "wss://nightshift.example.com/api/sessions/abc/runner"
        );
        assert_eq!(
            runner_url("WSS://h", "a").unwrap(),
            "wss://h/api/sessions/a/runner"
        );
    }

    #[test]
    fn keeps_a_path_prefix_and_encodes_the_session_id() {
        assert_eq!(
            runner_url("https://h/prefix/", "a b/c").unwrap(),
            "wss://h/prefix/api/sessions/a%20b%2Fc/runner"
        );
    }

    #[test]
    fn refuses_other_schemes() {
        assert!(runner_url("ftp://h", "a").is_err());
        assert_eq!(
            artifacts_url("https://h/prefix/", "s1").unwrap(),
            "https://h/prefix/api/sessions/s1/artifacts"
        );
        assert_eq!(
            artifacts_url("ws://127.0.0.1:8787", "s1").unwrap(),
            "http://127.0.0.1:8787/api/sessions/s1/artifacts"
        );
        assert!(runner_url("127.0.0.1:8787", "a").is_err());
        assert!(runner_url("http://", "a").is_err());
    }
}
