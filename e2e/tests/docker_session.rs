//! Docker sessions for real: the sandbox image built from this tree on the real
//! Docker Engine, the real sandbox backend on the docker provider with
//! `SANDBOX_DOCKER_ISOLATED=true`.
//!
//! The way out: the container keeps network `none`; its only way out is the proxy on
//! its loopback, carried to the backend's socket bound into it, where the backend
//! applies the isolated policy and dials from the host. From inside the container,
//! the host's loopback (the backend's own port), private and link-local addresses
//! and the host's own addresses are refused, through the proxy and by writing to the
//! socket directly; the socket's directory cannot be changed; only an address the
//! operator allowed (`SANDBOX_ISOLATED_ALLOW`) is reached. All of it holds again
//! after the backend restarts and finds the container.
//!
//! A whole session: the real stack (wrangler dev) whose backend runs sessions on the
//! docker provider. The runner runs inside the container and dials the Worker through
//! that way out; a scripted turn's command runs in the container as the sandbox's
//! user; the panels answer through the Worker; a command that goes after the
//! runner's config, its environment, the runner itself or the backend's port gets
//! nothing; and the runner comes back to take the next turn after it is killed in
//! the container, after the container is stopped and started again, and after the
//! backend restarts (which starts no runner on its host). A session on a GitHub
//! repository (the fake GitHub's git server, allowed on the host's loopback) clones
//! it in the container through the runner's credential helper (its socket on a
//! tmpfs of the runner's own), and a scripted turn's commit is pushed as the user.

use std::process::Command;

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use nightshift_e2e::client::Api;
use nightshift_e2e::docker::{DockerBackend, Engine};
use nightshift_e2e::fake_github::FakeGithub;
use nightshift_e2e::git_server::RepoSeed;
use nightshift_e2e::github_turn::{EDIT_MARKER, edit_and_commit, is_noreply_author, pushed_author};
use nightshift_e2e::panels::{panel_get, panel_socket, run_in_terminal};
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, free_port, port_of};
use nightshift_protocol::api::MessageState;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

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
    let backend_port = port_of(&backend.url);

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

/// The marker of the session test's turn.
const MARK: &str = "MARK-DOCKER-SESSION";
/// A file only the sandbox image has (not the host running the test).
const IMAGE_ONLY: &str = "/usr/local/bin/nightshift-entrypoint";
/// How long the desktop and VS Code get to come up in a fresh container.
const SERVICES_WAIT: Duration = Duration::from_secs(180);

/// What the turn's first command prints: where and as whom it runs.
const WHERE_AM_I: &str = "echo \"uid=$(id -u) gid=$(id -g) host=$(cat /etc/hostname)\"; \
     test -x /usr/local/bin/nightshift-entrypoint && echo image-only-file-present; \
     grep '^Cap' /proc/self/status; \
     ps -o user=,args= -u nightshift-runner";

/// What the turn's second command tries, as an attacker would: the runner's
/// config, its environment, killing it, and a port of the host it was not allowed.
fn attack(backend_port: u16) -> String {
    format!(
        "cat /run/nightshift-runner/config.json; echo config=$?; \
         ls /run/nightshift-runner; echo list=$?; \
         for pid in $(pgrep -u nightshift-runner); do cat /proc/$pid/environ; echo environ=$?; \
           kill -9 $pid; echo kill=$?; done; \
         curl -s --noproxy '' -o /dev/null --max-time 15 -w 'plain=%{{http_code}}\\n' http://127.0.0.1:{backend_port}/v1/health; \
         curl -s --noproxy '' -o /dev/null --max-time 15 -p -w 'tunnel=%{{http_connect}}\\n' http://127.0.0.1:{backend_port}/v1/health"
    )
}

/// The sandboxes the stack's backend holds.
async fn backend_sandboxes(stack: &Stack) -> anyhow::Result<Vec<Value>> {
    let answer: Value = reqwest::Client::new()
        .get(format!("{}/v1/sandboxes", stack.backend_url()))
        .bearer_auth(&stack.backend_token)
        .timeout(Duration::from_secs(30))
        .send()
        .await?
        .json()
        .await?;
    Ok(answer["sandboxes"]
        .as_array()
        .or_else(|| answer.as_array())
        .cloned()
        .unwrap_or_default())
}

