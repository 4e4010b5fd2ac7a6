//! What every route of the gateway shares: its configuration, its session, its key,
//! the services' status and the terminal tabs.

use std::sync::Arc;

use nightshift_session::gateway_token::GatewayKey;

use crate::config::GatewayConfig;
use crate::services::StatusTable;
use crate::terminal::Terminals;

/// What every route shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<GatewayConfig>,
    pub session_id: String,
    pub key: GatewayKey,
    pub status: StatusTable,
    pub terminals: Terminals,
}

impl AppState {
    pub fn new(config: GatewayConfig, key: GatewayKey, status: StatusTable) -> Self {
        let terminals = Terminals::new(config.workspace.clone(), config.max_tabs);
        Self {
            session_id: config.session_id.clone(),
            config: Arc::new(config),
            key,
            status,
            terminals,
        }
    }
}
