//! `nightshift-gateway connect`: carries its standard input and output to the
//! gateway's port on the sandbox's own loopback ([`GATEWAY_PORT`]) and back. It is how
//! a backend whose provider has no port into a sandbox (the docker provider: network
//! `none`, no published port) reaches the gateway: it runs this through the provider's
//! exec and relays the exec's streams.
//!
//! The port is not an argument: whoever can run this reaches the gateway's port and
//! no other, so the relay cannot be turned into a way to the sandbox's other services.

use nightshift_protocol::sandbox::GATEWAY_PORT;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Copies `input` to the gateway and the gateway's bytes to `output` until the
/// gateway closes the connection. End of `input` half-closes the connection (an HTTP
/// client that has sent its request still gets the answer).
pub async fn carry<I, O>(input: I, output: O, port: u16) -> std::io::Result<()>
where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
{
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut from_gateway, mut to_gateway) = stream.into_split();
    let mut input = input;
    let mut output = output;
    let upstream = async {
        tokio::io::copy(&mut input, &mut to_gateway).await?;
        to_gateway.shutdown().await
    };
    let downstream = async {
        tokio::io::copy(&mut from_gateway, &mut output).await?;
        output.flush().await
    };
    tokio::pin!(upstream);
    tokio::pin!(downstream);
    tokio::select! {
        // The gateway's side ending ends the bridge, whatever the input does.
        done = &mut downstream => done,
        sent = &mut upstream => {
            sent?;
            downstream.await
        }
    }
}

/// `nightshift-gateway connect`, on this process's standard streams.
pub async fn run() -> std::io::Result<()> {
    carry(tokio::io::stdin(), tokio::io::stdout(), GATEWAY_PORT).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn bytes_go_both_ways_and_an_ended_input_still_gets_the_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            socket.read_to_end(&mut request).await.unwrap();
            socket.write_all(b"answer to ").await.unwrap();
            socket.write_all(&request).await.unwrap();
        });
        let mut output = Vec::new();
        carry(&b"a request"[..], &mut output, port).await.unwrap();
        server.await.unwrap();
        assert_eq!(output, b"answer to a request");
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut output = Vec::new();
        assert!(carry(&b""[..], &mut output, port).await.is_err());
    }
}
