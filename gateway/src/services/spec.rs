//! What the gateway runs and how it knows each service is up: the one list of
//! services shared by the local provider and the sandbox image, so both run exactly
//! what the tests run.
//!
//! Order matters: the display first; the window manager, both VNC servers and
//! Chromium need it and wait until it answers. Every listener is on loopback (or the
//! display's unix socket).

use std::path::PathBuf;
use std::time::Duration;

use super::name::ServiceName;
use crate::config::GatewayConfig;

/// How the supervisor decides a started service is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Something accepts connections on this loopback port.
    Tcp(u16),
    /// Something accepts connections on this unix socket.
    UnixSocket(PathBuf),
    /// The process is still running after this long (it serves nothing to probe).
    Alive(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: ServiceName,
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub health: Health,
    /// How long a start may take before it counts as failed.
    pub start_timeout: Duration,
    /// Waits for the display before starting.
    pub needs_display: bool,
    /// Starts only once this service has settled (ready, or unavailable) the first
    /// time, so the panels people look at first are not starved of CPU by the heavy
    /// starters (Chromium, code-server) in a new sandbox. Restarts do not wait.
    pub starts_after: Option<ServiceName>,
    /// What to install when the program is missing.
    pub install_hint: &'static str,
}

/// Chromium's flags for a closed network (see docs: without the background-networking
/// flags it floods the network with connection attempts), minus `--headless`.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// The services of a gateway configured by `config`, in start order.
pub fn services(config: &GatewayConfig) -> Vec<ServiceSpec> {
    let display = format!(":{}", config.display);
    let display_env = vec![("DISPLAY".to_owned(), display.clone())];
    let vnc = |name, port: u16, view_only: bool| {
        let mut args = vec![
            "-display".to_owned(),
            display.clone(),
            "-rfbport".to_owned(),
            port.to_string(),
        ];
        args.extend(
            [
                "-localhost",
                "-noipv6",
                "-shared",
                "-forever",
                "-nopw",
                "-quiet",
            ]
            .map(String::from),
        );
        if view_only {
            args.push("-viewonly".to_owned());
        }
        ServiceSpec {
            name,
            program: "x11vnc".to_owned(),
            args,
            env: display_env.clone(),
            health: Health::Tcp(port),
            start_timeout: Duration::from_secs(15),
            needs_display: true,
            starts_after: None,
            install_hint: "Debian package x11vnc",
        }
    };
    let browser_profile =
        std::env::temp_dir().join(format!("nightshift-browser-{}", config.display));
    let mut browser_args: Vec<String> = CHROMIUM_FLAGS.map(String::from).to_vec();
    browser_args.extend([
        format!("--user-data-dir={}", browser_profile.display()),
        "--remote-debugging-address=127.0.0.1".to_owned(),
        format!("--remote-debugging-port={}", config.devtools_port),
        "--window-position=0,0".to_owned(),
        "--window-size=1280,800".to_owned(),
        "about:blank".to_owned(),
    ]);
    vec![
        ServiceSpec {
            name: ServiceName::Display,
            program: "Xvfb".to_owned(),
            args: vec![
                display.clone(),
                "-screen".into(),
                "0".into(),
                "1280x800x24".into(),
                "-nolisten".into(),
                "tcp".into(),
            ],
            env: Vec::new(),
            health: Health::UnixSocket(PathBuf::from(format!(
                "/tmp/.X11-unix/X{}",
                config.display
            ))),
            start_timeout: Duration::from_secs(10),
            needs_display: false,
            starts_after: None,
            install_hint: "Debian package xvfb",
        },
        ServiceSpec {
            name: ServiceName::WindowManager,
            program: "fluxbox".to_owned(),
            args: Vec::new(),
            env: display_env.clone(),
            health: Health::Alive(Duration::from_millis(500)),
            start_timeout: Duration::from_secs(5),
            needs_display: true,
            starts_after: None,
            install_hint: "Debian package fluxbox",
        },
        vnc(ServiceName::Vnc, config.vnc_port, false),
        vnc(ServiceName::VncViewOnly, config.vnc_view_port, true),
        ServiceSpec {
            name: ServiceName::Browser,
            program: "chromium".to_owned(),
            args: browser_args,
            env: display_env,
            health: Health::Tcp(config.devtools_port),
            start_timeout: Duration::from_secs(30),
            needs_display: true,
            starts_after: Some(ServiceName::Vnc),
            install_hint: "Debian package chromium",
        },
        ServiceSpec {
            name: ServiceName::Vscode,
            program: "code-server".to_owned(),
            args: vec![
                "--auth".into(),
                "none".into(),
                "--bind-addr".into(),
                format!("127.0.0.1:{}", config.vscode_port),
                "--disable-telemetry".into(),
                "--disable-update-check".into(),
                "--disable-workspace-trust".into(),
                config.workspace.display().to_string(),
            ],
            env: Vec::new(),
            health: Health::Tcp(config.vscode_port),
            start_timeout: Duration::from_secs(60),
            needs_display: false,
            starts_after: Some(ServiceName::Vnc),
            install_hint: "scripts/install-code-server.sh (make setup)",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listener_is_on_loopback_and_viewers_get_a_view_only_vnc() {
        let config = crate::config::GatewayConfig::from_args(
            "serve --listen 127.0.0.1:9000 --session s --key-file k"
                .split(' ')
                .map(String::from),
        )
        .unwrap();
        let specs = services(&config);
        let names: Vec<ServiceName> = specs.iter().map(|spec| spec.name).collect();
        assert_eq!(names, ServiceName::ALL);
        let vnc = &specs[2];
        let view = &specs[3];
        assert!(
            vnc.args.contains(&"-localhost".to_owned())
                && !vnc.args.contains(&"-viewonly".to_owned())
        );
        assert!(
            view.args.contains(&"-localhost".to_owned())
                && view.args.contains(&"-viewonly".to_owned())
        );
        assert_eq!(
            (vnc.health.clone(), view.health.clone()),
            (Health::Tcp(5900), Health::Tcp(5901))
        );
        // The desktop first: the heavy starters wait for the interactive VNC server.
        for spec in &specs {
            let after = match spec.name {
                ServiceName::Browser | ServiceName::Vscode => Some(ServiceName::Vnc),
                _ => None,
            };
            assert_eq!(spec.starts_after, after, "{:?}", spec.name);
        }
        let browser = &specs[4];
        assert!(
            browser
                .args
                .contains(&"--remote-debugging-address=127.0.0.1".to_owned())
        );
        assert!(!browser.args.iter().any(|arg| arg == "--headless"));
        let vscode = &specs[5];
        assert!(vscode.args.contains(&"127.0.0.1:8080".to_owned()));
        assert!(
            specs[0].args.contains(&"tcp".to_owned()),
            "Xvfb must not listen on TCP"
        );
        assert!(specs.iter().filter(|spec| spec.name != ServiceName::Display && spec.name != ServiceName::Vscode).all(|spec| spec.needs_display));
    }
}
