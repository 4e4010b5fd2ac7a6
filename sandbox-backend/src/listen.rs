//! Whether the backend may listen where it was told to: a plain decision on the
//! listen address, how the connection is protected, and the bearer token.
//!
//! On a loopback address only this host reaches the backend, so anything goes (the
//! development stack relies on it). Anywhere else the bearer token crosses a network:
//! it must travel inside TLS (served here with `SANDBOX_BACKEND_TLS_CERT`/`_KEY`, or by
//! a proxy in front, `SANDBOX_BACKEND_BEHIND_TLS_PROXY=true`) and must be long enough
//! that guessing it is hopeless. Nothing here opens a socket.

use std::net::SocketAddr;

/// The entropy a token must carry on a non-loopback listen.
pub const MIN_TOKEN_BYTES: usize = 32;

/// How connections to the listen address are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP.
    Plain,
    /// TLS served by the backend itself.
    Tls,
    /// Plain HTTP from a TLS-terminating proxy the operator vouches for.
    BehindTlsProxy,
}

/// Why a listen is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeListen {
    #[error(
        "SANDBOX_BACKEND_LISTEN={0} is not a loopback address, so the bearer token would cross \
         the network in clear text: set SANDBOX_BACKEND_TLS_CERT and SANDBOX_BACKEND_TLS_KEY \
         (PEM files) to serve HTTPS, or SANDBOX_BACKEND_BEHIND_TLS_PROXY=true when a \
         TLS-terminating proxy is the only way in"
    )]
    NoTls(SocketAddr),
    #[error(
        "SANDBOX_BACKEND_LISTEN={listen} is not a loopback address and SANDBOX_BACKEND_TOKEN \
         carries about {bytes} bytes of entropy; at least {MIN_TOKEN_BYTES} are needed: \
         {MIN_TOKEN_BYTES} random bytes as 64 hex digits or 43 base64 characters, for example \
         `SANDBOX_BACKEND_TOKEN=$(openssl rand -hex 32)`"
    )]
    WeakToken { listen: SocketAddr, bytes: usize },
}

/// Refuses a non-loopback listen without TLS or with a weak token.
pub fn check(listen: SocketAddr, transport: Transport, token: &str) -> Result<(), UnsafeListen> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if transport == Transport::Plain {
        return Err(UnsafeListen::NoTls(listen));
    }
    let bytes = token_entropy_bytes(token);
    if bytes < MIN_TOKEN_BYTES {
        return Err(UnsafeListen::WeakToken { listen, bytes });
    }
    Ok(())
}

/// Estimates a secret's entropy from its form, assuming it was generated at random as
/// its alphabet suggests: 4 bits per hex digit, 6 bits per character otherwise (base64,
/// base64url, or any other text, which is generous for a chosen password). A token of
/// fewer than 8 distinct characters (`aaaa…`, `0101…`) counts as none: it was not
/// drawn at random.
pub fn token_entropy_bytes(token: &str) -> usize {
    let token = token.trim();
    let mut distinct: Vec<char> = token.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 8 {
        return 0;
    }
    let characters = token.chars().count();
    let bits_per_character = if token.chars().all(|c| c.is_ascii_hexdigit()) {
        4
    } else {
        6
    };
    characters * bits_per_character / 8
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX_32: &str = "5f1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d";

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_listens_keep_todays_behaviour() {
        for listen in ["127.0.0.1:8788", "127.0.0.2:1", "[::1]:8788"] {
            assert_eq!(check(addr(listen), Transport::Plain, "short"), Ok(()));
        }
    }

    #[test]
    fn a_public_listen_without_tls_is_refused_whatever_the_token() {
        for listen in ["0.0.0.0:8788", "[::]:8788", "10.1.2.3:8788"] {
            let refused = check(addr(listen), Transport::Plain, HEX_32).unwrap_err();
            assert_eq!(refused, UnsafeListen::NoTls(addr(listen)));
            let message = refused.to_string();
            assert!(message.contains("SANDBOX_BACKEND_TLS_CERT"), "{message}");
            assert!(
                message.contains("SANDBOX_BACKEND_BEHIND_TLS_PROXY"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_public_listen_with_tls_needs_a_strong_token() {
        for transport in [Transport::Tls, Transport::BehindTlsProxy] {
            assert_eq!(check(addr("0.0.0.0:8788"), transport, HEX_32), Ok(()));
            let refused = check(addr("0.0.0.0:8788"), transport, &HEX_32[..62]).unwrap_err();
            assert!(matches!(refused, UnsafeListen::WeakToken { bytes: 31, .. }));
            assert!(refused.to_string().contains("SANDBOX_BACKEND_TOKEN"));
        }
    }

    #[test]
    fn entropy_follows_the_alphabet() {
        assert_eq!(token_entropy_bytes(HEX_32), 32);
        // 43 base64url characters are 258 bits.
        let base64 = "q3Zk1_Vb8-Ha0pWmXr2Ys7Nc4Ld9Te6Uf5Gj1Ki0Ol3";
        assert_eq!(base64.len(), 43);
        assert_eq!(token_entropy_bytes(base64), 32);
        assert_eq!(token_entropy_bytes("secret"), 0);
        assert_eq!(token_entropy_bytes(&"ab".repeat(100)), 0);
        assert_eq!(token_entropy_bytes("0123456789abcdef"), 8);
    }
}
