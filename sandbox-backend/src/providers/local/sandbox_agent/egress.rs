//! The backend's half of an `isolated` sandbox's egress proxy ([`super::proxy`]):
//! it keeps a couple of [`super::wire::Request::Egress`] connections open to the
//! agent, and when one carries a destination, checks it against the policy and dials
//! it from the host.
//!
//! The policy: every address the destination resolves to must be a public one. Refused
//! are loopback, RFC 1918 private ranges, carrier-grade NAT, link-local (cloud
//! metadata), unique-local and site-local IPv6, multicast, broadcast, unspecified and
//! documentation ranges, and every address of this host's own interfaces. An explicit
//! allow list (`SANDBOX_ISOLATED_ALLOW`) overrides it: a CIDR opens every port of
//! those addresses (an internal mirror); `address:port` opens that one port only (a
//! git server on the host's loopback in tests, without also opening the Worker, the
//! backend or anything else listening there).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::client::connect;
use super::wire::{EgressTarget, Frame, Request, write_frame, write_request};
use crate::git_egress::SandboxGit;

/// Ways out kept waiting per sandbox.
const POOL: usize = 2;
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Which destinations an isolated sandbox may reach.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<Allowed>,
}

/// One entry of the allow list: a network, and the one port allowed on it when the
/// operator named one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Allowed {
    network: IpAddr,
    bits: u8,
    port: Option<u16>,
}

impl EgressPolicy {
    /// Parses a comma-separated list allowed despite the rules: addresses or CIDRs
    /// (every port), or `address:port` / `[v6 address]:port` (that port only).
    pub fn with_allow_list(list: &str) -> Result<EgressPolicy, String> {
        let mut allow = Vec::new();
        for item in list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            if let Ok(socket) = item.parse::<SocketAddr>() {
                if socket.port() == 0 {
                    return Err(format!("{item:?} names port 0"));
                }
                let bits = if socket.is_ipv4() { 32 } else { 128 };
                allow.push(Allowed {
                    network: socket.ip(),
                    bits,
                    port: Some(socket.port()),
                });
                continue;
            }
            let (address, bits) = match item.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (item, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or CIDR"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|bits| *bits <= max)
                    .ok_or_else(|| format!("{item:?} has an invalid prefix length"))?,
                None => max,
            };
            allow.push(Allowed {
                network: address,
                bits,
                port: None,
            });
        }
        Ok(EgressPolicy { allow })
    }

    fn allowed_explicitly(&self, address: IpAddr, port: u16) -> bool {
        self.allow.iter().any(|allowed| {
            in_network(address, allowed.network, allowed.bits)
                && allowed.port.is_none_or(|only| only == port)
        })
    }

    /// `Err` with the reason when `port` of `address` may not be reached.
    pub fn check(&self, address: IpAddr, port: u16, own: &[IpAddr]) -> Result<(), String> {
        if self.allowed_explicitly(address, port) {
            return Ok(());
        }
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
            v4 => v4,
        };
        if own.contains(&address) {
            return Err(format!("{address} is an address of the sandbox's host"));
        }
        let why = match address {
            IpAddr::V4(v4) => refused_v4(v4),
            IpAddr::V6(v6) => refused_v6(v6),
        };
        match why {
            Some(why) => Err(format!("{address} is {why}")),
            None => Ok(()),
        }
    }
}

fn refused_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = address.octets();
    if address.is_loopback() {
        Some("loopback")
    } else if address.is_private() {
        Some("a private address")
    } else if address.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT space")
    } else if address.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if address.is_multicast() || address.is_broadcast() || a >= 240 {
        Some("multicast, broadcast or reserved")
    } else if address.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        Some("a documentation or benchmarking address")
    } else {
        None
    }
}

fn refused_v6(address: Ipv6Addr) -> Option<&'static str> {
    let first = address.segments()[0];
    if address.is_loopback() {
        Some("loopback")
    } else if address.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique-local (private) address")
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        Some("link-local or site-local")
    } else if address.is_multicast() {
        Some("multicast")
    } else if first == 0x2001 && address.segments()[1] == 0x0db8 {
        Some("a documentation address")
    } else if first == 0x0064 && address.segments()[1] == 0xff9b {
        Some("a NAT64 address")
    } else {
        None
    }
}

fn in_network(address: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The addresses of this host's interfaces (from `/proc`).
pub fn own_addresses() -> Vec<IpAddr> {
    let mut addresses = Vec::new();
    // IPv4: the "/32 host LOCAL" entries of the routing trie.
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        let mut last: Option<Ipv4Addr> = None;
        for line in trie.lines() {
            let trimmed = line.trim_start_matches([' ', '|', '+', '-']);
            if let Some(address) = trimmed
                .split_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
            {
                last = Some(address);
            } else if line.contains("/32 host LOCAL")
                && let Some(address) = last
                && !addresses.contains(&IpAddr::V4(address))
            {
                addresses.push(IpAddr::V4(address));
            }
        }
    }
    if let Ok(inet6) = std::fs::read_to_string("/proc/net/if_inet6") {
        for line in inet6.lines() {
            let Some(hex) = line.split_whitespace().next() else {
                continue;
            };
            if let Ok(value) = u128::from_str_radix(hex, 16) {
                addresses.push(IpAddr::V6(Ipv6Addr::from(value)));
            }
        }
    }
    addresses
}

