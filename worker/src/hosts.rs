//! Plain rules about hosts: which request hosts count as a local stack, and where
//! runners dial.
//!
//! - A loopback host is `localhost` (or a name under `.localhost`), an address in
//!   127.0.0.0/8, or `::1`, written as a request URL's host (IPv6 in brackets).
//! - Runners dial `WORKER_URL`; without it, the request's own origin only on a
//!   loopback host, since elsewhere the `Host` header is the caller's to choose.
//!
//! Must not depend on `worker`.

use std::net::IpAddr;

/// A URL host without IPv6 brackets, lowercased, without a trailing dot.
fn normalize(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// True for `localhost`, `*.localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = normalize(host);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => unmapped(ip).is_loopback(),
        Err(_) => false,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The base URL runners dial: `configured` (`WORKER_URL`) when set; else the
/// request's `origin`, but only when its `host` is loopback.
pub fn runner_dial_url(
    configured: Option<&str>,
    request_origin: &str,
    request_host: &str,
) -> Result<String, String> {
    if let Some(url) = configured.map(str::trim).filter(|url| !url.is_empty()) {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    if is_loopback_host(request_host) {
        return Ok(request_origin.trim_end_matches('/').to_owned());
    }
    Err(format!(
        "WORKER_URL is not set, and runners are only dialled back at the request's own \
         origin on a loopback host (this request came to `{request_host}`); set WORKER_URL"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognized() {
        for host in [
            "127.0.0.1",
            "127.8.9.1",
            "localhost",
            "LOCALHOST.",
            "[::1]",
            "::1",
            "a.localhost",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "[::2]",
            "localhost.example.com",
            "",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn runners_dial_the_configured_url_or_a_loopback_origin() {
        assert_eq!(
            runner_dial_url(
                Some("https://ns.example.com/"),
                "https://evil.example",
                "evil.example"
            ),
            Ok("https://ns.example.com".to_owned())
        );
        assert_eq!(
            runner_dial_url(None, "http://127.0.0.1:8787", "127.0.0.1"),
            Ok("http://127.0.0.1:8787".to_owned())
        );
        assert!(runner_dial_url(None, "https://evil.example", "evil.example").is_err());
        assert!(runner_dial_url(Some("  "), "https://evil.example", "evil.example").is_err());
    }
}