/// The outputs of the session's finished tool calls, in order, once `turns` turns
/// finished.
async fn tool_outputs(api: &Api, id: &str, turns: usize) -> anyhow::Result<Vec<String>> {
    let events = api
        .history_until(id, |events| {
            events
                .iter()
                .filter(|event| {
                    serde_json::to_value(event).is_ok_and(|value| value["type"] == "turn_finished")
                })
                .count()
                >= turns
        })
        .await?;
    Ok(events
        .iter()
        .filter_map(|event| serde_json::to_value(event).ok())
        .filter(|value| value["type"] == "tool_call_finished")
        .map(|value| value["output"].as_str().unwrap_or_default().to_string())
        .collect())
}

fn panel<'a>(workspace: &'a Value, kind: &str) -> anyhow::Result<&'a Value> {
    workspace["panels"]
        .as_array()
        .and_then(|panels| panels.iter().find(|panel| panel["kind"] == kind))
        .with_context(|| format!("no {kind} panel in {workspace}"))
}

/// The terminal, the desktop and VS Code through the Worker's panel host, as with
/// the local provider.
async fn panels_work(api: &Api, id: &str) -> anyhow::Result<()> {
    let workspace: Value = api
        .expect(
            Method::GET,
            &format!("/api/sessions/{id}/workspace"),
            None,
            200,
        )
        .await?;
    let origin = workspace["origin"]
        .as_str()
        .context("an origin")?
        .to_owned();
    let deadline = tokio::time::Instant::now() + SERVICES_WAIT;
    loop {
        let (status, body) = panel_get(&origin, "/status").await?;
        let seen: Value = serde_json::from_str(&body).unwrap_or_default();
        let services = seen["services"].as_array().cloned().unwrap_or_default();
        if status == 200
            && !services.is_empty()
            && services.iter().all(|service| service["state"] == "ready")
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the services were not all ready in time: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let terminal = panel(&workspace, "terminal")?["url"]
        .as_str()
        .context("a terminal")?;
    let mut socket = panel_socket(&format!("{terminal}t1"))
        .await
        .map_err(|status| anyhow::anyhow!("the terminal was refused: {status}"))?;
    run_in_terminal(
        &mut socket,
        "echo in-the-box-$((6*7)) $(id -u) $(test -x /usr/local/bin/nightshift-entrypoint && echo image)",
        "in-the-box-42 1000 image",
    )
    .await?;

    let desktop = panel(&workspace, "desktop")?["url"]
        .as_str()
        .context("a desktop")?;
    let mut vnc = panel_socket(desktop)
        .await
        .map_err(|status| anyhow::anyhow!("the desktop was refused: {status}"))?;
    let greeting = tokio::time::timeout(Duration::from_secs(30), vnc.next())
        .await
        .context("no RFB greeting")?
        .context("the desktop closed")??;
    match greeting {
        Message::Binary(bytes) => ensure!(bytes.starts_with(b"RFB "), "not RFB: {bytes:?}"),
        other => bail!("the desktop sent {other:?}"),
    }

    let (status, body) = panel_get(&origin, "/vscode/").await?;
    ensure!(
        status == 200 && body.contains("workbench"),
        "VS Code answered {status}: {}",
        body.chars().take(400).collect::<String>()
    );
    Ok(())
}

async fn a_docker_session_journey(
    stack: &mut Stack,
    engine: &Engine,
    llm: &ScriptedLlm,
) -> anyhow::Result<()> {
    llm.on(
        MARK,
        Script::new(vec![
            Step::tool("bash", json!({ "command": WHERE_AM_I })),
            // The runner's file tools and the commands share the workspace: each
            // edits what the other wrote, in a directory either made.
            Step::tool(
                "write_file",
                json!({ "path": "notes/by-runner.txt", "content": "from the runner\n" }),
            ),
            Step::tool(
                "bash",
                json!({ "command": "echo from-the-sandbox >> notes/by-runner.txt && echo made-by-sandbox > notes/by-sandbox.txt" }),
            ),
            Step::tool(
                "edit_file",
                json!({ "path": "notes/by-sandbox.txt", "old_string": "made-by-sandbox", "new_string": "edited-by-runner" }),
            ),
            Step::tool(
                "bash",
                json!({ "command": "cat notes/by-runner.txt notes/by-sandbox.txt" }),
            ),
            Step::tool("bash", json!({ "command": attack(stack.backend_port) })),
            Step::text("Done in the container."),
        ]),
    );
    let api = stack.signed_in_api("owner@example.com").await?;
    let session = api.create_session().await?;
    // Idle: the runner in the container dialled the Worker through the way out.
    api.wait_status(&session.id, "idle").await?;
    let sandboxes = backend_sandboxes(stack).await?;
    let sandbox = sandboxes
        .iter()
        .find(|sandbox| sandbox["provider"] == "docker")
        .with_context(|| format!("no docker sandbox: {sandboxes:?}"))?;
    ensure!(sandbox["network"] == "isolated", "{sandbox}");
    let sandbox_id = sandbox["id"].as_str().context("a sandbox id")?.to_owned();
    ensure!(
        stack.runner_pids().is_empty(),
        "a runner runs on the host: {:?}",
        stack.runner_pids()
    );
    let token = stack.runner_token(&session.id)?;
    // The config went in on an exec's stdin: nothing the Engine shows holds it.
    let inspected = engine.docker(&["inspect", &format!("nightshift-{sandbox_id}")])?;
    let inspected = String::from_utf8_lossy(&inspected.stdout);
    ensure!(
        inspected.contains("nightshift-") && !inspected.contains(&token),
        "docker inspect shows the runner's token"
    );

    api.send(&session.id, &format!("{MARK} where are you?"))
        .await?;
    let outputs = tool_outputs(&api, &session.id, 1).await?;
    ensure!(outputs.len() == 6, "six tool calls ran: {outputs:?}");
    ensure!(
        outputs[4].contains("from the runner\nfrom-the-sandbox\nedited-by-runner"),
        "the runner and its commands could not edit each other's files: {outputs:?}"
    );

    // The command ran in the container, as the sandbox's user, with no capability,
    // while the runner runs there as its own user.
    let hostname = engine.docker(&[
        "inspect",
        "--format",
        "{{.Config.Hostname}}",
        &format!("nightshift-{sandbox_id}"),
    ])?;
    let hostname = String::from_utf8_lossy(&hostname.stdout).trim().to_string();
    let here = &outputs[0];
    ensure!(
        !hostname.is_empty() && here.contains(&format!("uid=1000 gid=1000 host={hostname}")),
        "the command did not run in the container {hostname:?} as the sandbox's user: {here}"
    );
    ensure!(
        !std::path::Path::new(IMAGE_ONLY).exists() && here.contains("image-only-file-present"),
        "{here}"
    );
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        ensure!(
            here.contains(&format!("{set}:\t0000000000000000")),
            "the command holds capabilities ({set}): {here}"
        );
    }
    ensure!(
        here.contains("runner --config /run/nightshift-runner/config.json"),
        "no runner of its own user in the container: {here}"
    );

    // The attacker's command got nothing.
    let attacked = &outputs[5];
    ensure!(
        !attacked.contains(&token),
        "the runner's token leaked: {attacked}"
    );
    ensure!(
        attacked.contains("config=1") && attacked.contains("list=2"),
        "the runner's directory was readable: {attacked}"
    );
    ensure!(
        attacked.contains("environ=1") && !attacked.contains("environ=0"),
        "the runner's environment was readable: {attacked}"
    );
    ensure!(
        attacked.contains("kill=1") && !attacked.contains("kill=0"),
        "the runner could be killed by its commands: {attacked}"
    );
    ensure!(
        attacked.contains("plain=403") && attacked.contains("tunnel=403"),
        "the backend's port was reached from the container: {attacked}"
    );
    // And the runner still holds the link: the turn finished.
    let messages = api.wait_settled(&session.id).await?;
    ensure!(
        messages
            .last()
            .is_some_and(|message| message.state == MessageState::Done),
        "{messages:?}"
    );

    panels_work(&api, &session.id).await?;

    // The runner is supervised in the container: killed (by its own user, as only
    // the operator can), it comes back and takes the next turn.
    let container = format!("nightshift-{sandbox_id}");
    let killed = engine.docker(&["exec", "-u", "1001", &container, "pkill", "-x", "runner"])?;
    ensure!(killed.status.success(), "no runner to kill: {killed:?}");
    next_turn_runs(llm, &api, &session.id, 2).await?;

    // And at every start of the container.
    for step in ["stop", "start"] {
        let answer = reqwest::Client::new()
            .post(format!(
                "{}/v1/sandboxes/{sandbox_id}/{step}",
                stack.backend_url()
            ))
            .bearer_auth(&stack.backend_token)
            .timeout(Duration::from_secs(120))
            .send()
            .await?;
        ensure!(
            answer.status().is_success(),
            "{step}: {}",
            answer.text().await?
        );
    }
    next_turn_runs(llm, &api, &session.id, 3).await?;

    // A restarted backend leaves the runner in the running container alone (it
    // starts none on its host) and serves its way out again: the runner's link,
    // which went through the old backend, comes back through the new one.
    stack.restart_backend().await?;
    ensure!(
        stack.runner_pids().is_empty(),
        "a restarted backend started a runner on the host"
    );
    next_turn_runs(llm, &api, &session.id, 4).await
}

