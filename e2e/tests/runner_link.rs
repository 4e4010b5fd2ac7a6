//! The runner link as an attacker sees it, on the real stack: a runner token copied
//! out of a sandbox's runner config gets no prompt (and so no LLM key) while the
//! real runner is connected; a restarted runner takes the link over from a silent
//! one; the Worker enforces the event size and rate limits on what a runner sends;
//! a token dies with its sandbox; and runners are dialled back at the configured
//! URL, not at a request's Host.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use nightshift_protocol::events::EventBody;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn stack_with(vars: &[(&str, &str)]) -> anyhow::Result<(Stack, ScriptedLlm)> {
    let llm = ScriptedLlm::start().await?;
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
    .await?;
    Ok((stack, llm))
}

/// The upgrade as a plain HTTP request, so a refusal's envelope can be read.
async fn upgrade_refusal(
    stack: &Stack,
    session_id: &str,
    token: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/sessions/{session_id}/runner",
            stack.worker_url()
        ))
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, body))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    stack: &Stack,
    session_id: &str,
    token: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let url = format!(
        "ws://127.0.0.1:{}/api/sessions/{session_id}/runner",
        stack.worker_port
    );
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a header value"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The next text frame as JSON, within a few seconds.
async fn next_json(socket: &mut Socket) -> anyhow::Result<serde_json::Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .context("no frame in time")?
            .context("the link closed")??;
        if let Message::Text(text) = message {
            return Ok(serde_json::from_str(&text)?);
        }
    }
}

#[tokio::test]
async fn a_copied_runner_token_gets_no_link_while_the_runner_is_live() {
    let (stack, llm) = stack_with(&[]).await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let session = api.create_session().await?;
        api.send(&session.id, "first").await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[0].reply.as_deref(), Some("echo: first"));

        let token = stack.runner_token(&session.id)?;
        let (status, body) = upgrade_refusal(&stack, &session.id, &token).await?;
        assert_eq!(status, 409, "the copied token was not refused: {body}");
        assert_eq!(body["error"]["code"], "runner_link_taken");
        // A WebSocket client is refused the same way, and the real runner keeps the
        // link: the next prompt (and its key) goes to it.
        match connect(&stack, &session.id, &token).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 409)
            }
            Err(other) => anyhow::bail!("unexpected error {other}"),
            Ok(_) => anyhow::bail!("the copied token opened the link"),
        }
        let calls_before = llm.authorizations().len();
        api.send(&session.id, "second").await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[1].reply.as_deref(), Some("echo: second"));
        assert!(
            llm.authorizations().len() > calls_before,
            "the real runner ran it"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_runner_token_dies_with_its_sandbox() {
    let (stack, _llm) = stack_with(&[]).await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let session = api.create_session().await?;
        api.wait_status(&session.id, "idle").await?;
        let token = stack.runner_token(&session.id)?;
        // While the sandbox lives, the token is good but the link is taken.
        let (status, _) = upgrade_refusal(&stack, &session.id, &token).await?;
        assert_eq!(status, 409);
        let deleted = api
            .raw(
                reqwest::Method::DELETE,
                &format!("/api/sessions/{}", session.id),
                None,
            )
            .await?;
        assert_eq!(deleted.status, 204, "{deleted:?}");
        // The sandbox is gone, and its token with it: refused outright, no link.
        let (status, body) = upgrade_refusal(&stack, &session.id, &token).await?;
        assert!(
            matches!(status, 401 | 404),
            "a dead sandbox's token was not refused: {status} {body}"
        );
        match connect(&stack, &session.id, &token).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert!(matches!(response.status().as_u16(), 401 | 404))
            }
            Err(other) => anyhow::bail!("unexpected error {other}"),
            Ok(_) => anyhow::bail!("a dead sandbox's token opened the link"),
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_silent_runner_gives_way_and_intake_enforces_event_size_and_rate() {
    let (stack, _llm) = stack_with(&[("RUNNER_SILENT_AFTER_MS", "3000")])
        .await
        .unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let session = api.create_session().await?;
        api.send(&session.id, "first").await?;
        api.wait_settled(&session.id).await?;
        let token = stack.runner_token(&session.id)?;

        // The runner hangs (as a frozen process would): once it has been silent
        // past RUNNER_SILENT_AFTER_MS, a runner with the sandbox's token takes over.
        assert!(stack.signal_runners(nix::sys::signal::Signal::SIGSTOP) >= 1);
        let result = async {
            tokio::time::sleep(Duration::from_millis(3500)).await;
            let mut socket = connect(&stack, &session.id, &token)
                .await
                .context("the restarted runner is let in once the old one is silent")?;
            let mut stream = api.events(&session.id, None).await?;
            socket
                .send(Message::text(
                    json!({"type": "hello", "session_id": session.id, "runner_version": "test",
                           "epoch": "e2e-fake", "active_turn": null})
                    .to_string(),
                ))
                .await?;
            let welcome = next_json(&mut socket).await?;
            assert_eq!(welcome["type"], "welcome", "{welcome}");
            // A renewal is not handed out on every hello.
            assert!(
                welcome["token"].is_null(),
                "a fresh token came with the hello: {welcome}"
            );

            // Tool output over the 32 KiB cap: acknowledged, stored as an error.
            let output = "x".repeat(40 * 1024);
            socket
                .send(Message::text(
                    json!({"type": "event", "local_seq": 1, "turn_id": "t-fake",
                           "event": {"type": "tool_call_finished", "call_id": "c1",
                                     "output": output, "is_error": false}})
                    .to_string(),
                ))
                .await?;
            let ack = next_json(&mut socket).await?;
            assert_eq!(ack, json!({"type": "ack", "up_to": 1}));
            let seen = stream
                .until(|body| {
                    matches!(
                        body,
                        EventBody::Error { .. } | EventBody::ToolCallFinished { .. }
                    )
                })
                .await?;
            match &seen.last().context("an event")?.body {
                EventBody::Error { message } => {
                    assert!(message.contains("dropped"), "{message}")
                }
                other => anyhow::bail!("the oversized event was stored: {other:?}"),
            }

            // A flood: the link is closed (4029) before it is all taken in.
            let started = Instant::now();
            let mut closed_with = None;
            let sender = async {
                for seq in 2..6000u64 {
                    let frame = json!({"type": "event", "local_seq": seq, "turn_id": "t-fake",
                                       "event": {"type": "text_delta", "text": "x"}});
                    if socket.send(Message::text(frame.to_string())).await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(60), sender).await;
            while started.elapsed() < Duration::from_secs(60) {
                match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
                    Ok(Some(Ok(Message::Close(Some(frame))))) => {
                        closed_with = Some(u16::from(frame.code));
                        break;
                    }
                    Ok(Some(Ok(_))) => continue,
                    _ => break,
                }
            }
            assert_eq!(closed_with, Some(4029), "the flood was taken in whole");
            anyhow::Ok(())
        }
        .await;
        stack.signal_runners(nix::sys::signal::Signal::SIGCONT);
        result
    })
    .await;
}

