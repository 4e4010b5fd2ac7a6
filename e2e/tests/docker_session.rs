//! A docker sandbox's way out, for real: the sandbox image built from this tree on
//! the real Docker Engine, the real sandbox backend on the docker provider with
//! `SANDBOX_DOCKER_ISOLATED=true`. The container keeps network `none`; its only way
//! out is the proxy on its loopback, carried to the backend's socket bound into it,
//! where the backend applies the isolated policy and dials from the host.
//!
//! The attacker's side: from inside the container, the host's loopback (the
//! backend's own port), private and link-local addresses and the host's own
//! addresses are refused, through the proxy and by writing to the socket directly;
//! the socket's directory cannot be changed; only an address the operator allowed
//! (`SANDBOX_ISOLATED_ALLOW`) is reached. All of it holds again after the backend
//! restarts and finds the container.

use std::process::Command;

use anyhow::{Context, bail, ensure};
use nightshift_e2e::docker::{DockerBackend, Engine};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The address the operator allows in this test: on the host's loopback, but not
/// the backend's (127.0.0.1), so the two can be told apart.
const ALLOWED: &str = "127.0.0.2";
const GREETING: &str = "hello from the host";

/// A tiny HTTP server on `address` answering [`GREETING`] to every request.
async fn greeter(address: &str) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind((address, 0)).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let _ = socket
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{GREETING}",
                            GREETING.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    Ok(port)
}

/// The host's own IPv4 addresses beside loopback (`hostname -I`).
fn host_addresses() -> Vec<String> {
    Command::new("hostname")
        .arg("-I")
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .filter(|address| address.parse::<std::net::Ipv4Addr>().is_ok())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

async fn the_way_out_follows_the_policy(
    backend: &DockerBackend,
    id: &str,
    allowed_port: u16,
) -> anyhow::Result<()> {
    let (_, env) = backend
        .sh(id, "echo \"$HTTPS_PROXY $HTTP_PROXY\"", "")
        .await?;
    ensure!(
        env.trim() == "http://127.0.0.1:3128 http://127.0.0.1:3128",
        "the proxy is not in the environment: {env}"
    );
    let backend_port: u16 = backend.url.rsplit(':').next().unwrap_or_default().parse()?;

    // Refused: the backend's own port on the host's loopback, private, link-local
    // and the host's own addresses, in plain HTTP and as CONNECT tunnels (`NO_PROXY`
    // names loopback, for the container's own services: the proxy is asked for it
    // explicitly, as an attacker would).
    let mut refused = vec![
        format!("127.0.0.1:{backend_port}"),
        format!("localhost:{backend_port}"),
        "10.0.0.1:80".to_string(),
        "192.168.0.1:80".to_string(),
        "169.254.169.254:80".to_string(),
    ];
    refused.extend(
        host_addresses()
            .into_iter()
            .map(|address| format!("{address}:{backend_port}")),
    );
    for target in &refused {
        let (_, output) = backend
            .sh(
                id,
                &format!(
                    "curl -s --noproxy '' --max-time 15 -w ' plain=%{{http_code}}' http://{target}/v1/health; \
                     curl -s --noproxy '' -o /dev/null --max-time 15 -p -w ' tunnel=%{{http_connect}}' http://{target}/v1/health"
                ),
                "",
            )
            .await?;
        ensure!(
            output.contains("refused by the sandbox's network policy")
                && output.contains("plain=403")
                && output.contains("tunnel=403"),
            "{target} was not refused: {output}"
        );
    }

    // Writing to the socket directly is no way around the proxy's policy: the
    // policy is the backend's.
    let (_, output) = backend
        .sh(
            id,
            &format!(
                "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); \
                 s.connect('/run/nightshift-egress/egress.sock'); \
                 s.sendall(b'CONNECT 127.0.0.1:{backend_port} HTTP/1.1\\r\\n\\r\\n'); \
                 print(s.recv(200).decode())\""
            ),
            "",
        )
        .await?;
    ensure!(
        output.starts_with("HTTP/1.1 403"),
        "the socket, written to directly, let the backend's port through: {output}"
    );
    // The socket's directory is the backend's: read-only in the container.
    let (_, output) = backend
        .sh(
            id,
            "touch /run/nightshift-egress/planted 2>&1 || echo cannot-write; \
             rm -f /run/nightshift-egress/egress.sock 2>&1 || echo cannot-remove",
            "",
        )
        .await?;
    ensure!(
        output.contains("cannot-write") && output.contains("cannot-remove"),
        "the container changed the socket's directory: {output}"
    );
    // Without the proxy there is no route at all.
    let (_, output) = backend
        .sh(
            id,
            &format!(
                "(timeout 5 bash -c 'echo > /dev/tcp/{ALLOWED}/{allowed_port}' 2>/dev/null && echo REACHED); \
                 echo routes=$(tail -n +2 /proc/net/route | wc -l)"
            ),
            "",
        )
        .await?;
    ensure!(
        !output.contains("REACHED") && output.contains("routes=0"),
        "the container has a network of its own: {output}"
    );

    // Allowed: the operator's address, in plain HTTP and through a tunnel.
    let (code, output) = backend
        .sh(
            id,
            &format!(
                "curl -sS --max-time 15 http://{ALLOWED}:{allowed_port}/ && echo && \
                 curl -sS --max-time 15 -p http://{ALLOWED}:{allowed_port}/"
            ),
            "",
        )
        .await?;
    ensure!(
        code == 0 && output.matches(GREETING).count() == 2,
        "the allowed address was not reached: {output}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_docker_sandbox_goes_out_only_where_the_backend_allows() -> anyhow::Result<()> {
    let Some(engine) = Engine::find("docker_session")? else {
        return Ok(());
    };
    let image = engine.sandbox_image()?;
    let allowed_port = greeter(ALLOWED).await?;
    let mut backend = DockerBackend::start_with(
        &engine,
        &image,
        &[
            ("SANDBOX_DOCKER_ISOLATED", "true"),
            ("SANDBOX_ISOLATED_ALLOW", ALLOWED),
        ],
    )
    .await?;
    let created: Value = backend
        .request(Method::POST, "/v1/sandboxes")
        .json(&json!({"provider": "docker"}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"]
        .as_str()
        .with_context(|| format!("no sandbox: {created}"))?
        .to_string();
    let outcome = async {
        ensure!(
            created["network"] == "isolated",
            "isolated is not the docker provider's default: {created}"
        );
        the_way_out_follows_the_policy(&backend, &id, allowed_port).await?;
        // A restarted backend finds the container running and serves its way out
        // again, with the same policy.
        backend.restart().await?;
        the_way_out_follows_the_policy(&backend, &id, allowed_port).await
    }
    .await;
    // What the proxy inside said, for a failure's report.
    let (_, inside) = backend
        .sh(
            &id,
            "cat /run/nightshift/egress.log; ls -la /run/nightshift-egress; id; ps -ef; curl -sv http://127.0.0.1:9/ 2>&1 | tail -5",
            "",
        )
        .await
        .unwrap_or_default();
    let _ = backend
        .request(Method::DELETE, &format!("/v1/sandboxes/{id}"))
        .send()
        .await;
    if let Err(error) = outcome {
        bail!(
            "{error:#}\nin the container:\n{inside}\nbackend log:\n{}",
            backend.logs()
        );
    }
    Ok(())
}
