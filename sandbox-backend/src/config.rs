//! The service's configuration, read once from the environment at start-up.
//!
//! Plain data: nothing here touches the network or spawns processes, so tests build a
//! [`Config`] directly instead of setting environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::listen::{self, Transport, UnsafeListen};
use crate::tls::TlsFiles;

/// Everything the service needs to know before it starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens (`SANDBOX_BACKEND_LISTEN`).
    pub listen: SocketAddr,
    /// The bearer token every `/v1` route except health requires
    /// (`SANDBOX_BACKEND_TOKEN`).
    pub token: nightshift_protocol::redacted::Redacted<String>,
    /// Sandboxes, their records and runner files live under `<data_dir>/sandboxes/`
    /// (`NIGHTSHIFT_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The runner executable started for sandboxes linked to a session (`RUNNER_BIN`).
    pub runner_bin: PathBuf,
    /// The `nightshift-gateway` executable, bound read-only into local sandboxes and
    /// started in those created with a `gateway` (`GATEWAY_BIN`, default: next to
    /// this executable). A missing one leaves their gateway `unavailable`.
    pub gateway_bin: PathBuf,
    /// Run commands as plain processes when bubblewrap cannot isolate them
    /// (`SANDBOX_ALLOW_UNISOLATED`). Only for machines where nothing else is possible.
    pub allow_unisolated: bool,
    /// The provider used when a create request names none
    /// (`SANDBOX_DEFAULT_PROVIDER`, default `local`).
    pub default_provider: String,
    /// Host directories bound read-only at the same path into every local sandbox
    /// (`SANDBOX_RO_BINDS`, colon-separated), e.g. where extra tools are installed.
    pub ro_binds: Vec<PathBuf>,
    /// The `sandbox-backend` executable used as the agent inside local sandboxes and
    /// as the runner's `command_wrapper` (`SANDBOX_AGENT_BIN`, default: this
    /// executable).
    pub agent_bin: Option<PathBuf>,
    /// How long a local sandbox outlives a backend that went away without coming
    /// back (`SANDBOX_ORPHAN_GRACE_SECS`, default 600).
    pub orphan_grace: Duration,
    /// The length of one `idle_timeout_minutes` minute (`SANDBOX_IDLE_MINUTE_MS`,
    /// default 60000; tests shorten it).
    pub idle_minute: Duration,
    /// Addresses (CIDRs, every port) or `address:port` pairs (that port only)
    /// `isolated` sandboxes may reach although they are private or the host's
    /// (`SANDBOX_ISOLATED_ALLOW`, comma-separated), e.g. an internal package mirror or
    /// a git server on the host's loopback.
    pub isolated_allow: String,
    /// A PEM file of further roots the egress trusts when it dials a session
    /// repository's host itself (`SANDBOX_EGRESS_UPSTREAM_CA`; for a test's git
    /// server behind TLS). The public roots are always trusted.
    pub egress_upstream_ca: Option<PathBuf>,
    /// Local sandboxes kept started ahead of demand (`SANDBOX_WARM_POOL`, default 2;
    /// 0 turns the pool off).
    pub warm_pool: usize,
    /// Whether a sandbox may ask for network mode `private`, sharing the host's
    /// network and so every loopback service on it (`SANDBOX_ALLOW_PRIVATE_NETWORK`,
    /// default false). Only for trusted templates.
    pub allow_private_network: bool,
    /// The PEM certificate chain and key to serve HTTPS with
    /// (`SANDBOX_BACKEND_TLS_CERT`, `SANDBOX_BACKEND_TLS_KEY`; both or neither).
    pub tls: Option<TlsFiles>,
    /// Whether the local (bubblewrap) provider runs (`SANDBOX_LOCAL_PROVIDER`, default
    /// true). A backend that only serves a remote provider, for example in a container
    /// on Modal or Railway where bubblewrap cannot create namespaces, turns it off.
    pub local_provider: bool,
    /// Plain HTTP reaches the backend only through a TLS-terminating proxy
    /// (`SANDBOX_BACKEND_BEHIND_TLS_PROXY`, default false).
    pub behind_tls_proxy: bool,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "SANDBOX_BACKEND_TOKEN is not set: the sandbox backend refuses to start without a \
         bearer token. Set it to a long random secret (the Worker sends the same value), \
         for example `SANDBOX_BACKEND_TOKEN=$(openssl rand -hex 32)`"
    )]
    MissingToken,
    #[error("SANDBOX_BACKEND_LISTEN={0:?} is not an address like 127.0.0.1:8788")]
    InvalidListen(String),
    #[error("SANDBOX_ALLOW_UNISOLATED={0:?} is not a boolean (use true or false)")]
    InvalidBoolean(String),
    #[error("{0}={1:?} is not a boolean (use true or false)")]
    InvalidFlag(&'static str, String),
    #[error("{0}={1:?} is not a positive whole number")]
    InvalidNumber(&'static str, String),
    #[error(
        "set both SANDBOX_BACKEND_TLS_CERT and SANDBOX_BACKEND_TLS_KEY to serve HTTPS, or neither"
    )]
    HalfTls,
    #[error("cannot find the backend's own executable to locate the runner next to it: {0}")]
    NoOwnExecutable(std::io::Error),
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8788";
pub const DEFAULT_DATA_DIR: &str = ".nightshift";

