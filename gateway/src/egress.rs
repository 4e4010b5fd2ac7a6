//! `nightshift-gateway egress LISTEN SOCKET`: the in-container half of a docker
//! sandbox's way out. It listens on the container's loopback (where `HTTP_PROXY`
//! and `HTTPS_PROXY` point) and carries each connection, byte for byte, to the unix
//! socket the backend binds into the container; the backend reads the proxy request,
//! applies its network policy and dials from the host. This side decides nothing:
//! whatever runs in the container can reach the socket directly anyway, so the policy
//! lives where the sandbox cannot change it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream, UnixStream};

/// Parses `LISTEN SOCKET`.
pub fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(SocketAddr, PathBuf), String> {
    let usage = "usage: nightshift-gateway egress 127.0.0.1:PORT /path/to/egress.sock";
    let listen = args
        .next()
        .and_then(|text| text.parse::<SocketAddr>().ok())
        .ok_or(usage)?;
    let socket = args.next().map(PathBuf::from).ok_or(usage)?;
    if args.next().is_some() {
        return Err(usage.into());
    }
    Ok((listen, socket))
}

/// Serves until the listener fails.
pub async fn serve(listener: TcpListener, socket: PathBuf) -> std::io::Result<()> {
    loop {
        let (client, _) = listener.accept().await?;
        let socket = socket.clone();
        tokio::spawn(async move {
            if let Err(error) = carry(client, &socket).await {
                tracing::debug!(%error, "an egress connection ended");
            }
        });
    }
}

async fn carry(mut client: TcpStream, socket: &Path) -> std::io::Result<()> {
    let mut backend = UnixStream::connect(socket).await?;
    tokio::io::copy_bidirectional(&mut client, &mut backend).await?;
    Ok(())
}

/// `nightshift-gateway egress`, from the command line.
pub async fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let (listen, socket) = parse_args(args).map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind(listen).await?;
    serve(listener, socket).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    #[tokio::test]
    async fn each_connection_is_carried_to_the_socket_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("egress.sock");
        let backend = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = backend.accept().await.unwrap();
            let mut head = [0u8; 10];
            stream.read_exact(&mut head).await.unwrap();
            stream.write_all(b"seen: ").await.unwrap();
            stream.write_all(&head).await.unwrap();
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, path));
        let mut client = TcpStream::connect(address).await.unwrap();
        client.write_all(b"CONNECT x ").await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "seen: CONNECT x ");
    }

    #[test]
    fn arguments_are_an_address_and_a_socket() {
        let args = |list: &[&str]| parse_args(list.iter().map(|s| s.to_string()));
        assert!(args(&["127.0.0.1:3128", "/run/x.sock"]).is_ok());
        assert!(args(&["nonsense", "/run/x.sock"]).is_err());
        assert!(args(&["127.0.0.1:3128"]).is_err());
        assert!(args(&["127.0.0.1:3128", "/a", "/b"]).is_err());
    }
}
