//! One intercepted connection: TLS from the sandbox terminated with the CA's leaf
//! for the repository's host, TLS to the real host, and HTTP/1.1 between them one
//! request at a time (keep-alive while both ends keep it). Heads are read whole and
//! bounded, checked ([`super::rules::parse_request`]) and written again with the
//! credential where the request is the repository's git request; bodies are streamed
//! by their framing (length or chunked), never buffered whole. Every read and write
//! has a deadline.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::rules::{Framing, Refusal, RequestHead, parse_request, parse_response};

/// A request head from the sandbox is at most this long.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// A response head from the host.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// A chunk-size or trailer line.
const MAX_LINE: usize = 4096;
/// How long either end may stay silent mid-message, and the sandbox between requests.
pub const IDLE: Duration = Duration::from_secs(60);
/// How long the host may take to start its answer (a large fetch's negotiation).
const ANSWER_WAIT: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub enum HeadError {
    /// The peer closed cleanly before a new message began.
    Closed,
    TooLarge,
    /// Cut short, timed out or unreadable.
    Broken,
}

/// Reads one message head (through its blank line), at most `max` bytes, each read
/// within `wait`.
pub async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    max: usize,
    wait: Duration,
) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::new();
    loop {
        let available = match tokio::time::timeout(wait, reader.fill_buf()).await {
            Ok(Ok(bytes)) => bytes,
            _ => return Err(HeadError::Broken),
        };
        if available.is_empty() {
            return Err(if head.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Broken
            });
        }
        let before = head.len();
        let take = available.len().min(max + 1 - before);
        head.extend_from_slice(&available[..take]);
        let from = before.saturating_sub(3);
        if let Some(at) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + at + 4;
            reader.consume(end - before);
            head.truncate(end);
            return Ok(head);
        }
        reader.consume(take);
        if head.len() > max {
            return Err(HeadError::TooLarge);
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> Result<(), ()> {
    match tokio::time::timeout(IDLE, writer.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Copies exactly `length` bytes.
async fn copy_length<R, W>(
    reader: &mut BufReader<R>,
    writer: &mut W,
    mut length: u64,
) -> Result<(), ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    while length > 0 {
        let available = match tokio::time::timeout(IDLE, reader.fill_buf()).await {
            Ok(Ok(bytes)) if !bytes.is_empty() => bytes,
            _ => return Err(()),
        };
        let take = available
            .len()
            .min(usize::try_from(length).unwrap_or(usize::MAX));
        write(writer, &available[..take]).await?;
        reader.consume(take);
        length -= take as u64;
    }
    Ok(())
}

/// Reads one line (through `\n`), at most [`MAX_LINE`] bytes.
async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<Vec<u8>, ()> {
    let mut line = Vec::new();
    loop {
        let available = match tokio::time::timeout(IDLE, reader.fill_buf()).await {
            Ok(Ok(bytes)) if !bytes.is_empty() => bytes,
            _ => return Err(()),
        };
        let (take, done) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if line.len() > MAX_LINE {
            return Err(());
        }
        if done {
            return Ok(line);
        }
    }
}

/// The size of a chunk from its size line (`hex[;extensions]\r\n`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?;
    let digits = line.split(|b| *b == b';').next()?;
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Copies a chunked body as it is, checking its framing on the way so the message
/// ends exactly where both ends think it does.
async fn copy_chunked<R, W>(reader: &mut BufReader<R>, writer: &mut W) -> Result<(), ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let line = read_line(reader).await?;
        let size = chunk_size(&line).ok_or(())?;
        write(writer, &line).await?;
        if size == 0 {
            loop {
                let trailer = read_line(reader).await?;
                if !trailer.ends_with(b"\r\n") {
                    return Err(());
                }
                write(writer, &trailer).await?;
                if trailer == b"\r\n" {
                    return Ok(());
                }
            }
        }
        copy_length(reader, writer, size).await?;
        let end = read_line(reader).await?;
        if end != b"\r\n" {
            return Err(());
        }
        write(writer, &end).await?;
    }
}

async fn copy_to_end<R, W>(reader: &mut BufReader<R>, writer: &mut W) -> Result<(), ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let available = match tokio::time::timeout(IDLE, reader.fill_buf()).await {
            Ok(Ok(bytes)) => bytes,
            _ => return Err(()),
        };
        if available.is_empty() {
            return Ok(());
        }
        let take = available.len();
        write(writer, available).await?;
        reader.consume(take);
    }
}