impl Config {
    /// A configuration with defaults for everything but the token and the data
    /// directory (tests and embedders).
    pub fn new(token: impl Into<String>, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            token: Into::<String>::into(token).into(),
            data_dir: data_dir.into(),
            runner_bin: PathBuf::from("runner"),
            gateway_bin: PathBuf::from("nightshift-gateway"),
            allow_unisolated: false,
            default_provider: "local".into(),
            ro_binds: Vec::new(),
            agent_bin: None,
            orphan_grace: Duration::from_secs(600),
            idle_minute: Duration::from_secs(60),
            isolated_allow: String::new(),
            egress_upstream_ca: None,
            warm_pool: 2,
            allow_private_network: false,
            tls: None,
            behind_tls_proxy: false,
            local_provider: true,
        }
    }

    /// How connections reach the listen address.
    pub fn transport(&self) -> Transport {
        match (&self.tls, self.behind_tls_proxy) {
            (Some(_), _) => Transport::Tls,
            (None, true) => Transport::BehindTlsProxy,
            (None, false) => Transport::Plain,
        }
    }

    /// Refuses a listen that would expose the token (see [`crate::listen`]).
    pub fn check_listen(&self) -> Result<(), UnsafeListen> {
        listen::check(self.listen, self.transport(), self.token.expose())
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so the rules can be tested without
    /// touching the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let token = non_empty("SANDBOX_BACKEND_TOKEN").ok_or(ConfigError::MissingToken)?;
        let listen_text =
            non_empty("SANDBOX_BACKEND_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text
            .parse()
            .map_err(|_| ConfigError::InvalidListen(listen_text.clone()))?;
        let data_dir = PathBuf::from(
            non_empty("NIGHTSHIFT_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        );
        let runner_bin = match non_empty("RUNNER_BIN") {
            Some(path) => PathBuf::from(path),
            None => sibling_bin("runner")?,
        };
        let gateway_bin = match non_empty("GATEWAY_BIN") {
            Some(path) => PathBuf::from(path),
            None => sibling_bin("nightshift-gateway")?,
        };
        let allow_unisolated = match non_empty("SANDBOX_ALLOW_UNISOLATED") {
            None => false,
            Some(text) => parse_bool(&text).ok_or(ConfigError::InvalidBoolean(text))?,
        };
        let default_provider =
            non_empty("SANDBOX_DEFAULT_PROVIDER").unwrap_or_else(|| "local".into());
        let ro_binds = non_empty("SANDBOX_RO_BINDS")
            .map(|list| {
                list.split(':')
                    .filter(|part| !part.trim().is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            non_empty(name)
                .map(|text| {
                    text.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|value| *value > 0)
                        .ok_or(ConfigError::InvalidNumber(name, text))
                })
                .transpose()
        };
        let orphan_grace = Duration::from_secs(number("SANDBOX_ORPHAN_GRACE_SECS")?.unwrap_or(600));
        let idle_minute =
            Duration::from_millis(number("SANDBOX_IDLE_MINUTE_MS")?.unwrap_or(60_000));
        Ok(Config {
            listen,
            token: token.into(),
            data_dir,
            runner_bin,
            gateway_bin,
            allow_unisolated,
            default_provider,
            ro_binds,
            agent_bin: non_empty("SANDBOX_AGENT_BIN").map(PathBuf::from),
            orphan_grace,
            idle_minute,
            isolated_allow: non_empty("SANDBOX_ISOLATED_ALLOW").unwrap_or_default(),
            egress_upstream_ca: non_empty("SANDBOX_EGRESS_UPSTREAM_CA").map(PathBuf::from),
            warm_pool: match non_empty("SANDBOX_WARM_POOL") {
                None => 2,
                Some(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError::InvalidNumber("SANDBOX_WARM_POOL", text))?,
            },
            tls: match (
                non_empty("SANDBOX_BACKEND_TLS_CERT"),
                non_empty("SANDBOX_BACKEND_TLS_KEY"),
            ) {
                (None, None) => None,
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: PathBuf::from(cert),
                    key: PathBuf::from(key),
                }),
                _ => return Err(ConfigError::HalfTls),
            },
            local_provider: match non_empty("SANDBOX_LOCAL_PROVIDER") {
                None => true,
                Some(text) => parse_bool(&text)
                    .ok_or(ConfigError::InvalidFlag("SANDBOX_LOCAL_PROVIDER", text))?,
            },
            behind_tls_proxy: match non_empty("SANDBOX_BACKEND_BEHIND_TLS_PROXY") {
                None => false,
                Some(text) => parse_bool(&text).ok_or(ConfigError::InvalidFlag(
                    "SANDBOX_BACKEND_BEHIND_TLS_PROXY",
                    text,
                ))?,
            },
            allow_private_network: match non_empty("SANDBOX_ALLOW_PRIVATE_NETWORK") {
                None => false,
                Some(text) => parse_bool(&text).ok_or(ConfigError::InvalidFlag(
                    "SANDBOX_ALLOW_PRIVATE_NETWORK",
                    text,
                ))?,
            },
        })
    }
}

/// An executable next to this one (`runner`, `nightshift-gateway`): all are built
/// into the same `target/<profile>/` directory, and installed side by side.
fn sibling_bin(name: &str) -> Result<PathBuf, ConfigError> {
    let own = std::env::current_exe().map_err(ConfigError::NoOwnExecutable)?;
    Ok(own.with_file_name(name))
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn refuses_to_start_without_a_token() {
        let error = Config::from_lookup(lookup(&[])).unwrap_err();
        assert!(matches!(error, ConfigError::MissingToken));
        assert!(error.to_string().contains("SANDBOX_BACKEND_TOKEN"));
        let blank = Config::from_lookup(lookup(&[("SANDBOX_BACKEND_TOKEN", "  ")]));
        assert!(matches!(blank, Err(ConfigError::MissingToken)));
    }

    #[test]
    fn defaults_apply_when_only_the_token_is_set() {
        let config = Config::from_lookup(lookup(&[("SANDBOX_BACKEND_TOKEN", "secret")])).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir, PathBuf::from(".nightshift"));
        assert_eq!(config.runner_bin.file_name().unwrap(), "runner");
        assert_eq!(
            config.gateway_bin.file_name().unwrap(),
            "nightshift-gateway"
        );
        assert!(!config.allow_unisolated);
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn explicit_values_win() {
        let config = Config::from_lookup(lookup(&[
            ("SANDBOX_BACKEND_TOKEN", "secret"),
            ("SANDBOX_BACKEND_LISTEN", "0.0.0.0:9000"),
            ("NIGHTSHIFT_DATA_DIR", "/var/lib/nightshift"),
            ("RUNNER_BIN", "/opt/runner"),
            ("SANDBOX_ALLOW_UNISOLATED", "TRUE"),
        ]))
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/nightshift"));
        assert_eq!(config.runner_bin, PathBuf::from("/opt/runner"));
        assert!(config.allow_unisolated);
    }

    #[test]
    fn malformed_values_are_errors() {
        let listen = Config::from_lookup(lookup(&[
            ("SANDBOX_BACKEND_TOKEN", "t"),
            ("SANDBOX_BACKEND_LISTEN", "localhost"),
        ]));
        assert!(matches!(listen, Err(ConfigError::InvalidListen(_))));
        let unisolated = Config::from_lookup(lookup(&[
            ("SANDBOX_BACKEND_TOKEN", "t"),
            ("SANDBOX_ALLOW_UNISOLATED", "maybe"),
        ]));
        assert!(matches!(unisolated, Err(ConfigError::InvalidBoolean(_))));
        let half_tls = Config::from_lookup(lookup(&[
            ("SANDBOX_BACKEND_TOKEN", "t"),
            ("SANDBOX_BACKEND_TLS_CERT", "/etc/cert.pem"),
        ]));
        assert!(matches!(half_tls, Err(ConfigError::HalfTls)));
        let proxy = Config::from_lookup(lookup(&[
            ("SANDBOX_BACKEND_TOKEN", "t"),
            ("SANDBOX_BACKEND_BEHIND_TLS_PROXY", "perhaps"),
        ]));
        assert!(matches!(proxy, Err(ConfigError::InvalidFlag(..))));
    }

    #[test]
    fn the_transport_follows_the_tls_settings() {
        let plain = Config::from_lookup(lookup(&[("SANDBOX_BACKEND_TOKEN", "t")])).unwrap();
        assert_eq!(plain.transport(), Transport::Plain);
        let proxied = Config::from_lookup(lookup(&[
            ("SANDBOX_BACKEND_TOKEN", "t"),
            ("SANDBOX_BACKEND_BEHIND_TLS_PROXY", "true"),
        ]))
        .unwrap();
        assert_eq!(proxied.transport(), Transport::BehindTlsProxy);
        let tls = Config::from_lookup(lookup(&[
            ("SANDBOX_BACKEND_TOKEN", "t"),
            ("SANDBOX_BACKEND_TLS_CERT", "/etc/cert.pem"),
            ("SANDBOX_BACKEND_TLS_KEY", "/etc/key.pem"),
        ]))
        .unwrap();
        assert_eq!(tls.transport(), Transport::Tls);
        // The default listen is loopback: a short token is still accepted there.
        assert!(tls.check_listen().is_ok());
    }
}
