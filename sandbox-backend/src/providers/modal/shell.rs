//! Commands in a Modal sandbox, the Modal wire half of
//! [`RemoteShell`](crate::providers::remote::exec::RemoteShell): `ContainerExec` on
//! the sandbox's task, `ContainerExecPutInput` for stdin (numbered messages, then
//! end-of-file), and `ContainerExecGetOutput` per stream, resumed from the last batch
//! index when Modal ends a long poll, for the output and the exit code.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::client::{self, ModalClient};
use super::proto;
use crate::providers::remote::exec::{Opened, RemoteInput, RemoteShell, ShellCommand};
use crate::providers::remote::{self, RemoteEvent};
use crate::providers::{ProviderError, SandboxSpec};

#[derive(Clone)]
pub struct ModalShell {
    client: ModalClient,
    workspace: String,
    /// The output long poll's length (seconds) and the deadline of one poll.
    poll_secs: f32,
    poll_deadline: Duration,
}

impl ModalShell {
    pub fn new(client: ModalClient, config: &super::ModalConfig) -> ModalShell {
        ModalShell {
            client,
            workspace: config.workspace.clone(),
            poll_secs: config.poll_secs,
            poll_deadline: config.poll_deadline(),
        }
    }
}

/// An exec's stdin: numbered `ContainerExecPutInput` messages.
struct ExecInput {
    client: ModalClient,
    exec_id: String,
    next_index: u64,
}

impl ExecInput {
    async fn put(&mut self, message: Vec<u8>, eof: bool) -> Result<(), ProviderError> {
        self.client
            .unary::<_, proto::Empty>(
                "ContainerExecPutInput",
                proto::ContainerExecPutInputRequest {
                    exec_id: self.exec_id.clone(),
                    input: Some(proto::RuntimeInputMessage {
                        message,
                        message_index: self.next_index,
                        eof,
                    }),
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        self.next_index += 1;
        Ok(())
    }
}

#[async_trait]
impl RemoteInput for ExecInput {
    async fn write(&mut self, bytes: Vec<u8>) -> Result<(), ProviderError> {
        self.put(bytes, false).await
    }

    async fn close(&mut self) {
        let _ = self.put(Vec::new(), true).await;
    }
}

#[async_trait]
impl RemoteShell for ModalShell {
    fn workspace(&self) -> &str {
        &self.workspace
    }

    async fn open(
        &self,
        sandbox: &SandboxSpec,
        command: ShellCommand,
    ) -> Result<Opened, ProviderError> {
        let handle: super::Handle = remote::exec::handle_of(sandbox, "Modal sandbox")?;
        let started: proto::ContainerExecResponse = self
            .client
            .unary(
                "ContainerExec",
                proto::ContainerExecRequest {
                    task_id: handle.task_id,
                    command: command.argv(),
                    // A backstop in case this backend goes away mid-command: Modal
                    // ends a plain exec a little after its own timeout.
                    timeout_secs: if command.interactive {
                        0
                    } else {
                        u32::try_from(command.timeout.as_secs().saturating_add(30))
                            .unwrap_or(u32::MAX)
                    },
                    workdir: Some(self.workspace.clone()),
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        let exec_id = started.exec_id;

        // Output: one resumable stream per file descriptor, merged.
        let (sender, receiver) = mpsc::channel(64);
        let stdout = tokio::spawn(pump_output(
            self.clone(),
            exec_id.clone(),
            proto::FILE_DESCRIPTOR_STDOUT,
            sender.clone(),
        ));
        let stderr = tokio::spawn(pump_output(
            self.clone(),
            exec_id.clone(),
            proto::FILE_DESCRIPTOR_STDERR,
            sender.clone(),
        ));
        tokio::spawn(async move {
            let out = stdout.await.unwrap_or(Err(ProviderError::Unavailable(
                "the Modal output reader stopped".into(),
            )));
            let err = stderr.await.unwrap_or(Ok(None));
            let event = match (out, err) {
                (Ok(Some(code)), _) | (Ok(None), Ok(Some(code))) => Ok(RemoteEvent::Exit(code)),
                (Err(error), _) | (_, Err(error)) => Err(error),
                (Ok(None), Ok(None)) => Err(ProviderError::Unavailable(
                    "Modal ended the output without an exit code".into(),
                )),
            };
            let _ = sender.send(event).await;
        });
        let events = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|event| (event, receiver))
        })
        .boxed();
        Ok(Opened {
            input: Box::new(ExecInput {
                client: self.client.clone(),
                exec_id,
                next_index: 1,
            }),
            events,
        })
    }
}

/// Reads one stream of an exec until its exit code, resuming after the last batch
/// when Modal ends a long poll. Returns the exit code if this stream saw it.
async fn pump_output(
    shell: ModalShell,
    exec_id: String,
    file_descriptor: i32,
    sender: mpsc::Sender<Result<RemoteEvent, ProviderError>>,
) -> Result<Option<i32>, ProviderError> {
    let mut last_batch_index = 0u64;
    let mut retries = 10u32;
    loop {
        let opened = shell
            .client
            .server_streaming::<_, proto::RuntimeOutputBatch>(
                "ContainerExecGetOutput",
                proto::ContainerExecGetOutputRequest {
                    exec_id: exec_id.clone(),
                    timeout: shell.poll_secs,
                    last_batch_index,
                    file_descriptor,
                    get_raw_bytes: true,
                },
                shell.poll_deadline,
            )
            .await;
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(error) if retries > 0 => {
                retries -= 1;
                tracing::debug!(%error, "retrying Modal output");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        while let Some(batch) = stream.next().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(status) if retries > 0 => {
                    retries -= 1;
                    tracing::debug!(%status, "Modal output stream broke; resuming");
                    break;
                }
                Err(status) => return Err(client::status_error("ContainerExecGetOutput", &status)),
            };
            for item in batch.items {
                let bytes = if item.message_bytes.is_empty() {
                    item.message.into_bytes()
                } else {
                    item.message_bytes
                };
                if bytes.is_empty() {
                    continue;
                }
                let event = if item.file_descriptor == proto::FILE_DESCRIPTOR_STDERR
                    || (item.file_descriptor == 0
                        && file_descriptor == proto::FILE_DESCRIPTOR_STDERR)
                {
                    RemoteEvent::Stderr(bytes)
                } else {
                    RemoteEvent::Stdout(bytes)
                };
                if sender.send(Ok(event)).await.is_err() {
                    return Ok(None);
                }
            }
            last_batch_index = batch.batch_index;
            if let Some(code) = batch.exit_code {
                return Ok(Some(code));
            }
        }
        if sender.is_closed() {
            return Ok(None);
        }
    }
}
