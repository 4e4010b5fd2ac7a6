//! A sandbox's gateway seen from the API: where it is reached
//! (`GET /v1/sandboxes/{id}/tunnels`) and a stream to it for the relay
//! (`/v1/sandboxes/{id}/gateway/...`). The provider decides both; this layer only
//! applies the lifecycle rules (a destroyed sandbox is not found, a stopped one has
//! no gateway to reach) and counts what a client sends through a relayed stream as
//! activity, so a sandbox someone is typing into or driving is never stopped as idle.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nightshift_protocol::ErrorCode;
use nightshift_protocol::sandbox::{GatewayTunnel, SandboxTunnels};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Sandboxes;
use super::entry::SandboxEntry;
use super::lifecycle::{Operation, admit};
use crate::error::ApiError;
use crate::providers::{GatewayPlace, GatewayStream, ProviderError};

/// A provider that does not do this yet answers 501 `unsupported`, not the 400 of
/// an option it refuses.
fn not_implemented(error: ProviderError) -> ApiError {
    match error {
        ProviderError::Unsupported(message) => ApiError::new(ErrorCode::Unsupported, message),
        other => other.into(),
    }
}

impl Sandboxes {
    /// Where the sandbox's gateway is reached; `relay_url` is this backend's relay
    /// for the sandbox, the answer for providers reached through it.
    pub async fn tunnels(&self, id: &str, relay_url: String) -> Result<SandboxTunnels, ApiError> {
        let entry = self.entry(id)?;
        let record = entry.snapshot();
        admit(id, record.status, Operation::ReadFiles)?;
        let place = self
            .provider_of(&record)?
            .gateway(&self.spec(&record))
            .await
            .map_err(not_implemented)?;
        let gateway = match place {
            GatewayPlace::Relay { status, reason } => GatewayTunnel {
                url: relay_url,
                headers: Default::default(),
                status,
                reason,
            },
            GatewayPlace::Remote {
                url,
                headers,
                status,
            } => GatewayTunnel {
                url,
                headers,
                status,
                reason: None,
            },
        };
        Ok(SandboxTunnels { gateway })
    }

    /// A byte stream to the gateway's port inside a running sandbox.
    pub async fn open_gateway(&self, id: &str) -> Result<Box<dyn GatewayStream>, ApiError> {
        let entry = self.entry(id)?;
        let _live = entry.live.read().await;
        let record = entry.snapshot();
        admit(id, record.status, Operation::Exec)?;
        let stream = self
            .provider_of(&record)?
            .connect_gateway(&self.spec(&record))
            .await
            .map_err(not_implemented)?;
        // Someone uses the sandbox through its gateway: it is not idle.
        entry.touch();
        Ok(Box::new(ActiveWhileUsed {
            inner: stream,
            entry: Arc::clone(&entry),
            touched: Instant::now(),
        }))
    }
}

/// How often a busy stream marks its sandbox active at most (the mark takes a lock).
const TOUCH_EVERY: Duration = Duration::from_secs(1);

/// A relayed stream that marks its sandbox active whenever the client sends
/// something into it: keystrokes, editor traffic, the desktop's input and update
/// requests. What the sandbox sends back does not count (a process left printing
/// is not someone using the sandbox; its own output is counted by the process
/// table already), and an open but silent connection lets the sandbox go idle.
struct ActiveWhileUsed {
    inner: Box<dyn GatewayStream>,
    entry: Arc<SandboxEntry>,
    touched: Instant,
}

impl ActiveWhileUsed {
    fn used(&mut self) {
        if self.touched.elapsed() >= TOUCH_EVERY {
            self.entry.touch();
            self.touched = Instant::now();
        }
    }
}

impl AsyncRead for ActiveWhileUsed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ActiveWhileUsed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.used();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
