//! A docker sandbox's dev environment through the backend's relay, for real: the
//! sandbox image built from this tree (offline, on the real Docker Engine), the real
//! sandbox backend on the docker provider, the gateway started inside the container
//! with its session's key; the terminal, the desktop (VNC) and VS Code answer through
//! `/v1/sandboxes/{id}/gateway/...`, which reaches the container only through an
//! exec of `nightshift-gateway connect` (the container keeps network `none`, no port
//! is published).
//!
//! A gateway that dies is started again by its supervisor in the container. The
//! attacker's side: the key is in no command line, environment or file of the
//! container once the gateway has read it; what the sandbox listens on beside the
//! gateway is not reachable through the relay whatever the request names; and the
//! container reaches no service of the host (the backend on its loopback).

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use nightshift_e2e::docker::{DockerBackend, Engine};
use nightshift_e2e::panels::run_in_terminal;
use nightshift_session::gateway_token::{
    GatewayClaims, GatewayKey, GatewayRole, derive_session_key_hex,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SESSION: &str = "ses_docker_gateway";
/// How long the desktop and VS Code get to come up in a fresh container.
const SERVICES_WAIT: Duration = Duration::from_secs(120);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn token(key: &str, role: GatewayRole) -> String {
    GatewayKey::from_hex(key)
        .unwrap()
        .mint(&GatewayClaims {
            session_id: SESSION.into(),
            user_id: "usr_docker".into(),
            role,
            expires_at_ms: now_ms() + 600_000,
        })
        .unwrap()
}

/// `GET` through the relay with a gateway token: status and body.
async fn relayed(
    backend: &DockerBackend,
    id: &str,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut request = backend.request(Method::GET, &format!("/v1/sandboxes/{id}/gateway{path}"));
    if let Some(token) = token {
        request = request.header("x-gateway-authorization", format!("Bearer {token}"));
    }
    let answer = request.send().await?;
    Ok((answer.status().as_u16(), answer.text().await?))
}

/// A WebSocket through the relay (the gateway token in the query, as a panel sends it).
async fn relayed_socket(
    backend: &DockerBackend,
    id: &str,
    path: &str,
    token: &str,
) -> anyhow::Result<nightshift_e2e::panels::Socket> {
    let address = backend.url.trim_start_matches("http://").to_string();
    let url = format!("ws://{address}/v1/sandboxes/{id}/gateway{path}?token={token}");
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", backend.token).parse()?,
    );
    let stream = tokio::net::TcpStream::connect(&address).await?;
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async(request, stream),
    )
    .await
    .context("the upgrade did not answer")??;
    Ok(socket)
}

/// Runs `script` in the sandbox through the exec API: exit code and output.
async fn sh(backend: &DockerBackend, id: &str, script: &str) -> anyhow::Result<(i64, String)> {
    sh_with_input(backend, id, script, "").await
}

/// [`sh`] with `input` on the script's stdin.
async fn sh_with_input(
    backend: &DockerBackend,
    id: &str,
    script: &str,
    input: &str,
) -> anyhow::Result<(i64, String)> {
    backend.sh(id, script, input).await
}