/// Copies a body of the given framing.
pub async fn copy_body<R, W>(
    reader: &mut BufReader<R>,
    writer: &mut W,
    framing: Framing,
) -> Result<(), ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let copied = match framing {
        Framing::None => Ok(()),
        Framing::Length(length) => copy_length(reader, writer, length).await,
        Framing::Chunked => copy_chunked(reader, writer).await,
        Framing::Close => copy_to_end(reader, writer).await,
    };
    copied?;
    tokio::time::timeout(IDLE, writer.flush())
        .await
        .map_err(|_| ())?
        .map_err(|_| ())
}

/// Relays the host's answer to one request (interim `1xx` answers first); `Ok(true)`
/// when the connection may carry another request.
async fn relay_answer<R, W>(
    host: &mut BufReader<R>,
    sandbox: &mut W,
    head_request: bool,
) -> Result<bool, ()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let raw = read_head(host, MAX_RESPONSE_HEAD, ANSWER_WAIT)
            .await
            .map_err(|_| ())?;
        let head = parse_response(&raw, head_request).ok_or(())?;
        write(sandbox, &raw).await?;
        if head.status == 101 {
            // No upgrades through the interception: the connection ends here.
            return Err(());
        }
        if (100..200).contains(&head.status) {
            continue;
        }
        copy_body(host, sandbox, head.framing).await?;
        return Ok(!head.close);
    }
}

/// What the relay asks for each request: the `Authorization` value to send, `None`
/// to pass the request without a credential, or a refusal.
pub trait Credentials {
    fn authorization(
        &self,
        head: &RequestHead,
    ) -> impl std::future::Future<Output = Result<Option<String>, Refusal>> + Send;
}

