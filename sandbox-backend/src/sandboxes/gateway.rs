//! A sandbox's gateway seen from the API: where it is reached
//! (`GET /v1/sandboxes/{id}/tunnels`) and a stream to it for the relay
//! (`/v1/sandboxes/{id}/gateway/...`). The provider decides both; this layer only
//! applies the lifecycle rules (a destroyed sandbox is not found, a stopped one has
//! no gateway to reach).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::sandbox::{GatewayTunnel, SandboxTunnels};

use super::Sandboxes;
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
        Ok(stream)
    }
}
