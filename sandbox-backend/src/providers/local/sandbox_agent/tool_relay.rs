//! The tool relay: the backend's end of [`super::tool_shell`]. It listens on a unix
//! socket in OpenCode's sockets directory (bound read-only into OpenCode's sandbox
//! only) and passes each connection on to the session sandbox's agent, after checking
//! that it asks for one thing: to start a command ([`Request::Spawn`]). Everything
//! else the agent's socket offers (configuring the sandbox's environment, shutting it
//! down, its egress connections) stays with the backend.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::client::connect;
use super::wire::{Frame, Request, write_frame};

/// The longest request line accepted (as the agent's own limit).
const MAX_REQUEST_LINE: u64 = 4 * 1024 * 1024;
/// How long a new connection gets to say what it wants.
const REQUEST_WAIT: Duration = Duration::from_secs(10);

/// Binds the relay's socket at `path` (replacing a stale one), so that it exists
/// before anyone is told about it.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let listener = super::client::bind(path)?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// Serves the relay on `listener` until the task is aborted, passing spawns on to
/// the agent at `agent_socket`.
pub async fn serve(listener: UnixListener, agent_socket: PathBuf) {
    while let Ok((client, _)) = listener.accept().await {
        let agent_socket = agent_socket.clone();
        tokio::spawn(async move {
            if let Err(error) = relay(client, &agent_socket).await {
                tracing::debug!(%error, "a tool relay connection ended early");
            }
        });
    }
}

async fn relay(client: UnixStream, agent_socket: &Path) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut line = Vec::new();
    let read = tokio::time::timeout(
        REQUEST_WAIT,
        AsyncReadExt::take(&mut client, MAX_REQUEST_LINE).read_until(b'\n', &mut line),
    )
    .await
    .map_err(|_| std::io::Error::other("no request in time"))??;
    if read == 0 || !line.ends_with(b"\n") {
        return Err(std::io::Error::other("no request line"));
    }
    if !matches!(
        serde_json::from_slice::<Request>(&line),
        Ok(Request::Spawn { .. })
    ) {
        let refusal = Frame::Error("the tool relay only starts commands".into());
        write_frame(client.get_mut(), &refusal).await?;
        return Ok(());
    }
    let mut agent = connect(agent_socket).await?;
    agent.write_all(&line).await?;
    // What the client sent after its request line is already in the buffer.
    let buffered = client.buffer().to_vec();
    agent.write_all(&buffered).await?;
    let mut client = client.into_inner();
    tokio::io::copy_bidirectional(&mut client, &mut agent).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::providers::local::sandbox_agent::wire::{read_frame, write_request};

    async fn relay_to_fake_agent() -> (tempfile::TempDir, PathBuf, tokio::net::UnixListener) {
        let dir = tempfile::tempdir().unwrap();
        let agent_path = dir.path().join("agent.sock");
        let agent = UnixListener::bind(&agent_path).unwrap();
        let relay_path = dir.path().join("tools.sock");
        tokio::spawn(serve(bind(&relay_path).unwrap(), agent_path));
        (dir, relay_path, agent)
    }

    #[tokio::test]
    async fn the_relay_refuses_everything_but_starting_a_command() {
        let (_dir, relay, agent) = relay_to_fake_agent().await;
        for request in [
            Request::Shutdown,
            Request::Hold,
            Request::Egress,
            Request::Configure {
                env: BTreeMap::new(),
                proxy_port: None,
            },
        ] {
            let mut client = UnixStream::connect(&relay).await.unwrap();
            write_request(&mut client, &request).await.unwrap();
            let answer = read_frame(&mut client).await.unwrap();
            assert!(
                matches!(answer, Some(Frame::Error(_))),
                "{request:?}: {answer:?}"
            );
        }
        let reached = tokio::time::timeout(Duration::from_millis(200), agent.accept()).await;
        assert!(
            reached.is_err(),
            "a refused request never reaches the agent"
        );
    }

    #[tokio::test]
    async fn a_spawn_is_passed_on_to_the_agent_with_what_follows_it() {
        let (_dir, relay, agent) = relay_to_fake_agent().await;
        let mut client = UnixStream::connect(&relay).await.unwrap();
        let spawn = Request::Spawn {
            argv: vec!["bash".into(), "-c".into(), "true".into()],
            env: BTreeMap::new(),
            cwd: "/workspace".into(),
            stdin: true,
        };
        write_request(&mut client, &spawn).await.unwrap();
        write_frame(&mut client, &Frame::CloseStdin).await.unwrap();
        let (mut upstream, _) = tokio::time::timeout(Duration::from_secs(5), agent.accept())
            .await
            .unwrap()
            .unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while upstream.read_exact(&mut byte).await.is_ok() && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        assert_eq!(serde_json::from_slice::<Request>(&line).unwrap(), spawn);
        assert_eq!(
            read_frame(&mut upstream).await.unwrap(),
            Some(Frame::CloseStdin)
        );
        write_frame(
            &mut upstream,
            &Frame::Exit {
                code: 0,
                signaled: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            read_frame(&mut client).await.unwrap(),
            Some(Frame::Exit {
                code: 0,
                signaled: false
            })
        );
    }
}
