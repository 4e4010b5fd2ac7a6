//! `sandbox-backend health`: asks the backend configured in this environment whether
//! it answers `GET /v1/health`, and exits 0 if it does. A container's `HEALTHCHECK`
//! runs it, so the image needs neither a shell nor curl.
//!
//! It reads the same `SANDBOX_BACKEND_LISTEN` and TLS settings as the backend and
//! calls it on loopback. Over TLS it does not check the certificate (it is issued for
//! the public name, not loopback) and sends no token: `/v1/health` needs none, and
//! this probe says only whether the process answers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::DEFAULT_LISTEN;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL of the health route of a backend listening on `listen`: an unspecified
/// address (`0.0.0.0`, `::`) is reached on loopback.
pub fn health_url(listen: SocketAddr, https: bool) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if https { "https" } else { "http" };
    format!(
        "{scheme}://{}/v1/health",
        SocketAddr::new(ip, listen.port())
    )
}

pub fn main() -> ExitCode {
    let lookup = |name: &str| std::env::var(name).ok();
    let listen = lookup("SANDBOX_BACKEND_LISTEN")
        .filter(|text| !text.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let Ok(listen) = listen.parse::<SocketAddr>() else {
        eprintln!("sandbox-backend health: SANDBOX_BACKEND_LISTEN={listen:?} is not an address");
        return ExitCode::FAILURE;
    };
    let https = lookup("SANDBOX_BACKEND_TLS_CERT").is_some_and(|cert| !cert.trim().is_empty());
    let url = health_url(listen, https);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sandbox-backend health: {error}");
            return ExitCode::FAILURE;
        }
    };
    let answered = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .danger_accept_invalid_certs(true)
            .build()?;
        client.get(&url).send().await?.error_for_status()
    });
    match answered {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sandbox-backend health: {url}: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_is_probed_on_loopback() {
        assert_eq!(
            health_url("0.0.0.0:8788".parse().unwrap(), true),
            "https://127.0.0.1:8788/v1/health"
        );
        assert_eq!(
            health_url("[::]:8788".parse().unwrap(), false),
            "http://[::1]:8788/v1/health"
        );
        assert_eq!(
            health_url("127.0.0.1:9".parse().unwrap(), false),
            "http://127.0.0.1:9/v1/health"
        );
    }
}
