//! Railway's public API as the Railway CLI (v5.43) uses it for sandboxes: GraphQL
//! over HTTPS at `backboard.railway.com/graphql/v2` with the token in the header its
//! kind takes ([`super::auth`]), and the exec
//! bridge, a WebSocket at `wss://ssh.railway.com:2226/ws/exec` authorized by a
//! shell-scoped JWT (from the `generateShellToken` mutation) sent as the second
//! `Sec-WebSocket-Protocol` value after `railway-shell`. On the socket: a text
//! `init_exec` first, binary frames tagged 1 (stdout), 2 (stdin), 3 (stderr), text
//! `stdin_close` and `signal` from the client, text `exit` from the server.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::auth::RailwayToken;
use crate::providers::ProviderError;

pub const DEFAULT_GRAPHQL_URL: &str = "https://backboard.railway.com/graphql/v2";
pub const DEFAULT_EXEC_URL: &str = "wss://ssh.railway.com:2226/ws/exec";
pub const SHELL_SUBPROTOCOL: &str = "railway-shell";
pub const STREAM_STDOUT: u8 = 0x01;
pub const STREAM_STDIN: u8 = 0x02;
pub const STREAM_STDERR: u8 = 0x03;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Clone)]
pub struct RailwayClient {
    http: reqwest::Client,
    graphql_url: String,
    exec_url: String,
    token: RailwayToken,
}

impl RailwayClient {
    pub fn new(
        graphql_url: String,
        exec_url: String,
        token: RailwayToken,
    ) -> Result<RailwayClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| format!("cannot set up an HTTP client for Railway: {error}"))?;
        Ok(RailwayClient {
            http,
            graphql_url,
            exec_url,
            token,
        })
    }

    /// One GraphQL operation; its `data`, or the first error as a provider error.
    pub async fn graphql(
        &self,
        query: &str,
        variables: Value,
        timeout: Duration,
    ) -> Result<Value, ProviderError> {
        let operation = query
            .split(['(', '{'])
            .next()
            .unwrap_or("operation")
            .trim()
            .to_string();
        let (header, value) = self.token.header();
        let response = self
            .http
            .post(&self.graphql_url)
            .header(header, value)
            .header("accept", "application/json")
            .json(&json!({ "query": query, "variables": variables }))
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| {
                ProviderError::Unavailable(format!("cannot reach Railway for {operation}: {error}"))
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let first_error = body["errors"][0]["message"].as_str().map(String::from);
        if status.as_u16() == 401
            || status.as_u16() == 403
            || first_error
                .as_deref()
                .is_some_and(|message| message.contains("Not Authorized"))
        {
            return Err(ProviderError::Unavailable(format!(
                "Railway refused the token (check {}: RAILWAY_TOKEN is a project token, RAILWAY_API_TOKEN an account or workspace token) on {operation}: {}",
                self.token.variable(),
                first_error.unwrap_or_else(|| status.to_string())
            )));
        }
        if let Some(message) = first_error {
            return Err(if message.to_ascii_lowercase().contains("not found") {
                ProviderError::Unavailable(format!("Railway: {operation}: {message}"))
            } else {
                ProviderError::InvalidRequest(format!("Railway refused {operation}: {message}"))
            });
        }
        if !status.is_success() || body["data"].is_null() {
            return Err(ProviderError::Unavailable(format!(
                "Railway answered {operation} with HTTP {status} and no data"
            )));
        }
        Ok(body["data"].clone())
    }

    /// Opens the exec bridge for a sandbox.
    pub async fn connect_exec(
        &self,
        environment_id: &str,
        sandbox_id: &str,
    ) -> Result<Socket, ProviderError> {
        let data = self
            .graphql(
                "mutation GenerateShellToken($input: ShellTokenInput!) { generateShellToken(input: $input) }",
                json!({ "input": {
                    "environmentId": environment_id,
                    "instanceId": sandbox_id,
                    "kind": "sandbox",
                    "scope": "shell",
                }}),
                Duration::from_secs(30),
            )
            .await?;
        let jwt = data["generateShellToken"]
            .as_str()
            .ok_or_else(|| ProviderError::Unavailable("Railway returned no shell token".into()))?;
        let mut request = self
            .exec_url
            .as_str()
            .into_client_request()
            .map_err(|error| {
                ProviderError::Unavailable(format!(
                    "bad Railway exec URL {}: {error}",
                    self.exec_url
                ))
            })?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            format!("{SHELL_SUBPROTOCOL}, {jwt}").parse().map_err(|_| {
                ProviderError::Unavailable("Railway's shell token is not a header value".into())
            })?,
        );
        let connect = tokio_tungstenite::connect_async(request);
        let (socket, _) = tokio::time::timeout(Duration::from_secs(15), connect)
            .await
            .map_err(|_| {
                ProviderError::Unavailable(
                    "Railway's exec bridge did not answer within 15 s".into(),
                )
            })?
            .map_err(|error| {
                ProviderError::Unavailable(format!("cannot open Railway's exec bridge: {error}"))
            })?;
        Ok(socket)
    }
}

pub fn init_exec(command: &str) -> String {
    json!({ "type": "init_exec", "data": { "command": command } }).to_string()
}

pub fn stdin_close() -> String {
    json!({ "type": "stdin_close" }).to_string()
}

pub fn signal(name: &str) -> String {
    json!({ "type": "signal", "data": { "signal": name } }).to_string()
}
