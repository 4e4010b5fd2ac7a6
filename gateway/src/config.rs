//! The gateway's command line: `serve --listen ADDR --session ID --key-file PATH`
//! plus optional overrides of where each service lives (the defaults are the
//! sandbox's; tests run several gateways side by side on one host and move them).
//!
//! Parsing is a plain function over the arguments so it is unit-tested; reading and
//! deleting the key file happens in [`read_key_file`], once, at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nightshift_session::gateway_token::GatewayKey;

use crate::services::name::ServiceName;

/// Where the gateway listens and where its services are.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub session_id: String,
    pub key_file: PathBuf,
    /// The directory shells start in and code-server opens.
    pub workspace: PathBuf,
    /// The X display number (`:1` by default).
    pub display: u16,
    /// The interactive x11vnc's loopback port.
    pub vnc_port: u16,
    /// The view-only x11vnc's loopback port (what viewers get).
    pub vnc_view_port: u16,
    /// Chromium's DevTools port on loopback.
    pub devtools_port: u16,
    /// code-server's loopback port.
    pub vscode_port: u16,
    /// The most terminal tabs open at once.
    pub max_tabs: usize,
    /// The services to run (`--services display,vnc,...`, `all` or `none`): all in a
    /// sandbox; tests start only the ones they exercise.
    pub services: Vec<ServiceName>,
    /// How long a client may take to send a request's headers before its connection
    /// is closed (`--header-timeout-ms`), so a connection that never finishes its
    /// request holds nothing for long.
    pub header_timeout: Duration,
}

pub const USAGE: &str = "usage: nightshift-gateway serve --listen ADDR --session ID --key-file PATH \
[--workspace DIR] [--display N] [--vnc-port P] [--vnc-view-port P] [--devtools-port P] \
[--vscode-port P] [--max-tabs N] [--services all|none|NAME,NAME...] [--header-timeout-ms MS]\n\
       nightshift-gateway connect   (stdin/stdout to the gateway's port 9000 on 127.0.0.1)";

impl GatewayConfig {
    /// Reads `serve` and its flags (the program name already removed).
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Self, String> {
        let mut args = args.into_iter();
        match args.next().as_deref() {
            Some("serve") => {}
            _ => return Err(USAGE.to_owned()),
        }
        let mut listen = None;
        let mut session_id = None;
        let mut key_file = None;
        let mut config = GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            session_id: String::new(),
            key_file: PathBuf::new(),
            workspace: PathBuf::from("/workspace"),
            display: 1,
            vnc_port: 5900,
            vnc_view_port: 5901,
            devtools_port: 9222,
            vscode_port: 8080,
            max_tabs: 8,
            services: ServiceName::ALL.to_vec(),
            header_timeout: Duration::from_secs(10),
        };
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let bad = |what: &str| format!("{flag} {value}: not {what}");
            match flag.as_str() {
                "--listen" => listen = Some(value.parse().map_err(|_| bad("an address"))?),
                "--session" => session_id = Some(value),
                "--key-file" => key_file = Some(PathBuf::from(value)),
                "--workspace" => config.workspace = PathBuf::from(value),
                "--display" => config.display = value.parse().map_err(|_| bad("a number"))?,
                "--vnc-port" => config.vnc_port = value.parse().map_err(|_| bad("a port"))?,
                "--vnc-view-port" => {
                    config.vnc_view_port = value.parse().map_err(|_| bad("a port"))?
                }
                "--devtools-port" => {
                    config.devtools_port = value.parse().map_err(|_| bad("a port"))?
                }
                "--vscode-port" => config.vscode_port = value.parse().map_err(|_| bad("a port"))?,
                "--max-tabs" => config.max_tabs = value.parse().map_err(|_| bad("a number"))?,
                "--header-timeout-ms" => {
                    let millis: u64 = value.parse().map_err(|_| bad("a number"))?;
                    if millis == 0 {
                        return Err(bad("a positive number"));
                    }
                    config.header_timeout = Duration::from_millis(millis);
                }
                "--services" => {
                    config.services =
                        parse_services(&value).ok_or_else(|| bad("a list of services"))?
                }
                _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
            }
        }
        config.listen = listen.ok_or_else(|| format!("--listen is required\n{USAGE}"))?;
        config.session_id = session_id.ok_or_else(|| format!("--session is required\n{USAGE}"))?;
        config.key_file = key_file.ok_or_else(|| format!("--key-file is required\n{USAGE}"))?;
        Ok(config)
    }
}

/// `all`, `none`, or names of [`ServiceName`] separated by commas.
fn parse_services(text: &str) -> Option<Vec<ServiceName>> {
    match text {
        "all" => Some(ServiceName::ALL.to_vec()),
        "none" => Some(Vec::new()),
        _ => text
            .split(',')
            .map(|name| {
                ServiceName::ALL
                    .into_iter()
                    .find(|known| known.as_str() == name)
            })
            .collect(),
    }
}

/// Reads the session key (hex, one line) and deletes the file, so nothing started
/// later in the sandbox finds it on disk. The key stays only in this process.
pub fn read_key_file(path: &Path) -> anyhow::Result<GatewayKey> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key file {}", path.display()))?;
    std::fs::remove_file(path)
        .with_context(|| format!("deleting the key file {}", path.display()))?;
    GatewayKey::from_hex(&text).with_context(|| format!("the key in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn serve_takes_the_three_required_flags_and_defaults_the_rest() {
        let config = GatewayConfig::from_args(args(
            "serve --listen 127.0.0.1:9000 --session s1 --key-file /run/key",
        ))
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.session_id, "s1");
        assert_eq!(config.key_file, PathBuf::from("/run/key"));
        assert_eq!(config.workspace, PathBuf::from("/workspace"));
        assert_eq!(
            (config.display, config.vnc_port, config.vnc_view_port),
            (1, 5900, 5901)
        );
        assert_eq!(config.devtools_port, 9222);
    }

    #[test]
    fn overrides_are_read_and_mistakes_are_named() {
        let config = GatewayConfig::from_args(args(
            "serve --listen 127.0.0.1:1 --session s --key-file k --display 42 --vscode-port 7000 --max-tabs 2",
        ))
        .unwrap();
        assert_eq!(
            (config.display, config.vscode_port, config.max_tabs),
            (42, 7000, 2)
        );
        for (line, wanted) in [
            ("", "usage"),
            ("run --listen 127.0.0.1:1", "usage"),
            ("serve --session s --key-file k", "--listen is required"),
            (
                "serve --listen nowhere --session s --key-file k",
                "not an address",
            ),
            (
                "serve --listen 127.0.0.1:1 --session s --key-file k --bogus 1",
                "unknown flag",
            ),
            ("serve --listen 127.0.0.1:1 --session", "needs a value"),
            (
                "serve --listen 127.0.0.1:1 --session s --key-file k --services vnc,x",
                "not a list",
            ),
        ] {
            let error = GatewayConfig::from_args(args(line)).unwrap_err();
            assert!(error.contains(wanted), "{line}: {error}");
        }
    }

    #[test]
    fn the_key_file_is_read_once_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        assert!(read_key_file(&path).is_ok());
        assert!(!path.exists());
        assert!(read_key_file(&path).is_err());
        std::fs::write(&path, "not hex").unwrap();
        assert!(read_key_file(&path).is_err());
    }
}