/// Carries requests from `sandbox` to `host` (both already past TLS) until either
/// end closes, a message breaks, or a request is refused (answered with its 4xx).
pub async fn relay<S, H, C>(sandbox: S, host: H, credentials: &C)
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: AsyncRead + AsyncWrite + Unpin,
    C: Credentials,
{
    let (sandbox_read, mut sandbox_write) = tokio::io::split(sandbox);
    let (host_read, mut host_write) = tokio::io::split(host);
    let mut sandbox_read = BufReader::new(sandbox_read);
    let mut host_read = BufReader::new(host_read);
    loop {
        let raw = match read_head(&mut sandbox_read, MAX_REQUEST_HEAD, IDLE).await {
            Ok(raw) => raw,
            Err(HeadError::TooLarge) => {
                let _ = write(&mut sandbox_write, &Refusal::TOO_LARGE.response()).await;
                break;
            }
            Err(_) => break,
        };
        let head = match parse_request(&raw) {
            Ok(head) => head,
            Err(refusal) => {
                let _ = write(&mut sandbox_write, &refusal.response()).await;
                break;
            }
        };
        let authorization = match credentials.authorization(&head).await {
            Ok(authorization) => authorization,
            Err(refusal) => {
                let _ = write(&mut sandbox_write, &refusal.response()).await;
                break;
            }
        };
        if write(&mut host_write, &head.rewrite(authorization.as_deref()))
            .await
            .is_err()
        {
            break;
        }
        let (sent, answered) = tokio::join!(
            copy_body(&mut sandbox_read, &mut host_write, head.framing),
            relay_answer(&mut host_read, &mut sandbox_write, head.method == "HEAD"),
        );
        let _ = tokio::time::timeout(IDLE, sandbox_write.flush()).await;
        if sent.is_err() || head.close || !matches!(answered, Ok(true)) {
            break;
        }
    }
    let _ = tokio::time::timeout(IDLE, sandbox_write.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_plain_hex() {
        assert_eq!(chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(chunk_size(b"0;ext=1\r\n"), Some(0));
        for bad in [
            &b"\r\n"[..],
            b"-1\r\n",
            b"0x10\r\n",
            b"1a",
            b" 1\r\n",
            b"ffffffffffffffff\r\n",
        ] {
            assert_eq!(chunk_size(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn a_chunked_body_is_copied_exactly_and_the_next_message_stays() {
        let input = b"4\r\nwiki\r\n5;x\r\npedia\r\n0\r\nTrailer: t\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let mut reader = BufReader::new(&input[..]);
        let mut out = Vec::new();
        copy_body(&mut reader, &mut out, Framing::Chunked)
            .await
            .unwrap();
        assert_eq!(out, &input[..input.len() - 18]);
        let next = read_head(&mut reader, 100, IDLE).await.unwrap();
        assert_eq!(next, b"GET / HTTP/1.1\r\n\r\n");
        let mut broken = BufReader::new(&b"4\r\nwikiXX\r\n"[..]);
        assert!(
            copy_body(&mut broken, &mut Vec::new(), Framing::Chunked)
                .await
                .is_err()
        );
    }

    /// Gives `Basic injected` to the repository's git requests, refuses `/refused`.
    struct Fixed;

    impl Credentials for Fixed {
        async fn authorization(&self, head: &RequestHead) -> Result<Option<String>, Refusal> {
            let route = super::super::rules::RepoRoute::new("h", "o/r").unwrap();
            if head.target == "/refused" {
                return Err(Refusal {
                    status: 502,
                    code: "git_credential_unavailable",
                    message: "none",
                });
            }
            Ok(route
                .is_git_request(&head.method, &head.target)
                .then(|| "Basic injected".to_string()))
        }
    }

    /// A host that records each request (head and body bytes) and answers `ok`.
    async fn host(stream: tokio::io::DuplexStream) -> Vec<String> {
        let (read, mut write) = tokio::io::split(stream);
        let mut read = BufReader::new(read);
        let mut seen = Vec::new();
        while let Ok(raw) = read_head(&mut read, MAX_REQUEST_HEAD, IDLE).await {
            let head = parse_request(&raw).unwrap();
            let mut body = Vec::new();
            copy_body(&mut read, &mut body, head.framing).await.unwrap();
            seen.push(format!(
                "{}{}",
                String::from_utf8_lossy(&raw),
                String::from_utf8_lossy(&body)
            ));
            write
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
        }
        seen
    }

    #[tokio::test]
    async fn requests_keep_alive_with_the_credential_only_on_git_requests_and_bodies_intact() {
        let (mut sandbox, relay_sandbox) = tokio::io::duplex(64 * 1024);
        let (relay_host, host_end) = tokio::io::duplex(64 * 1024);
        let relay = tokio::spawn(async move { relay(relay_sandbox, relay_host, &Fixed).await });
        let host = tokio::spawn(host(host_end));
        let mut answers = BufReader::new(&mut sandbox);
        let requests: [&[u8]; 2] = [
            b"GET /o/r.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: h\r\nAuthorization: Basic sandbox\r\n\r\n",
            b"POST /o/r/issues HTTP/1.1\r\nHost: h\r\nAuthorization: Basic sandbox\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ];
        for request in requests {
            answers.get_mut().write_all(request).await.unwrap();
            let head = read_head(&mut answers, 1024, IDLE).await.unwrap();
            assert!(head.starts_with(b"HTTP/1.1 200 OK"));
            let mut body = Vec::new();
            copy_body(&mut answers, &mut body, Framing::Length(2))
                .await
                .unwrap();
            assert_eq!(body, b"ok");
        }
        // A request whose credential cannot be had is refused, and the connection ends.
        answers
            .get_mut()
            .write_all(b"POST /refused HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        copy_body(&mut answers, &mut rest, Framing::Close)
            .await
            .unwrap();
        let rest = String::from_utf8(rest).unwrap();
        assert!(rest.starts_with("HTTP/1.1 502 "), "{rest}");
        assert!(
            rest.contains("\"code\":\"git_credential_unavailable\""),
            "{rest}"
        );
        relay.await.unwrap();
        let seen = host.await.unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            seen[0].contains("authorization: Basic injected\r\n"),
            "{}",
            seen[0]
        );
        assert!(!seen[0].contains("sandbox"), "{}", seen[0]);
        assert!(
            seen[1].contains("authorization: Basic sandbox\r\n"),
            "{}",
            seen[1]
        );
        assert!(
            seen[1].ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            "{}",
            seen[1]
        );
    }

    #[tokio::test]
    async fn heads_are_bounded() {
        let long = [b'a'; 100];
        let mut reader = BufReader::new(&long[..]);
        assert!(matches!(
            read_head(&mut reader, 50, IDLE).await,
            Err(HeadError::TooLarge)
        ));
        let mut empty = BufReader::new(&b""[..]);
        assert!(matches!(
            read_head(&mut empty, 50, IDLE).await,
            Err(HeadError::Closed)
        ));
    }
}
