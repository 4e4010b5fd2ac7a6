//! The sandbox's gateway (`nightshift-gateway serve`): the one way into a session's
//! dev environment, running inside the sandbox as the sandbox's user.
//!
//! It owns the edge between a session's panels and the services behind them: every
//! request but `GET /healthz` must carry a gateway token for this session
//! ([`auth`], tokens from `nightshift_session::gateway_token`); `/vscode/...` is a
//! reverse proxy to code-server ([`vscode`]); `/desktop/vnc` bridges a WebSocket to
//! the desktop's VNC server ([`desktop`]); `/terminal/{tab}` serves shared PTY tabs
//! ([`terminal`]); `/status` reports the services it supervises ([`services`]).
//! Routes are wired in [`routes`], over the state they share ([`state`]) and the
//! WebSocket upgrade rules ([`upgrade`]); [`server`] serves them with a deadline on
//! every request's headers. `nightshift-gateway connect` ([`connect`]) is the byte
//! bridge a backend without a port into the sandbox reaches the gateway through.
//!
//! Invariant: every service binds to loopback inside the sandbox only; the gateway is
//! the only listener meant to be reached from outside, and it authenticates every
//! caller. It trusts nothing it proxies back (the sandbox is hostile), and it holds
//! only its session's derived key, never a deployment secret.

pub mod auth;
pub mod config;
pub mod connect;
pub mod desktop;
pub mod egress;
pub mod error;
pub mod routes;
pub mod server;
pub mod services;
pub mod state;
pub mod terminal;
pub mod upgrade;
pub mod vscode;

pub use config::GatewayConfig;
pub use routes::router;
pub use state::AppState;
