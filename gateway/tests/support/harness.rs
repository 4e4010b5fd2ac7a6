//! Starts the real `nightshift-gateway` binary on free loopback ports with a key file,
//! and speaks to it over HTTP and WebSockets, for the gateway's integration tests.
//! Every wait has a deadline; a failing start shows the gateway's own log.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use nightshift_session::gateway_token::{GatewayClaims, GatewayKey, GatewayRole};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub const SESSION: &str = "3b241101-e2bb-4255-8caf-4136c566a962";

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Gateway {
    pub base: String,
    pub key_hex: String,
    pub display: u16,
    pub workspace: tempfile::TempDir,
    home: tempfile::TempDir,
    child: Child,
    log: PathBuf,
}

pub struct Options<'a> {
    pub services: &'a str,
    pub max_tabs: usize,
    /// Replaces `PATH` for the gateway (to hide installed programs).
    pub path: Option<String>,
    /// `--header-timeout-ms`; the gateway's default when `None`.
    pub header_timeout_ms: Option<u64>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            services: "none",
            max_tabs: 8,
            path: None,
            header_timeout_ms: None,
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A display number no X server on this host uses. Tests of one binary run at once
/// and start their servers later, so each call also takes a number no earlier call
/// of this process took.
fn free_display() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 100 + (std::process::id() % 50) as u16 * 16;
    loop {
        let n = base + NEXT.fetch_add(1, Ordering::SeqCst) % 2000;
        if !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            return n;
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl Gateway {
    pub async fn start(options: Options<'_>) -> Gateway {
        let workspace = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let key_hex: String = (0..32).map(|_| format!("{:02x}", rand_byte())).collect();
        let key_file = home.path().join("gateway.key");
        std::fs::write(&key_file, format!("{key_hex}\n")).unwrap();
        let port = free_port();
        let display = free_display();
        let log = home.path().join("gateway.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_nightshift-gateway"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--session", SESSION])
            .arg("--key-file")
            .arg(&key_file)
            .arg("--workspace")
            .arg(workspace.path())
            .args(["--display", &display.to_string()])
            .args(["--vnc-port", &free_port().to_string()])
            .args(["--vnc-view-port", &free_port().to_string()])
            .args(["--devtools-port", &free_port().to_string()])
            .args(["--vscode-port", &free_port().to_string()])
            .args(["--max-tabs", &options.max_tabs.to_string()])
            .args(["--services", options.services])
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_DATA_HOME", home.path().join(".local/share"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(millis) = options.header_timeout_ms {
            command.args(["--header-timeout-ms", &millis.to_string()]);
        }
        if let Some(path) = &options.path {
            command.env("PATH", path);
        }
        let child = command.spawn().expect("the gateway binary starts");
        let gateway = Gateway {
            base: format!("http://127.0.0.1:{port}"),
            key_hex,
            display,
            workspace,
            home,
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/healthz", gateway.base)).await
                && response.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not answer /healthz within 15 s; its log:\n{}",
                gateway.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!key_file.exists(), "the gateway must delete its key file");
        gateway
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn key(&self) -> GatewayKey {
        GatewayKey::from_hex(&self.key_hex).unwrap()
    }

    pub fn token(&self, role: GatewayRole) -> String {
        self.token_for(SESSION, role, now_ms() + 600_000)
    }

    pub fn token_for(&self, session: &str, role: GatewayRole, expires_at_ms: u64) -> String {
        self.key()
            .mint(&GatewayClaims {
                session_id: session.into(),
                user_id: "user-1".into(),
                role,
                expires_at_ms,
            })
            .unwrap()
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Opens a WebSocket with the token as a bearer header.
    pub async fn connect(
        &self,
        path: &str,
        token: &str,
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        let mut request = self.ws_url(path).into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let connecting = tokio_tungstenite::connect_async(request);
        let (socket, _) = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .expect("the WebSocket handshake answered within 10 s")?;
        Ok(socket)
    }

    /// The status of `service` once it is ready; fails naming what to install if it
    /// becomes unavailable or never gets ready.
    pub async fn wait_ready(&self, service: &str, within: Duration, install: &str) {
        let token = self.token(GatewayRole::Viewer);
        let deadline = Instant::now() + within;
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            let status: serde_json::Value = reqwest::Client::new()
                .get(format!("{}/status", self.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let entry = status["services"]
                .as_array()
                .unwrap()
                .iter()
                .find(|entry| entry["name"] == service)
                .cloned()
                .unwrap();
            if entry["state"] == "ready" {
                return;
            }
            let reason = entry["reason"].as_str().unwrap_or_default();
            assert!(
                !reason.contains("not installed"),
                "{service} is unavailable: {reason}. Install {install} (make setup does)."
            );
            last = entry;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{service} was not ready within {within:?} (last status {last}); gateway log:\n{}",
            self.log()
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM lets the gateway stop its services' process groups.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_byte() -> u8 {
    use std::io::Read;
    let mut byte = [0u8; 1];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut byte)
        .unwrap();
    byte[0]
}

/// Reads binary frames until their text contains `needle`; returns all text read.
pub async fn read_until(socket: &mut Socket, needle: &str, within: Duration) -> String {
    read_on(socket, String::new(), needle, within).await
}

/// [`read_until`] going on from text already read (`seen`), so a `needle` that came
/// in the same frame as an earlier one, or split across frames, is still found.
pub async fn read_on(
    socket: &mut Socket,
    mut seen: String,
    needle: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within {within:?}; read so far: {seen:?}"));
        match frame {
            Some(Ok(Message::Binary(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Some(Ok(Message::Text(text))) => seen.push_str(text.as_str()),
            Some(Ok(_)) => {}
            other => {
                panic!("the socket ended ({other:?}) before {needle:?}; read so far: {seen:?}")
            }
        }
    }
    seen
}

pub async fn send_json(socket: &mut Socket, value: serde_json::Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}
