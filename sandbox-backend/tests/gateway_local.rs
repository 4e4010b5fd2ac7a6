//! The gateway side of the local provider, for real: the `sandbox-backend` binary with
//! bubblewrap sandboxes on this machine. A real HTTP and WebSocket server listens on
//! the sandbox's own loopback (a small Python program run through the processes API,
//! so these tests do not need the `nightshift-gateway` binary); the relay must reach
//! exactly port 9000 of that one sandbox, whatever the request says, and nothing
//! without the backend's bearer token. A stand-in gateway (a shell script bound in
//! as `GATEWAY_BIN`) shows how the gateway is started, given its key and restarted.

mod conformance;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use conformance::Client;
use futures::{SinkExt, StreamExt};
use nightshift_protocol::sandbox::SandboxStatus;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "gateway-backend-token";
const KEY: &str = "5f1c2a9be0d34c7a8e6b1f2d3c4b5a69788796a5b4c3d2e1f00112233445566a";

/// An HTTP server answering every request with what it saw (its port, method, path,
/// headers and body) as JSON, and echoing WebSocket text frames (RFC 6455, enough
/// for short frames). `python3 echo.py <port>`.
const ECHO_SERVER: &str = r#"
import base64, hashlib, json, struct, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])

class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        seen = {"port": PORT, "method": self.command, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        data = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            reply = ("port %d: " % PORT).encode() + payload
            size = bytes([len(reply)]) if len(reply) < 126 else b"\x7e" + struct.pack(">H", len(reply))
            self.wfile.write(bytes([0x81]) + size + reply)
            self.wfile.flush()

ThreadingHTTPServer(("127.0.0.1", PORT), Echo).serve_forever()
"#;

/// A stand-in for `nightshift-gateway`: records its arguments and its key file
/// (mode and contents) in the workspace, deletes the key file as the gateway does,
/// then serves HTTP on the port it was given until it is killed.
const STAND_IN_GATEWAY: &str = r#"#!/bin/sh
key_file=""
listen=""
while [ $# -gt 0 ]; do
  case "$1" in
    --key-file) key_file="$2"; shift ;;
    --listen) listen="$2"; shift ;;
  esac
  shift
done
echo "start mode=$(stat -c %a "$key_file") key=$(cat "$key_file")" >> /workspace/gateway.log
rm -f "$key_file"
exec python3 -m http.server "${listen##*:}" --bind 127.0.0.1 --directory /workspace
"#;

struct Backend {
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: std::process::Child,
    _temp: tempfile::TempDir,
}

impl Backend {
    /// A backend whose `GATEWAY_BIN` is `gateway_bin`.
    async fn start(gateway_bin: &Path) -> Backend {
        Backend::start_in(gateway_bin, tempfile::tempdir().unwrap(), 0).await
    }

    /// A backend on `temp/data` (a later backend on the same directory reattaches
    /// to the sandboxes of an earlier one) keeping `warm_pool` sandboxes started.
    async fn start_in(gateway_bin: &Path, temp: tempfile::TempDir, warm_pool: usize) -> Backend {
        Backend::start_with(gateway_bin, temp, warm_pool, Duration::from_secs(60)).await
    }