/// Keeps ways out open to the agent at `socket` until aborted; with `git`, tunnels
/// to the session repository's host are intercepted ([`crate::git_egress`]).
pub async fn pool(socket: PathBuf, policy: Arc<EgressPolicy>, git: Option<SandboxGit>) {
    let (used, mut used_rx) = mpsc::channel::<()>(POOL * 2);
    let mut waiting = 0;
    loop {
        while waiting < POOL {
            match offer(&socket).await {
                Ok(stream) => {
                    waiting += 1;
                    tokio::spawn(serve(stream, policy.clone(), git.clone(), used.clone()));
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if used_rx.recv().await.is_none() {
            return;
        }
        waiting -= 1;
    }
}

async fn offer(socket: &std::path::Path) -> std::io::Result<tokio::net::UnixStream> {
    let mut stream = connect(socket).await?;
    write_request(&mut stream, &Request::Egress).await?;
    Ok(stream)
}

async fn serve(
    stream: tokio::net::UnixStream,
    policy: Arc<EgressPolicy>,
    git: Option<SandboxGit>,
    used: mpsc::Sender<()>,
) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let read = reader.read_line(&mut line).await;
    // Used (or gone): the pool offers another.
    let _ = used.send(()).await;
    if !matches!(read, Ok(n) if n > 0) {
        return;
    }
    let Ok(target) = serde_json::from_str::<EgressTarget>(line.trim()) else {
        return;
    };
    // The runner is asked before the dial, so a tunnel is intercepted or carried
    // from its first byte.
    let intercepted = match &git {
        Some(git) => git
            .intercepts(&target.host, target.port)
            .await
            .map(|repo| (git, repo)),
        None => None,
    };
    match dial(&target, &policy).await {
        Err(reason) => {
            tracing::info!(host = %target.host, port = target.port, %reason, "egress refused");
            let _ = write_frame(reader.get_mut(), &Frame::Error(reason)).await;
        }
        Ok(mut remote) => {
            if write_frame(reader.get_mut(), &Frame::Ok).await.is_err() {
                return;
            }
            if let Some((git, repo)) = intercepted {
                // What the agent already sent after the target line stays in the
                // reader's buffer: the start of the sandbox's TLS handshake.
                git.serve(reader, remote, &target.host, repo).await;
                return;
            }
            let buffered = reader.buffer().to_vec();
            if !buffered.is_empty() && remote.write_all(&buffered).await.is_err() {
                return;
            }
            let mut agent = reader.into_inner();
            let _ = tokio::io::copy_bidirectional(&mut agent, &mut remote).await;
        }
    }
}

/// Resolves `target`, checks every address against `policy` and the host's own, and
/// dials it (the docker provider's egress dials through this too).
pub(crate) async fn dial(
    target: &EgressTarget,
    policy: &EgressPolicy,
) -> Result<TcpStream, String> {
    let addresses: Vec<SocketAddr> = tokio::time::timeout(
        DIAL_TIMEOUT,
        tokio::net::lookup_host((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| format!("resolving {} timed out", target.host))?
    .map_err(|error| format!("cannot resolve {}: {error}", target.host))?
    .collect();
    if addresses.is_empty() {
        return Err(format!("{} has no address", target.host));
    }
    let own = own_addresses();
    // Every address must pass, so a name cannot mix a public and a private answer.
    for address in &addresses {
        policy.check(address.ip(), address.port(), &own)?;
    }
    let mut last = String::new();
    for address in addresses {
        match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error)) => last = format!("cannot connect to {address}: {error}"),
            Err(_) => last = format!("connecting to {address} timed out"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_and_host_addresses_are_refused() {
        let policy = EgressPolicy::default();
        let own = [ip("203.0.113.7")];
        for refused in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "203.0.113.7",
        ] {
            assert!(
                policy.check(ip(refused), 443, &own).is_err(),
                "{refused} was allowed"
            );
        }
        for allowed in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(
                policy.check(ip(allowed), 443, &own).is_ok(),
                "{allowed} was refused"
            );
        }
    }

    #[test]
    fn the_allow_list_overrides_the_rules() {
        let policy = EgressPolicy::with_allow_list("127.0.0.2, 10.9.0.0/16").unwrap();
        assert!(policy.check(ip("127.0.0.2"), 22, &[]).is_ok());
        assert!(policy.check(ip("10.9.200.1"), 8080, &[]).is_ok());
        assert!(policy.check(ip("127.0.0.1"), 22, &[]).is_err());
        assert!(policy.check(ip("10.8.0.1"), 22, &[]).is_err());
        assert!(EgressPolicy::with_allow_list("nonsense").is_err());
        assert!(EgressPolicy::with_allow_list("10.0.0.0/33").is_err());
    }

    #[test]
    fn an_allowed_port_opens_that_port_of_that_address_and_nothing_else() {
        let own = [ip("127.0.0.1"), ip("::1"), ip("203.0.113.7")];
        let policy = EgressPolicy::with_allow_list("127.0.0.1:41234, [::1]:41235").unwrap();
        assert!(policy.check(ip("127.0.0.1"), 41234, &own).is_ok());
        assert!(policy.check(ip("::1"), 41235, &own).is_ok());
        // Every other port of the same loopback (the Worker, the backend, the
        // gateway's forwards) stays closed, and so does every other private address.
        for (address, port) in [
            ("127.0.0.1", 41235),
            ("127.0.0.1", 8787),
            ("127.0.0.1", 443),
            ("::1", 41234),
            ("127.0.0.2", 41234),
            ("::ffff:127.0.0.1", 41235),
            ("10.0.0.1", 41234),
            ("169.254.169.254", 41234),
            ("203.0.113.7", 41234),
        ] {
            assert!(
                policy.check(ip(address), port, &own).is_err(),
                "{address} port {port} was allowed"
            );
        }
        for bad in ["127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x", "host:80"] {
            assert!(EgressPolicy::with_allow_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn this_hosts_loopback_is_among_its_addresses() {
        assert!(own_addresses().contains(&ip("127.0.0.1")));
    }
}