/// Waits until the gateway says every service is ready.
async fn services_ready(backend: &DockerBackend, id: &str, token: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + SERVICES_WAIT;
    loop {
        let (status, body) = relayed(backend, id, "/status", Some(token)).await?;
        if status == 200 {
            let seen: Value = serde_json::from_str(&body)?;
            let services = seen["services"].as_array().cloned().unwrap_or_default();
            if !services.is_empty() && services.iter().all(|service| service["state"] == "ready") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the services were not all ready in time: {seen}");
            }
        } else if Instant::now() > deadline {
            bail!("/status answered {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn panels_work(backend: &DockerBackend, id: &str, key: &str) -> anyhow::Result<()> {
    // The gateway's own health needs no token; it answers once it listens.
    let deadline = Instant::now() + nightshift_e2e::WAIT;
    loop {
        match relayed(backend, id, "/healthz", None).await {
            Ok((200, _)) => break,
            other if Instant::now() > deadline => bail!("the gateway never answered: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let owner = token(key, GatewayRole::Owner);
    // Without a token, or with one of another key, the gateway refuses.
    let (status, _) = relayed(backend, id, "/status", None).await?;
    ensure!(status == 401, "/status without a token answered {status}");
    let stranger = token(&"ab".repeat(32), GatewayRole::Owner);
    let (status, _) = relayed(backend, id, "/status", Some(&stranger)).await?;
    ensure!(
        status == 401,
        "/status with a foreign token answered {status}"
    );

    services_ready(backend, id, &owner).await?;

    // The terminal: a shell in the container.
    let mut terminal = relayed_socket(backend, id, "/terminal/main", &owner).await?;
    run_in_terminal(
        &mut terminal,
        "echo in-the-box-$((6*7)) $(id -u)",
        "in-the-box-42 1000",
    )
    .await?;
    let _ = terminal.close(None).await;

    // The desktop: the VNC server's RFB greeting through the WebSocket.
    let mut desktop = relayed_socket(backend, id, "/desktop/vnc", &owner).await?;
    let greeting = tokio::time::timeout(Duration::from_secs(30), desktop.next())
        .await
        .context("no RFB greeting")?
        .context("the desktop closed")??;
    match greeting {
        Message::Binary(bytes) => ensure!(bytes.starts_with(b"RFB "), "not RFB: {bytes:?}"),
        other => bail!("the desktop sent {other:?}"),
    }
    let _ = desktop.close(None).await;

    // VS Code: code-server's workbench page.
    let (status, body) = relayed(backend, id, "/vscode/", Some(&owner)).await?;
    ensure!(
        status == 200 && body.contains("workbench"),
        "VS Code answered {status}: {}",
        body.chars().take(400).collect::<String>()
    );
    Ok(())
}

/// A gateway that dies (here: killed by the sandbox's own user) is started again by
/// its supervisor in the container, with its key.
async fn comes_back_when_killed(
    backend: &DockerBackend,
    id: &str,
    key: &str,
) -> anyhow::Result<()> {
    // `comm` is cut to 15 characters; the supervisor is a shell and survives.
    let (code, output) = sh(backend, id, "pkill -x nightshift-gate && echo killed").await?;
    ensure!(
        code == 0 && output.contains("killed"),
        "the gateway was not killed: {output}"
    );
    let owner = token(key, GatewayRole::Owner);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = relayed(backend, id, "/status", Some(&owner)).await?;
        if status == 200 {
            return Ok(());
        }
        if Instant::now() > deadline {
            let (_, log) = sh(backend, id, "cat /run/nightshift/gateway.log").await?;
            bail!("the gateway did not come back: {status} {body}\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a process in the container can do against the relay and the host.
async fn attacker_gets_nothing(
    backend: &DockerBackend,
    engine: &Engine,
    id: &str,
    key: &str,
) -> anyhow::Result<()> {
    // The key was read and deleted; no environment or command line holds it.
    // (The key comes in on stdin, so no command line of this probe holds it.)
    let (_, found) = sh_with_input(
        backend,
        id,
        "key=$(cat); ls /run/nightshift; cat /proc/*/environ /proc/*/cmdline 2>/dev/null \
         | tr '\\0' '\\n' | grep -cF -f <(printf '%s\\n' \"$key\") || true",
        key,
    )
    .await?;
    ensure!(
        !found.contains("gateway.key"),
        "the key file stayed: {found}"
    );
    ensure!(
        found.trim().ends_with('0'),
        "the key is visible in the container: {found}"
    );
    let container = format!("nightshift-{id}");
    let inspect = engine.docker(&["inspect", &container])?;
    ensure!(
        !String::from_utf8_lossy(&inspect.stdout).contains(key),
        "docker inspect shows the key"
    );

    // A server of the sandbox's own on another port is not reached through the
    // relay, whatever the request says: the relay only ever runs the bridge to 9000.
    let (code, output) = sh(
        backend,
        id,
        "nohup python3 -m http.server 9001 --bind 127.0.0.1 >/dev/null 2>&1 & \
         for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/9001) 2>/dev/null && exit 0; sleep 0.1; done; exit 1",
    )
    .await?;
    ensure!(
        code == 0,
        "the sandbox's own server did not start: {output}"
    );
    for path in ["/", "//127.0.0.1:9001/", "/../9001/", "/%2e%2e/9001/"] {
        let (status, body) = relayed(backend, id, path, None).await?;
        ensure!(
            !body.contains("Directory listing"),
            "the relay reached port 9001 with {path:?}: {status} {body}"
        );
    }
    let answer = backend
        .request(Method::GET, &format!("/v1/sandboxes/{id}/gateway/"))
        .header("host", "127.0.0.1:9001")
        .send()
        .await?;
    let body = answer.text().await?;
    ensure!(
        !body.contains("Directory listing"),
        "Host: 9001 reached it: {body}"
    );

    // The container has no route to the host: the backend on the host's loopback
    // is out of reach, as is anything else.
    let port = backend.url.rsplit(':').next().unwrap_or_default();
    let (code, output) = sh(
        backend,
        id,
        &format!(
            "(timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo REACHED); \
             echo routes=$(tail -n +2 /proc/net/route | wc -l)"
        ),
    )
    .await?;
    ensure!(
        !output.contains("REACHED"),
        "the container reached the backend: {output}"
    );
    ensure!(
        code == 0 && output.contains("routes=0"),
        "the container has a route: {output}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_sandbox_serves_its_panels_through_the_relay_and_nothing_else()
-> anyhow::Result<()> {
    let Some(engine) = Engine::find("docker_gateway")? else {
        return Ok(());
    };
    let image = engine.sandbox_image()?;
    let backend = DockerBackend::start(&engine, &image).await?;
    let key = derive_session_key_hex(b"a deployment secret for the docker test", SESSION)?;
    let created: Value = backend
        .request(Method::POST, "/v1/sandboxes")
        .json(&json!({
            "provider": "docker",
            "gateway": {"session": SESSION, "key": key},
        }))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"]
        .as_str()
        .with_context(|| format!("no sandbox: {created}"))?
        .to_string();
    let outcome = async {
        let tunnels: Value = backend
            .request(Method::GET, &format!("/v1/sandboxes/{id}/tunnels"))
            .send()
            .await?
            .json()
            .await?;
        ensure!(
            tunnels["gateway"]["status"] == "running",
            "the gateway is not running: {tunnels}"
        );
        panels_work(&backend, &id, &key).await?;
        comes_back_when_killed(&backend, &id, &key).await?;
        attacker_gets_nothing(&backend, &engine, &id, &key).await
    }
    .await;
    let _ = backend
        .request(Method::DELETE, &format!("/v1/sandboxes/{id}"))
        .send()
        .await;
    if let Err(error) = outcome {
        bail!("{error:#}\nbackend log:\n{}", backend.logs());
    }
    Ok(())
}

/// An image without the gateway (the Engine's bare base image): the sandbox still
/// works, its gateway says why it is not there, and the relay answers a clear error
/// at once instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_the_gateway_says_so_and_the_relay_fails_fast() -> anyhow::Result<()> {
    let Some(engine) = Engine::find("docker_gateway")? else {
        return Ok(());
    };
    let backend = DockerBackend::start(&engine, &engine.base).await?;
    let key = derive_session_key_hex(b"a deployment secret for the docker test", SESSION)?;
    let created: Value = backend
        .request(Method::POST, "/v1/sandboxes")
        .json(&json!({"provider": "docker", "gateway": {"session": SESSION, "key": key}}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"]
        .as_str()
        .with_context(|| format!("no sandbox: {created}"))?
        .to_string();
    let outcome = async {
        let tunnels: Value = backend
            .request(Method::GET, &format!("/v1/sandboxes/{id}/tunnels"))
            .send()
            .await?
            .json()
            .await?;
        ensure!(
            tunnels["gateway"]["status"] == "unavailable"
                && tunnels["gateway"]["reason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains("not installed")),
            "the missing gateway is not reported: {tunnels}"
        );
        let started = Instant::now();
        let answer = backend
            .request(Method::GET, &format!("/v1/sandboxes/{id}/gateway/healthz"))
            .send()
            .await?;
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or_default();
        ensure!(
            status == 503 && body["error"]["code"] == "sandbox_unavailable",
            "the relay to a missing gateway answered {status}: {body}"
        );
        ensure!(
            started.elapsed() < Duration::from_secs(15),
            "the relay took {:?} to fail",
            started.elapsed()
        );
        let (code, output) = sh(&backend, &id, "echo still-works").await?;
        ensure!(code == 0 && output.contains("still-works"), "{output}");
        Ok(())
    }
    .await;
    let _ = backend
        .request(Method::DELETE, &format!("/v1/sandboxes/{id}"))
        .send()
        .await;
    if let Err(error) = outcome {
        bail!("{error:#}\nbackend log:\n{}", backend.logs());
    }
    Ok(())
}
