//! Commands in a Railway sandbox, the Railway wire half of
//! [`RemoteShell`](crate::providers::remote::exec::RemoteShell): `sandboxHeartbeat`
//! (a command counts as activity for Railway's idle reaper), then the `/ws/exec`
//! bridge with a fresh shell token: an `init` frame with the command line, stdin as
//! binary frames (a stream byte, then the data), `stdin_close`, output frames the same
//! way, and an `exit` text frame. A kill also sends the bridge's `KILL` signal, which
//! reaches the direct child only; the process-group kill does the rest.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::client::{self, RailwayClient, Socket};
use crate::providers::remote::exec::{Opened, RemoteInput, RemoteShell, ShellCommand};
use crate::providers::remote::{self, RemoteEvent};
use crate::providers::{ProviderError, SandboxSpec};

#[derive(Clone)]
pub struct RailwayShell {
    client: RailwayClient,
    environment_id: String,
    workspace: String,
}

impl RailwayShell {
    pub fn new(client: RailwayClient, environment_id: String, workspace: String) -> RailwayShell {
        RailwayShell {
            client,
            environment_id,
            workspace,
        }
    }

    async fn heartbeat(&self, sandbox_id: &str) {
        let _ = self
            .client
            .graphql(
                "mutation SandboxHeartbeat($id: String!, $environmentId: String!) { sandboxHeartbeat(id: $id, environmentId: $environmentId) { id status idleTimeoutMinutes } }",
                json!({ "id": sandbox_id, "environmentId": self.environment_id }),
                Duration::from_secs(10),
            )
            .await;
    }
}

/// The bridge's write half: stdin frames, end of input, a signal.
struct BridgeInput(SplitSink<Socket, Message>);

#[async_trait]
impl RemoteInput for BridgeInput {
    async fn write(&mut self, bytes: Vec<u8>) -> Result<(), ProviderError> {
        let mut data = Vec::with_capacity(bytes.len() + 1);
        data.push(client::STREAM_STDIN);
        data.extend_from_slice(&bytes);
        self.0.send(Message::binary(data)).await.map_err(|error| {
            ProviderError::Unavailable(format!("Railway's exec bridge failed: {error}"))
        })
    }

    async fn close(&mut self) {
        let _ = self.0.send(Message::text(client::stdin_close())).await;
    }

    async fn interrupt(&mut self) {
        let _ = self.0.send(Message::text(client::signal("KILL"))).await;
        let _ = self.0.close().await;
    }
}

#[async_trait]
impl RemoteShell for RailwayShell {
    fn workspace(&self) -> &str {
        &self.workspace
    }

    async fn open(
        &self,
        sandbox: &SandboxSpec,
        command: ShellCommand,
    ) -> Result<Opened, ProviderError> {
        let handle: super::Handle = remote::exec::handle_of(sandbox, "Railway sandbox")?;
        self.heartbeat(&handle.sandbox_id).await;
        let socket = self
            .client
            .connect_exec(&self.environment_id, &handle.sandbox_id)
            .await?;
        let (mut sink, mut stream) = socket.split();
        sink.send(Message::text(client::init_exec(&command.line)))
            .await
            .map_err(|error| {
                ProviderError::Unavailable(format!("Railway's exec bridge failed: {error}"))
            })?;

        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                let event = match message {
                    Ok(Message::Binary(data)) if data.len() > 1 => match data[0] {
                        client::STREAM_STDERR => RemoteEvent::Stderr(data[1..].to_vec()),
                        client::STREAM_STDOUT => RemoteEvent::Stdout(data[1..].to_vec()),
                        _ => continue,
                    },
                    Ok(Message::Text(text)) => {
                        let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        if frame["type"] != "exit" {
                            continue;
                        }
                        let code = frame["data"]["exit_code"].as_i64().unwrap_or(-1);
                        let _ = sender
                            .send(Ok(RemoteEvent::Exit(i32::try_from(code).unwrap_or(-1))))
                            .await;
                        return;
                    }
                    Ok(Message::Close(_)) => break,
                    Ok(_) => continue,
                    Err(error) => {
                        let _ = sender
                            .send(Err(ProviderError::Unavailable(format!(
                                "Railway's exec bridge broke: {error}"
                            ))))
                            .await;
                        return;
                    }
                };
                if sender.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            let _ = sender
                .send(Err(ProviderError::Unavailable(
                    "Railway's exec bridge closed before the command exited".into(),
                )))
                .await;
        });
        let events = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|event| (event, receiver))
        })
        .boxed();
        Ok(Opened {
            input: Box::new(BridgeInput(sink)),
            events,
        })
    }
}