/// A prompt whose command runs in the container, as the `turn`-th turn.
async fn next_turn_runs(llm: &ScriptedLlm, api: &Api, id: &str, turn: usize) -> anyhow::Result<()> {
    // A marker of its own: the first turn's would match as a prefix of it.
    let marker = format!("MARK-DOCKER-TURN-{turn}");
    llm.on(
        &marker,
        Script::new(vec![
            Step::tool(
                "bash",
                json!({ "command": format!("echo turn-{turn}-$((6*7)) $(id -u)") }),
            ),
            Step::text("Again."),
        ]),
    );
    api.send(id, &format!("{marker} again")).await?;
    let outputs = tool_outputs(api, id, turn).await?;
    let wanted = format!("turn-{turn}-42 1000");
    ensure!(
        outputs
            .last()
            .is_some_and(|output| output.contains(&wanted)),
        "turn {turn} did not run its command: {outputs:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_in_its_docker_sandbox_and_keeps_its_secrets_from_its_commands()
-> anyhow::Result<()> {
    let Some(engine) = Engine::find("docker_session")? else {
        return Ok(());
    };
    let image = engine.sandbox_image()?;
    let llm = ScriptedLlm::start().await?;
    let llm_port = port_of(&llm.base_url());
    let gh = FakeGithub::start().await?;
    gh.add_user("owner", "Owner Doe", "owner@example.com");
    gh.add_repo("owner", "app", true, &RepoSeed::small())?;
    let git_port = gh.git().port();
    let mut worker_vars = gh.worker_vars();
    worker_vars.push(("WORKSPACE_PANELS".into(), "true".into()));
    let worker_port = free_port();
    let mut stack = Stack::start_on_port(
        StackOptions {
            llm_base_url: Some(llm.base_url()),
            worker_vars,
        },
        vec![
            ("DOCKER_HOST".into(), engine.host.clone()),
            ("SANDBOX_DOCKER_IMAGE".into(), image),
            ("SANDBOX_DOCKER_ISOLATED".into(), "true".into()),
            ("SANDBOX_DEFAULT_PROVIDER".into(), "docker".into()),
            // The Worker, the LLM and the git server are on the host's loopback
            // here (deployed, they are public): the way out allows exactly their
            // ports.
            (
                "SANDBOX_ISOLATED_ALLOW".into(),
                format!("127.0.0.1:{worker_port},127.0.0.1:{llm_port},127.0.0.1:{git_port}"),
            ),
        ],
        worker_port,
    )
    .await?;
    let mut outcome = a_docker_session_journey(&mut stack, &engine, &llm).await;
    if outcome.is_ok() {
        outcome = a_repository_session(&stack, &gh, &llm).await;
    }
    let mut inside = String::new();
    if outcome.is_err() {
        // What the runner said in the container, for a failure's report.
        if let Ok(sandboxes) = backend_sandboxes(&stack).await {
            for sandbox in sandboxes {
                let name = format!("nightshift-{}", sandbox["id"].as_str().unwrap_or_default());
                if let Ok(output) = engine.docker(&[
                    "exec",
                    "-u",
                    "1001",
                    &name,
                    "sh",
                    "-c",
                    "tail -n 60 /run/nightshift-runner/runner.log; tail -n 20 /run/nightshift/egress.log",
                ]) {
                    inside.push_str(&String::from_utf8_lossy(&output.stdout));
                    inside.push_str(&String::from_utf8_lossy(&output.stderr));
                }
            }
        }
    }
    // The containers go with the test (the stack's backend is only killed).
    for sandbox in backend_sandboxes(&stack).await.unwrap_or_default() {
        let _ = reqwest::Client::new()
            .delete(format!(
                "{}/v1/sandboxes/{}",
                stack.backend_url(),
                sandbox["id"].as_str().unwrap_or_default()
            ))
            .bearer_auth(&stack.backend_token)
            .timeout(Duration::from_secs(60))
            .send()
            .await;
    }
    if let Err(error) = outcome {
        stack.dump_logs();
        bail!("{error:#}\nin the container:\n{inside}");
    }
    Ok(())
}

/// A session on `owner/app`: cloned in the container through the credential helper,
/// a scripted turn commits, the push from the app lands on the server as the user.
async fn a_repository_session(
    stack: &Stack,
    gh: &FakeGithub,
    llm: &ScriptedLlm,
) -> anyhow::Result<()> {
    llm.on(EDIT_MARKER, edit_and_commit());
    let api = stack.signed_in_api("owner@example.com").await?;
    gh.connect(&stack.worker_url(), &api, "owner", "/sessions/new")
        .await?;
    let body = json!({"title": "Edit the readme", "repo": {"full_name": "owner/app"}});
    let created: Value = api
        .expect(Method::POST, "/api/sessions", Some(&body.to_string()), 201)
        .await?;
    let id = created["id"]
        .as_str()
        .context("the session's id")?
        .to_owned();
    let branch = created["repo"]["branch"]
        .as_str()
        .context("the session's branch")?
        .to_owned();
    let mut events = api.events(&id, None).await?;
    tokio::time::timeout(
        Duration::from_secs(180),
        events.until(|b| {
            matches!(b, nightshift_protocol::events::EventBody::RepoUpdated { state }
                if state.phase != nightshift_protocol::repo::RepoPhase::Cloning)
        }),
    )
    .await
    .context("the repository was not cloned in time")??;
    let view: Value = api
        .expect(Method::GET, &format!("/api/sessions/{id}/repo"), None, 200)
        .await?;
    ensure!(view["state"]["phase"] == "ready", "{view}");

    api.send(&id, &format!("{EDIT_MARKER} edit the readme"))
        .await?;
    let messages = api.wait_settled(&id).await?;
    ensure!(
        messages.last().map(|m| m.state) == Some(MessageState::Done),
        "{messages:?}"
    );
    let pushed = api
        .raw(Method::POST, &format!("/api/sessions/{id}/push"), None)
        .await?;
    ensure!(pushed.status == 202, "{:?}", pushed.body);
    let bare = gh.git().repo("owner", "app");
    let started = std::time::Instant::now();
    while bare.branch_head(&branch).is_none() {
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{branch} never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let author = pushed_author(gh, "owner", "app", &branch)?;
    ensure!(is_noreply_author(&author, "Owner Doe", "owner"), "{author}");
    Ok(())
}