    /// [`Backend::start_in`] with the length of one idle minute set.
    async fn start_with(
        gateway_bin: &Path,
        temp: tempfile::TempDir,
        warm_pool: usize,
        idle_minute: Duration,
    ) -> Backend {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = temp.path().join("data");
        let log = temp.path().join(format!("backend-{port}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox-backend"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SANDBOX_BACKEND_TOKEN", TOKEN)
            .env("SANDBOX_BACKEND_LISTEN", format!("127.0.0.1:{port}"))
            .env("NIGHTSHIFT_DATA_DIR", &data_dir)
            .env("GATEWAY_BIN", gateway_bin)
            .env("SANDBOX_WARM_POOL", warm_pool.to_string())
            .env("SANDBOX_ORPHAN_GRACE_SECS", "5")
            .env("SANDBOX_ALLOW_UNLIMITED", "true")
            .env(
                "SANDBOX_IDLE_MINUTE_MS",
                idle_minute.as_millis().to_string(),
            )
            // Everything the backend says, so the test can look for the key in it.
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        let backend = Backend {
            port,
            data_dir,
            log,
            child,
            _temp: temp,
        };
        let url = format!("{}/v1/health", backend.base());
        for _ in 0..200 {
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return backend;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the backend did not come up: {}",
            std::fs::read_to_string(&backend.log).unwrap_or_default()
        );
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> Client {
        Client::new(self.base(), TOKEN.into())
    }

    fn workspace(&self, id: &str) -> PathBuf {
        self.data_dir.join("sandboxes").join(id).join("workspace")
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Backend {
    /// Stops the backend (SIGTERM, as an operator would) and hands back its
    /// directory; its sandboxes keep running for the next one.
    fn stop(mut self) -> tempfile::TempDir {
        self.terminate();
        std::mem::replace(&mut self._temp, tempfile::tempdir().unwrap())
    }

    fn terminate(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Writes the echo server into the sandbox and starts it on `port` of its loopback;
/// returns once it answers there (checked from inside).
async fn serve_echo(client: &Client, id: &str, port: u16) {
    client
        .call_raw(
            "PUT",
            &format!("/v1/sandboxes/{id}/files?path=echo.py"),
            Some(ECHO_SERVER.as_bytes().to_vec()),
        )
        .await
        .expect(204, "write echo.py")
        .unwrap();
    client
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            Some(json!({"command": "python3", "args": ["echo.py", port.to_string()]})),
        )
        .await
        .expect(201, "start the echo server")
        .unwrap();
    let probe = format!(
        "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/ready', timeout=1)"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let result = client
            .exec_result(
                id,
                json!({"command": "python3", "args": ["-c", probe], "env": {"NO_PROXY": "*"}}),
            )
            .await
            .unwrap();
        if result.exit.code == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the echo server on {port} did not come up: {result:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the echo server saw of a request sent through the relay.
async fn through_relay(backend: &Backend, id: &str, rest: &str) -> (u16, Value) {
    let response = http()
        .get(format!(
            "{}/v1/sandboxes/{id}/gateway{rest}",
            backend.base()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends `head` (a raw HTTP/1.1 request head) to the backend and reads the answer.
async fn raw_request(backend: &Backend, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", backend.port))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the backend answers a raw request")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

async fn create(client: &Client, body: Value) -> String {
    client.create(body).await.unwrap().id
}

#[tokio::test]
async fn http_through_the_relay_reaches_port_9000_of_the_sandbox_and_nothing_else() {
    let backend = Backend::start(Path::new("/nonexistent/nightshift-gateway")).await;
    let client = backend.client();
    let target = create(&client, json!({})).await;
    let neighbour = create(&client, json!({})).await;
    serve_echo(&client, &target, 9000).await;
    // Another port of the same sandbox, and the neighbour's own servers.
    serve_echo(&client, &target, 9001).await;
    serve_echo(&client, &neighbour, 9001).await;

    // A plain request arrives with its path and query, and its answer comes back.
    let (status, seen) = through_relay(&backend, &target, "/vscode/a?x=1&token=t").await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["port"], 9000);
    assert_eq!(seen["path"], "/vscode/a?x=1&token=t");
    assert_eq!(http_get_base(&backend, &target).await["path"], "/");
    // The backend's own token never reaches the sandbox; the gateway's does, from
    // its own header.
    let response = http()
        .post(format!(
            "{}/v1/sandboxes/{target}/gateway/upload",
            backend.base()
        ))
        .bearer_auth(TOKEN)
        .header("x-gateway-authorization", "Bearer g1.for-the-gateway")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body"], "payload");
    assert_eq!(
        seen["headers"]["authorization"],
        "Bearer g1.for-the-gateway"
    );
    assert!(
        !seen.to_string().contains(TOKEN),
        "the backend's token leaked: {seen}"
    );

    // Path tricks only change the path the gateway reads, never the port (sent
    // raw: an HTTP client would resolve the dot segments before sending).
    for rest in [
        "/../9001",
        "/../../../sandboxes/x/gateway/",
        "/%2e%2e/%2e%2e/9001",
        "/..%2f..%2f127.0.0.1:9001",
        "//127.0.0.1:9001/",
        "/http://127.0.0.1:9001/",
    ] {
        let answer = raw_request(
            &backend,
            &format!(
                "GET /v1/sandboxes/{target}/gateway{rest} HTTP/1.1\r\n\
                 Host: 127.0.0.1:{}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n",
                backend.port
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{rest}: {answer}");
        assert!(answer.contains("\"port\": 9000"), "{rest}: {answer}");
        // Python's server reads a leading `//` as `/`; the rest arrives as sent.
        let path = format!("/{}", rest.trim_start_matches('/'));
        assert!(
            answer.contains(&format!("\"path\": \"{path}\"")),
            "{rest}: {answer}"
        );
    }
    // Nor does the Host header or an absolute-form request target.
    let answer = raw_request(
        &backend,
        &format!(
            "GET http://127.0.0.1:9001/v1/sandboxes/{target}/gateway/abs HTTP/1.1\r\n\
             Host: 127.0.0.1:9001\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("\"port\": 9000") && answer.contains("\"path\": \"/abs\""),
        "{answer}"
    );
    assert!(
        answer.contains("\"host\": \"127.0.0.1:9001\""),
        "Host is passed on as is: {answer}"
    );

    // The neighbour's relay reaches the neighbour's loopback, where nothing listens
    // on 9000: not this sandbox's port, not the host's.
    let (status, seen) = through_relay(&backend, &neighbour, "/").await;
    assert_eq!(status, 503, "{seen}");
    assert_eq!(seen["error"]["code"], "sandbox_unavailable");

    // Without the backend's token, or with another, nothing is relayed.
    for token in [None, Some("wrong-token")] {
        let mut request = http().get(format!("{}/v1/sandboxes/{target}/gateway/", backend.base()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    // A sandbox that does not exist is a 404 in the usual envelope.
    let (status, seen) = through_relay(&backend, "sbx_none", "/").await;
    assert_eq!(
        (status, seen["error"]["code"].clone()),
        (404, json!("sandbox_not_found"))
    );
    // A body over the cap is refused before anything reaches the sandbox.
    let response = http()
        .put(format!(
            "{}/v1/sandboxes/{target}/gateway/big",
            backend.base()
        ))
        .bearer_auth(TOKEN)
        .body(vec![b'x'; 17 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");

    // A stopped sandbox has no gateway to reach.
    client.stop(&target).await.unwrap();
    let (status, seen) = through_relay(&backend, &target, "/").await;
    assert_eq!(
        (status, seen["error"]["code"].clone()),
        (409, json!("conflict"))
    );
}

async fn http_get_base(backend: &Backend, id: &str) -> Value {
    let response = http()
        .get(format!("{}/v1/sandboxes/{id}/gateway", backend.base()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_websocket_through_the_relay_talks_to_the_sandboxes_server_both_ways() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let backend = Backend::start(Path::new("/nonexistent/nightshift-gateway")).await;
    let client = backend.client();
    let id = create(&client, json!({"network": "none"})).await;
    serve_echo(&client, &id, 9000).await;

    let url = format!(
        "ws://127.0.0.1:{}/v1/sandboxes/{id}/gateway/terminal/1",
        backend.port
    );
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut socket, response) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("the upgrade is answered")
    .expect("the relay switches protocols");
    assert_eq!(response.status(), 101);
    for text in ["hello", "second message"] {
        socket.send(Message::text(text)).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an echo within 10 s")
            .expect("the socket stays open")
            .unwrap();
        assert_eq!(echoed, Message::text(format!("port 9000: {text}")));
    }
    let _ = socket.close(None).await;

    // Without the token the upgrade is refused before it reaches the sandbox.
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

/// What a client sends through a relayed WebSocket keeps its sandbox from being
/// stopped as idle; an open but silent connection does not.
#[tokio::test]
async fn typing_through_the_relay_keeps_a_sandbox_awake_and_a_silent_socket_does_not() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let minute = Duration::from_secs(2);
    let backend = Backend::start_with(
        Path::new("/nonexistent/nightshift-gateway"),
        tempfile::tempdir().unwrap(),
        0,
        minute,
    )
    .await;
    let client = backend.client();
    let id = create(
        &client,
        json!({"network": "none", "idle_timeout_minutes": 1}),
    )
    .await;
    serve_echo(&client, &id, 9000).await;
    let mut request = format!(
        "ws://127.0.0.1:{}/v1/sandboxes/{id}/gateway/terminal/1",
        backend.port
    )
    .into_client_request()
    .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("the upgrade is answered")
    .expect("the relay switches protocols");

    // Three idle minutes of typing, a key every quarter minute.
    let typing = Instant::now();
    while typing.elapsed() < minute * 3 {
        socket.send(Message::text("k")).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an echo within 10 s");
        assert!(echoed.is_some_and(|m| m.is_ok()), "the socket stays open");
        tokio::time::sleep(minute / 4).await;
    }
    let status = client.get(&id).await.unwrap();
    assert_eq!(
        status.status,
        SandboxStatus::Ready,
        "a sandbox in use was stopped: {status:?}"
    );

    // The socket stays open, silent: the sandbox goes idle all the same.
    let stopped = client
        .wait_status(&id, SandboxStatus::Stopped, minute * 6)
        .await
        .unwrap();
    assert!(
        stopped
            .status_reason
            .as_deref()
            .is_some_and(|reason| reason.contains("idle")),
        "{stopped:?}"
    );
    drop(socket);
}

#[tokio::test]
async fn a_gateway_is_started_with_its_key_restarted_and_its_key_never_shown() {
    // The stand-in gateway lives where the sandbox's host user can read it.
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        bin_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let gateway_bin = bin_dir.path().join("nightshift-gateway");
    std::fs::write(&gateway_bin, STAND_IN_GATEWAY).unwrap();
    std::fs::set_permissions(
        &gateway_bin,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let backend = Backend::start(&gateway_bin).await;
    let client = backend.client();

    // Bad gateway fields are refused and create nothing.
    for gateway in [
        json!({"session": "s1", "key": &KEY[1..]}),
        json!({"session": "s1", "key": KEY.replace('a', "z")}),
        json!({"session": "a/b", "key": KEY}),
        json!({"session": "s1"}),
        json!({"session": "s1", "key": KEY, "port": 22}),
    ] {
        let answer = client
            .call("POST", "/v1/sandboxes", Some(json!({"gateway": gateway})))
            .await;
        assert_eq!(answer.status / 100, 4, "{gateway}: {}", answer.text());
        assert!(
            ["invalid_request", "invalid_json"].contains(&answer.code().as_str()),
            "{}",
            answer.text()
        );
        assert!(
            !answer.text().contains(&KEY[1..]),
            "the key is not echoed back"
        );
    }
    let listed = client.call("GET", "/v1/sandboxes", None).await.json();
    assert_eq!(listed["sandboxes"], json!([]), "nothing was created");

    let id = create(
        &client,
        json!({"gateway": {"session": "sess_42", "key": KEY}}),
    )
    .await;
    let log = backend.workspace(&id).join("gateway.log");
    let started = |count: usize| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
            >= count
    };
    wait_until(Duration::from_secs(20), || started(1)).await;
    let first = std::fs::read_to_string(&log).unwrap();
    assert_eq!(first.trim(), format!("start mode=600 key={KEY}"));
    // The gateway deleted its key file, and it is reached through the relay.
    let home_key = backend
        .data_dir
        .join("sandboxes")
        .join(&id)
        .join("home/.nightshift-gateway.key");
    assert!(!home_key.exists());
    let response = wait_for_relay(&backend, &id, "/gateway.log").await;
    assert!(response.contains("start mode=600"), "{response}");

    let tunnels = client
        .call("GET", &format!("/v1/sandboxes/{id}/tunnels"), None)
        .await
        .expect(200, "tunnels")
        .unwrap()
        .json();
    assert_eq!(
        tunnels["gateway"]["url"],
        format!("{}/v1/sandboxes/{id}/gateway", backend.base())
    );
    assert_eq!(tunnels["gateway"]["headers"], json!({}));
    assert_eq!(tunnels["gateway"]["status"], "running");

    // A gateway that dies is started again, with its key written again.
    let killed = client
        .sh(&id, "pkill -f 'http[.]server'; echo done")
        .await
        .unwrap();
    assert_eq!(killed.stdout, "done\n", "{killed:?}");
    wait_until(Duration::from_secs(20), || started(2)).await;
    let second = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        second.lines().nth(1),
        Some(format!("start mode=600 key={KEY}").as_str())
    );
    wait_for_relay(&backend, &id, "/gateway.log").await;

    // The key is in no answer about the sandbox and in nothing the backend logged.
    for path in [
        format!("/v1/sandboxes/{id}"),
        "/v1/sandboxes".to_string(),
        format!("/v1/sandboxes/{id}/tunnels"),
    ] {
        let answer = client.call("GET", &path, None).await;
        assert_eq!(answer.status, 200);
        assert!(!answer.text().contains(KEY), "{path} shows the key");
    }
    let logs = backend.logs();
    assert!(
        logs.contains("gateway started"),
        "the log is captured: {logs}"
    );
    assert!(!logs.contains(KEY), "the backend logged the key");

    // A backend that restarts finds the sandbox running and starts its gateway
    // again (the old one ended with the old backend's connection to the agent).
    let temp = backend.stop();
    let backend = Backend::start_in(&gateway_bin, temp, 1).await;
    let client = backend.client();
    wait_until(Duration::from_secs(20), || started(3)).await;
    let response = wait_for_relay(&backend, &id, "/gateway.log").await;
    assert_eq!(response.lines().count(), 3, "{response}");
    assert!(
        !backend.logs().contains(KEY),
        "the new backend logged the key"
    );

    // A sandbox taken from the warm pool (started before anyone asked for a
    // gateway) has the binary bound all the same.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warm = create(
        &client,
        json!({"gateway": {"session": "sess_43", "key": KEY}}),
    )
    .await;
    let warm_log = backend.workspace(&warm).join("gateway.log");
    wait_until(Duration::from_secs(20), || warm_log.exists()).await;
    client.destroy(&warm).await.unwrap();

    // Stopping the sandbox stops its gateway.
    client.stop(&id).await.unwrap();
    let tunnels = client
        .call("GET", &format!("/v1/sandboxes/{id}/tunnels"), None)
        .await
        .json();
    assert_eq!(tunnels["gateway"]["status"], "unavailable", "{tunnels}");
}

#[tokio::test]
async fn without_the_gateway_binary_the_sandbox_starts_and_says_why_its_gateway_is_unavailable() {
    let backend = Backend::start(Path::new("/nonexistent/nightshift-gateway")).await;
    let client = backend.client();
    let id = create(
        &client,
        json!({"gateway": {"session": "sess_1", "key": KEY}}),
    )
    .await;
    assert_eq!(client.sh(&id, "echo up").await.unwrap().stdout, "up\n");
    // Said from the start: never `running` first.
    let tunnels = client
        .call("GET", &format!("/v1/sandboxes/{id}/tunnels"), None)
        .await
        .expect(200, "tunnels")
        .unwrap()
        .json();
    assert_eq!(tunnels["gateway"]["status"], "unavailable", "{tunnels}");
    let reason = tunnels["gateway"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("/nonexistent/nightshift-gateway"),
        "{reason}"
    );
    // Nothing answers on its port, and the relay says so.
    let (status, seen) = through_relay(&backend, &id, "/").await;
    assert_eq!(
        (status, seen["error"]["code"].clone()),
        (503, json!("sandbox_unavailable"))
    );

    // A sandbox created without a gateway says that instead; one sharing the host's
    // network cannot have one.
    let plain = create(&client, json!({})).await;
    let tunnels = client
        .call("GET", &format!("/v1/sandboxes/{plain}/tunnels"), None)
        .await
        .json();
    assert_eq!(tunnels["gateway"]["status"], "none", "{tunnels}");
    let answer = client
        .call(
            "POST",
            "/v1/sandboxes",
            Some(json!({"network": "private", "gateway": {"session": "s", "key": KEY}})),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
}

async fn wait_until(limit: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs `rest` through the relay until it answers 200 (the gateway may still be
/// starting); returns the body.
async fn wait_for_relay(backend: &Backend, id: &str, rest: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = http()
            .get(format!(
                "{}/v1/sandboxes/{id}/gateway{rest}",
                backend.base()
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status == 200 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the relay kept answering {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
