//! The gateway of a docker sandbox: `nightshift-gateway serve` started inside the
//! container (the sandbox image, `docker/`, has it) on 127.0.0.1:9000 of the
//! container's own loopback, and the relay's one way to it: an exec of
//! `nightshift-gateway connect` whose streams carry the connection's bytes. No port
//! of the host is published and the container keeps network `none`: the Engine's
//! exec is the only path, and `connect` reaches port 9000 and nothing else (the port
//! is not an argument).
//!
//! The session's key goes in on the starting exec's standard input, never on a
//! command line or in the container's environment (both of which `docker inspect`
//! shows), to a small supervisor in the container that writes it into a fresh 0600
//! file before each start of the gateway (which deletes it once read) and starts the
//! gateway again with a back-off when it exits. It is started at create and at every
//! start of the container; what it and the gateway print goes to [`LOG_FILE`] inside
//! the sandbox.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use nightshift_protocol::sandbox::{GATEWAY_PORT, GatewayLaunch, GatewayStatus};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::exec::ExecPlan;
use crate::providers::{GatewayPlace, GatewayStream};

/// Where the key is handed over (the image makes `/run/nightshift` the sandbox
/// user's; a tmpfs such as `/tmp` cannot be written through the Engine's archive
/// API, and the exec's stdin needs neither).
pub const KEY_FILE: &str = "/run/nightshift/gateway.key";
pub const LOG_FILE: &str = "/run/nightshift/gateway.log";
/// The bridge the relay runs for each connection.
pub const CONNECT_ARGV: [&str; 2] = ["nightshift-gateway", "connect"];
/// How large a chunk of the gateway's bytes is carried at once.
const BUFFER: usize = 64 * 1024;

/// `sh -c` script: `$1` the key file, `$2` the session, `$3` the port, `$4`
/// [`SUPERVISOR_SCRIPT`]. It reads the key from stdin and hands it, again on stdin
/// (`printf` is the shell's own: no command line holds it), to the supervisor,
/// which `setsid -f` leaves running once this exec ends, in a session of its own.
const START_SCRIPT: &str = r#"command -v nightshift-gateway >/dev/null || { echo "nightshift-gateway is not installed in the sandbox image" >&2; exit 127; }
key=$(cat)
[ -n "$key" ] || { echo "no gateway key was given" >&2; exit 1; }
printf '%s\n' "$key" | setsid -f sh -c "$4" nightshift-gateway-supervisor "$1" "$2" "$3" > /run/nightshift/gateway.log 2>&1"#;

/// The gateway's supervisor inside the container (the local provider's backend
/// supervises its gateways itself; here the backend may be gone while the container
/// lives on): starts the gateway, and again with a back-off (1 s doubling to 30 s,
/// back to 1 s after a minute up) whenever it exits. The key stays in this shell's
/// memory (no environment, no command line) and is written before every start into a
/// fresh 0600 file (`set -C` refuses one planted there), which the gateway deletes.
const SUPERVISOR_SCRIPT: &str = r#"key=$(cat)
delay=1
while :; do
  rm -f -- "$1"
  (umask 077; set -C; printf '%s\n' "$key" > "$1") || { echo "cannot write the gateway key file $1" >&2; exit 1; }
  started=$(date +%s)
  nightshift-gateway serve --listen "127.0.0.1:$3" --session "$2" --key-file "$1" < /dev/null
  echo "nightshift-gateway exited ($?); starting it again in $delay s" >&2
  if [ $(( $(date +%s) - started )) -ge 60 ]; then delay=1; fi
  sleep "$delay"
  delay=$(( delay * 2 )); [ "$delay" -le 30 ] || delay=30
done"#;

/// The exec that starts the gateway, the key on its stdin.
pub fn start_plan(launch: &GatewayLaunch) -> ExecPlan {
    ExecPlan {
        argv: [
            "sh",
            "-c",
            START_SCRIPT,
            "nightshift-gateway-start",
            KEY_FILE,
            &launch.session,
            &GATEWAY_PORT.to_string(),
            SUPERVISOR_SCRIPT,
        ]
        .map(String::from)
        .to_vec(),
        env: Default::default(),
        cwd: None,
        timeout: Duration::from_secs(30),
        stdin: Some(format!("{}\n", launch.key.expose())),
    }
}

/// What the backend last saw of each sandbox's gateway start.
#[derive(Default)]
pub struct Started(Mutex<HashMap<String, (GatewayStatus, Option<String>)>>);

