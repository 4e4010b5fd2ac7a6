//! The way out of an `isolated` docker sandbox. The container keeps network `none`;
//! its one way out is a unix socket the backend serves per sandbox, in a directory of
//! the backend's data directory bound read-only into that container alone at
//! [`CONTAINER_DIR`]. Inside, `nightshift-gateway egress` listens on the container's
//! loopback ([`PROXY_PORT`], where `HTTP_PROXY`/`HTTPS_PROXY` point) and carries
//! every connection to the socket as it is; the backend reads the proxy request
//! (`CONNECT host:port` or a plain-HTTP request in absolute form), checks the
//! destination against the same policy as the local provider's egress (public
//! addresses only, plus `SANDBOX_ISOLATED_ALLOW`; [`sandbox_agent::egress::dial`])
//! and dials it from the host. The policy is the backend's, not a network the
//! container could reach past it.
//!
//! The socket needs the Engine on the backend's own host (a unix `DOCKER_HOST`): the
//! bound directory is a path of this host.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::providers::local::sandbox_agent::egress::{EgressPolicy, dial};
use crate::providers::local::sandbox_agent::proxy::{read_head, refusal};

/// Where the socket's directory is bound in the container.
pub const CONTAINER_DIR: &str = "/run/nightshift-egress";
pub const SOCKET_NAME: &str = "egress.sock";
/// The proxy's port on the container's loopback (the local provider's too).
pub const PROXY_PORT: u16 = crate::providers::local::PROXY_PORT;
pub const LOG_FILE: &str = "/run/nightshift/egress.log";
/// How long a client may take to send its request's head.
const HEAD_WAIT: Duration = Duration::from_secs(10);

/// The environment that points a container's programs at the proxy.
pub fn proxy_env() -> Vec<String> {
    let proxy = format!("http://127.0.0.1:{PROXY_PORT}");
    let mut env: Vec<String> = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .map(|name| format!("{name}={proxy}"))
    .collect();
    env.extend(["NO_PROXY", "no_proxy"].map(|name| format!("{name}=localhost,127.0.0.1,::1")));
    env
}

/// `sh -c` script that starts the proxy in the container, detached, started again
/// a second after it exits (the backend may be gone while the container lives on).
pub fn start_script() -> String {
    format!(
        "command -v nightshift-gateway >/dev/null || {{ echo 'nightshift-gateway is not installed in the sandbox image' >&2; exit 127; }}\n\
         setsid -f sh -c 'while :; do nightshift-gateway egress 127.0.0.1:{PROXY_PORT} {CONTAINER_DIR}/{SOCKET_NAME} </dev/null; sleep 1; done' > {LOG_FILE} 2>&1"
    )
}

/// The sockets this backend serves, one per isolated sandbox.
pub struct Egress {
    root: PathBuf,
    policy: Arc<EgressPolicy>,
    served: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Egress {
    pub fn new(root: PathBuf, policy: Arc<EgressPolicy>) -> Egress {
        Egress {
            root,
            policy,
            served: Mutex::default(),
        }
    }

    /// The host directory bound into the sandbox's container.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Serves the sandbox's socket (again, after a restart of the backend or the
    /// container): the directory is bound, so a socket made anew in it is the one the
    /// container sees.
    pub fn serve(&self, id: &str) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        // The root is the backend's alone; each sandbox's directory only needs to be
        // entered by the container's user.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)?;
        let dir = self.dir(id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)?;
        let socket = dir.join(SOCKET_NAME);
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)?;
        // The container's user is not the backend's: it may connect, and only the
        // container it is bound into can see it.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
        let policy = self.policy.clone();
        let sandbox = id.to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(carry(stream, policy.clone(), sandbox.clone()));
            }
        });
        if let Some(old) = self
            .served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_string(), task)
        {
            old.abort();
        }
        Ok(dir)
    }

    /// Stops serving the sandbox's socket and removes its directory.
    pub fn close(&self, id: &str) {
        if let Some(task) = self
            .served
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
        {
            task.abort();
        }
        let _ = std::fs::remove_dir_all(self.dir(id));
    }
}

/// One proxied connection: the head, the policy's verdict, then bytes both ways.
async fn carry(mut client: UnixStream, policy: Arc<EgressPolicy>, sandbox: String) {
    let Some(head) = read_head(&mut client, HEAD_WAIT).await else {
        return;
    };
    let target = &head.target;
    let mut remote = match dial(target, &policy).await {
        Ok(remote) => remote,
        Err(reason) => {
            tracing::info!(%sandbox, host = %target.host, port = target.port, %reason, "docker egress refused");
            let _ = client.write_all(&refusal(&reason)).await;
            return;
        }
    };
    let forwarded = if head.connect {
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
    } else {
        Ok(())
    };
    let forwarded = match forwarded {
        Ok(()) => remote.write_all(&head.first_bytes()).await,
        Err(error) => Err(error),
    };
    if forwarded.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut remote).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};

    async fn ask(egress: &Egress, id: &str, request: String) -> String {
        let mut stream = UnixStream::connect(egress.dir(id).join(SOCKET_NAME))
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reader = tokio::io::BufReader::new(stream);
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(15), reader.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        line
    }

    #[tokio::test]
    async fn loopback_is_refused_and_an_allowed_address_is_reached() {
        let root = tempfile::tempdir().unwrap();
        let egress = Egress::new(
            root.path().join("egress"),
            Arc::new(EgressPolicy::with_allow_list("127.0.0.2").unwrap()),
        );
        egress.serve("sbx").unwrap();
        let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = refused.local_addr().unwrap().port();
        let answer = ask(
            &egress,
            "sbx",
            format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        let answer = ask(
            &egress,
            "sbx",
            format!("GET http://10.1.2.3:{port}/ HTTP/1.1\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

        let allowed = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = allowed.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = allowed.accept().await.unwrap();
            socket.write_all(b"hello from the host\n").await.unwrap();
        });
        let mut stream = UnixStream::connect(egress.dir("sbx").join(SOCKET_NAME))
            .await
            .unwrap();
        stream
            .write_all(format!("CONNECT 127.0.0.2:{port} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut received = String::new();
        tokio::time::timeout(
            Duration::from_secs(15),
            stream.read_to_string(&mut received),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            received,
            "HTTP/1.1 200 Connection established\r\n\r\nhello from the host\n"
        );

        egress.close("sbx");
        assert!(!egress.dir("sbx").exists());
        assert!(
            UnixStream::connect(egress.dir("sbx").join(SOCKET_NAME))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_request_that_is_not_a_proxy_request_is_a_400() {
        let root = tempfile::tempdir().unwrap();
        let egress = Egress::new(root.path().to_path_buf(), Arc::default());
        egress.serve("sbx").unwrap();
        let answer = ask(&egress, "sbx", "GET /relative HTTP/1.1\r\n\r\n".into()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
}
