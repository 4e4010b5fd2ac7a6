//! Commands in a container, the Docker wire half of
//! [`RemoteShell`](crate::providers::remote::exec::RemoteShell): `POST
//! /containers/{id}/exec`, `POST /exec/{id}/start` hijacked for stdin and the
//! multiplexed output (an 8-byte header per frame: stream, then the length), and
//! `GET /exec/{id}/json` for the exit code once the output ends.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;

use super::client::{self, DockerClient, docker_error};
use crate::providers::remote::exec::{Opened, RemoteInput, RemoteShell, ShellCommand};
use crate::providers::remote::{self, RemoteEvent};
use crate::providers::{ProviderError, SandboxSpec};

#[derive(Debug, Clone)]
pub struct DockerShell {
    client: DockerClient,
    workspace: String,
    /// Who its commands run as (`uid:gid`), named on every exec: a session's
    /// container runs as root (see [`super::runner`]), its commands never do.
    user: String,
}

impl DockerShell {
    pub fn new(client: DockerClient, workspace: String, user: String) -> DockerShell {
        DockerShell {
            client,
            workspace,
            user,
        }
    }

    /// The same shell, its commands run as `user` (`uid:gid`).
    pub fn as_user(&self, user: &str) -> DockerShell {
        DockerShell {
            user: user.to_string(),
            ..self.clone()
        }
    }

    /// Creates an exec of `argv` and hijacks its streams.
    pub(super) async fn open_exec(
        &self,
        container_id: &str,
        argv: Vec<String>,
    ) -> Result<(String, client::Hijacked), ProviderError> {
        let body = json!({
            "AttachStdin": true,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": false,
            "Cmd": argv,
            "WorkingDir": self.workspace,
            "User": self.user,
        });
        let created = self
            .client
            .call(
                Method::POST,
                &format!("/containers/{container_id}/exec"),
                Some(body),
                remote::CALL_TIMEOUT,
            )
            .await?;
        if created.status != StatusCode::CREATED {
            return Err(docker_error("exec create", &created));
        }
        let exec_id = created.json()["Id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let io = self.client.start_exec(&exec_id).await?;
        Ok((exec_id, io))
    }
}

/// The exec's stdin: the hijacked connection's write half.
struct ExecInput(WriteHalf<client::Hijacked>);

#[async_trait]
impl RemoteInput for ExecInput {
    async fn write(&mut self, bytes: Vec<u8>) -> Result<(), ProviderError> {
        self.0
            .write_all(&bytes)
            .await
            .map_err(|error| ProviderError::io("writing to the exec's input", error))
    }

    async fn close(&mut self) {
        // Half-close: the command sees end-of-file.
        let _ = self.0.shutdown().await;
    }
}

#[async_trait]
impl RemoteShell for DockerShell {
    fn workspace(&self) -> &str {
        &self.workspace
    }

    async fn open(
        &self,
        sandbox: &SandboxSpec,
        command: ShellCommand,
    ) -> Result<Opened, ProviderError> {
        let handle: super::Handle = remote::exec::handle_of(sandbox, "container")?;
        let (exec_id, io) = self.open_exec(&handle.container_id, command.argv()).await?;
        let (mut reader, writer) = tokio::io::split(io);
        let (sender, receiver) = mpsc::channel(64);
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut header = [0u8; 8];
            loop {
                if reader.read_exact(&mut header).await.is_err() {
                    break;
                }
                let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                let mut payload = vec![0u8; length as usize];
                if reader.read_exact(&mut payload).await.is_err() {
                    break;
                }
                let event = match header[0] {
                    2 => RemoteEvent::Stderr(payload),
                    _ => RemoteEvent::Stdout(payload),
                };
                if sender.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            let _ = sender.send(exit_code(&client, &exec_id).await).await;
        });
        let events = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|event| (event, receiver))
        })
        .boxed();
        Ok(Opened {
            input: Box::new(ExecInput(writer)),
            events,
        })
    }
}

/// The exit code of a finished exec (Docker may take a moment to record it).
async fn exit_code(client: &DockerClient, exec_id: &str) -> Result<RemoteEvent, ProviderError> {
    for _ in 0..50 {
        let inspect = client
            .call(
                Method::GET,
                &format!("/exec/{exec_id}/json"),
                None,
                remote::CALL_TIMEOUT,
            )
            .await?;
        if !inspect.status.is_success() {
            return Err(docker_error("exec inspect", &inspect));
        }
        let state = inspect.json();
        if state["Running"] != Value::Bool(true)
            && let Some(code) = state["ExitCode"].as_i64()
        {
            return Ok(RemoteEvent::Exit(i32::try_from(code).unwrap_or(-1)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(ProviderError::Unavailable(
        "Docker did not report the exit code of a finished command".into(),
    ))
}