impl Started {
    pub fn record(&self, id: &str, status: GatewayStatus, reason: Option<String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_string(), (status, reason));
    }

    pub fn forget(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Where the gateway is: always through the relay. A sandbox without a gateway
    /// has none; one this backend did not start itself (it was restarted since) is
    /// `unknown` until its next start.
    pub fn place(&self, id: &str, has_gateway: bool) -> GatewayPlace {
        let (status, reason) = if !has_gateway {
            (GatewayStatus::None, None)
        } else {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(id)
                .cloned()
                .unwrap_or((GatewayStatus::Unknown, None))
        };
        GatewayPlace::Relay { status, reason }
    }
}

/// The connection to the gateway out of an exec's hijacked streams
/// ([`super::client::Hijacked`]): what the relay
/// writes is the exec's stdin as it is; what it reads is the exec's stdout taken out
/// of the Engine's frames (an 8-byte header each: the stream, then the length).
/// Stderr (the bridge's own error, such as nothing listening) is dropped: only the
/// gateway's bytes reach the relay.
pub fn stream_of<T>(io: T) -> Box<dyn GatewayStream>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (near, far) = tokio::io::duplex(BUFFER);
    let (mut far_read, mut far_write) = tokio::io::split(far);
    let (mut exec_read, mut exec_write) = tokio::io::split(io);
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut far_read, &mut exec_write).await;
        // The relay's side ended: the bridge's stdin ends, and it half-closes.
        let _ = exec_write.shutdown().await;
    });
    tokio::spawn(async move {
        let mut header = [0u8; 8];
        let mut payload = vec![0u8; BUFFER];
        while exec_read.read_exact(&mut header).await.is_ok() {
            let mut left =
                u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            while left > 0 {
                let chunk = left.min(payload.len());
                if exec_read.read_exact(&mut payload[..chunk]).await.is_err() {
                    return;
                }
                if header[0] == 1 && far_write.write_all(&payload[..chunk]).await.is_err() {
                    return;
                }
                left -= chunk;
            }
        }
        let _ = far_write.shutdown().await;
    });
    Box::new(near)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_on_stdin_only() {
        let launch = GatewayLaunch {
            session: "ses_1".into(),
            key: "ab".repeat(32).into(),
        };
        let plan = start_plan(&launch);
        assert!(!plan.argv.iter().any(|arg| arg.contains(&"ab".repeat(32))));
        assert_eq!(
            plan.stdin.as_deref(),
            Some(format!("{}\n", "ab".repeat(32)).as_str())
        );
        assert_eq!(&plan.argv[4..7], [KEY_FILE, "ses_1", "9000"]);
    }

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![stream, 0, 0, 0];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[tokio::test]
    async fn only_stdout_reaches_the_relay_and_its_bytes_reach_stdin_as_they_are() {
        let (exec_side, mut engine) = tokio::io::duplex(1024);
        let mut stream = stream_of(exec_side);
        stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut sent = Vec::new();
        engine.read_to_end(&mut sent).await.unwrap_or_default();
        assert_eq!(sent, b"GET / HTTP/1.1\r\n\r\n");

        let (exec_side, mut engine) = tokio::io::duplex(1024);
        let mut stream = stream_of(exec_side);
        // A frame larger than the carrying buffer arrives whole and in order.
        let large = vec![b'x'; BUFFER * 2 + 3];
        let writer = tokio::spawn(async move {
            engine
                .write_all(&frame(1, b"HTTP/1.1 200 OK\r\n"))
                .await
                .unwrap();
            engine
                .write_all(&frame(2, b"connection refused"))
                .await
                .unwrap();
            engine.write_all(&frame(1, &large)).await.unwrap();
            engine.shutdown().await.unwrap();
            engine
        });
        let mut seen = Vec::new();
        stream.read_to_end(&mut seen).await.unwrap();
        let _engine = writer.await.unwrap();
        assert!(seen.starts_with(b"HTTP/1.1 200 OK\r\nxxx"));
        assert_eq!(seen.len(), 17 + BUFFER * 2 + 3);
        assert!(!seen.windows(7).any(|window| window == b"refused"));
    }

    #[test]
    fn the_place_says_what_was_seen() {
        let started = Started::default();
        assert_eq!(
            started.place("sbx", false),
            GatewayPlace::Relay {
                status: GatewayStatus::None,
                reason: None
            }
        );
        assert_eq!(
            started.place("sbx", true),
            GatewayPlace::Relay {
                status: GatewayStatus::Unknown,
                reason: None
            }
        );
        started.record("sbx", GatewayStatus::Unavailable, Some("missing".into()));
        assert_eq!(
            started.place("sbx", true),
            GatewayPlace::Relay {
                status: GatewayStatus::Unavailable,
                reason: Some("missing".into())
            }
        );
        started.forget("sbx");
        assert!(matches!(
            started.place("sbx", true),
            GatewayPlace::Relay {
                status: GatewayStatus::Unknown,
                ..
            }
        ));
    }
}
