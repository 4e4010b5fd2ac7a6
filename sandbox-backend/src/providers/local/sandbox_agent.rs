//! The sandbox agent: one long-lived process inside each local sandbox (started once,
//! under bubblewrap, by the local provider) that starts commands on request. An exec
//! then costs a fork inside namespaces that already exist instead of a new
//! bubblewrap.
//!
//! The agent is this crate's own binary run as `sandbox-backend __agent`. It accepts
//! connections on a unix socket it inherits as its standard input: the socket file
//! lives in the sandbox's private directory on the host, outside anything mounted
//! into the sandbox, so commands inside cannot reach it; only the backend (and the
//! runner's `command_wrapper`, [`enter`]) can.
//!
//! One connection carries one request ([`wire::Request`], a JSON line) and, for a
//! spawn, the frames of that command both ways ([`wire::Frame`]). Closing the
//! connection kills the command's process group. A `connect` request turns the
//! connection into the bytes of a loopback port inside the sandbox (the gateway's,
//! for the backend's relay). See [`server`] and [`client`].

pub mod bridge;
pub mod client;
pub mod egress;
pub mod enter;
pub mod proxy;
pub mod server;
pub mod tool_relay;
pub mod tool_shell;
pub mod wire;
