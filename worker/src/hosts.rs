//! Plain rules about hosts: which request hosts count as a local stack, where
//! runners dial, and which LLM base URLs may be stored.
//!
//! - A loopback host is `localhost` (or a name under `.localhost`), an address in
//!   127.0.0.0/8, or `::1`, written as a request URL's host (IPv6 in brackets).
//! - Runners dial `WORKER_URL`; without it, the request's own origin only on a
//!   loopback host, since elsewhere the `Host` header is the caller's to choose.
//! - An LLM base URL is refused when its host is loopback, private, link-local,
//!   unspecified, carrier-grade NAT, unique-local, a local-only name (`localhost`,
//!   `*.local`, `*.internal`) or one of the platform's own hosts, unless an operator
//!   allowlisted it (`LLM_BASE_URL_ALLOW`: comma-separated host names and CIDRs).
//!   Only what the URL says is checked: a public name that resolves to a private
//!   address is not caught here (the Worker has no resolver of its own).
//!
//! Must not depend on `worker`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

fn v4_is_internal(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        // Carrier-grade NAT, 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn v6_is_internal(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Site-local (deprecated), fec0::/10.
        || (first & 0xffc0) == 0xfec0
}

/// True when `host` (a URL host) is an internal address or a local-only name.
pub fn is_internal_host(host: &str) -> bool {
    let host = normalize(host);
    if host.is_empty()
        || host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".internal")
        || host.ends_with(".home.arpa")
        || !host.contains('.') && host.parse::<IpAddr>().is_err()
    {
        // A single-label name resolves through local search domains only.
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => match unmapped(ip) {
            IpAddr::V4(v4) => v4_is_internal(v4),
            IpAddr::V6(v6) => v6_is_internal(v6),
        },
        Err(_) => false,
    }
}

/// One entry of `LLM_BASE_URL_ALLOW`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    Host(String),
    Cidr(IpAddr, u8),
}

/// Parses a comma-separated allowlist of host names and CIDRs; entries that are
/// neither are skipped.
pub fn parse_allowlist(list: &str) -> Vec<AllowEntry> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            if let Some((ip, bits)) = entry.split_once('/') {
                let ip: IpAddr = normalize(ip).parse().ok()?;
                let bits: u8 = bits.parse().ok()?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                (bits <= max).then_some(AllowEntry::Cidr(ip, bits))
            } else {
                Some(AllowEntry::Host(normalize(entry)))
            }
        })
        .collect()
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (unmapped(ip), net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// True when an operator allowlisted `host`.
pub fn is_allowlisted(host: &str, allow: &[AllowEntry]) -> bool {
    let host = normalize(host);
    let ip = host.parse::<IpAddr>().ok();
    allow.iter().any(|entry| match entry {
        AllowEntry::Host(name) => *name == host,
        AllowEntry::Cidr(net, bits) => ip.is_some_and(|ip| in_cidr(ip, *net, *bits)),
    })
}

/// Whether an LLM base URL with `host` may be stored: not internal, not one of
/// `own_hosts` (the platform's), unless allowlisted.
pub fn llm_host_allowed(host: &str, own_hosts: &[String], allow: &[AllowEntry]) -> bool {
    if is_allowlisted(host, allow) {
        return true;
    }
    let normalized = normalize(host);
    let own = own_hosts
        .iter()
        .any(|own| !own.is_empty() && normalize(own) == normalized);
    !own && !is_internal_host(host)
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

    #[test]
    fn internal_hosts_are_recognized() {
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "[::1]",
            "[fd00::1]",
            "[fe80::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:10.0.0.1]",
            "localhost",
            "metadata.google.internal",
            "printer.local",
            "intranet",
        ] {
            assert!(is_internal_host(host), "{host}");
        }
        for host in [
            "api.openai.com",
            "8.8.8.8",
            "[2606:4700::1111]",
            "api.anthropic.com",
        ] {
            assert!(!is_internal_host(host), "{host}");
        }
    }

    #[test]
    fn the_allowlist_takes_hosts_and_cidrs() {
        let allow = parse_allowlist(" llm.lan , 127.0.0.1/32,10.0.0.0/8, fd00::/8, junk/99,");
        assert_eq!(allow.len(), 4);
        assert!(is_allowlisted("LLM.lan", &allow));
        assert!(is_allowlisted("127.0.0.1", &allow));
        assert!(!is_allowlisted("127.0.0.2", &allow));
        assert!(is_allowlisted("10.200.3.4", &allow));
        assert!(is_allowlisted("[fd12::1]", &allow));
        assert!(!is_allowlisted("11.0.0.1", &allow));
        let everything = parse_allowlist("0.0.0.0/0");
        assert!(is_allowlisted("192.168.0.1", &everything));
    }

    #[test]
    fn llm_hosts_are_checked_against_internal_and_own_hosts() {
        let own = vec!["ns.example.com".to_owned(), "127.0.0.1".to_owned()];
        assert!(llm_host_allowed("api.openai.com", &own, &[]));
        assert!(!llm_host_allowed("ns.example.com", &own, &[]));
        assert!(!llm_host_allowed("169.254.169.254", &own, &[]));
        assert!(!llm_host_allowed("127.0.0.1", &own, &[]));
        let allow = parse_allowlist("127.0.0.1");
        assert!(llm_host_allowed("127.0.0.1", &own, &allow));
    }
}