async fn create_with_host(
    api: &nightshift_e2e::client::Api,
    host: &str,
) -> anyhow::Result<reqwest::Response> {
    Ok(api
        .sign(
            reqwest::Client::new()
                .post(api.url("/api/sessions"))
                .header("host", host)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .send()
        .await?)
}

#[tokio::test]
async fn runners_dial_the_configured_url_not_the_requests_host() {
    let (stack, _llm) = stack_with(&[]).await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        // A request that names another host: the runner still dials WORKER_URL.
        let response = create_with_host(&api, "attacker.example").await?;
        assert_eq!(response.status().as_u16(), 201);
        let session: serde_json::Value = response.json().await?;
        let id = session["id"].as_str().context("an id")?;
        api.send(id, "dial").await?;
        let messages = api.wait_settled(id).await?;
        assert_eq!(messages[0].reply.as_deref(), Some("echo: dial"));
        let config = stack.runner_config(id)?;
        assert_eq!(config["worker_url"], stack.worker_url());
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn without_worker_url_a_foreign_host_cannot_choose_where_runners_dial() {
    let (stack, _llm) = stack_with(&[("WORKER_URL", "")]).await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let response = create_with_host(&api, "attacker.example").await?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["code"], "internal");
        assert!(
            api.sessions().await?.is_empty(),
            "the refused create stored nothing"
        );
        // On the loopback host a local stack works without it.
        let session = api.create_session().await?;
        api.send(&session.id, "local").await?;
        let messages = api.wait_settled(&session.id).await?;
        assert_eq!(messages[0].reply.as_deref(), Some("echo: local"));
        Ok(())
    })
    .await;
}
