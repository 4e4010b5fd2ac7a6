//! The panel proxy: requests whose `Host` is `<capability>.<panel domain>` (see
//! `nightshift_session::panel_capability`) go, whatever their path, to the gateway
//! of the capability's session, through the sandbox backend's relay.
//!
//! On every request: the capability's MAC and expiry are checked here (401 without
//! asking anyone), then the session's `SessionAgent` checks the grant it names and
//! the user's current access (401 when either is gone) and says where the sandbox
//! is. The request then goes to `<backend>/v1/sandboxes/{id}/gateway/<path>` with the
//! backend's bearer and a gateway token minted for this request alone (a minute
//! long) in `X-Gateway-Authorization`; WebSocket upgrades pass through the same way.
//! The browser never sees a gateway token, the backend's address or the deployment
//! secret, and the panel origin never receives the app's cookies (another origin).

use nightshift_protocol::ErrorCode;
use nightshift_session::gateway_token::{GatewayClaims, GatewayKey, GatewayRole};
use nightshift_session::panel_capability;
use wasm_bindgen::JsValue;
use worker::{Env, Fetch, Headers, Request, RequestInit, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::internal::{self, AgentCall, PanelAdmission};
use crate::{clock, config};

/// A gateway token minted for one proxied request lives this long: enough to open
/// the connection; an open WebSocket is not cut when it expires.
const GATEWAY_TOKEN_MS: u64 = 60_000;

/// Request headers never passed to the sandbox: the client cannot choose the
/// backend's bearer or the gateway token, and hop-by-hop headers are the relay's.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "x-gateway-authorization",
    "host",
    "cf-connecting-ip",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// The capability label of `req`'s host, when it is a panel host.
pub fn capability_of(req: &Request, env: &Env) -> Option<String> {
    let url = req.url().ok()?;
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => return None,
    };
    let domain = config::panel_domain(env, req);
    panel_capability::label_of_host(&host, &domain).map(str::to_owned)
}

/// Answers a request on a panel host; every failure is the error envelope.
pub async fn handle(req: Request, env: Env, label: String) -> Response {
    match proxy(req, &env, &label).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn proxy(req: Request, env: &Env, label: &str) -> ApiResult<Response> {
    let secret = config::deployment_secret(env).map_err(ApiError::internal)?;
    let capability = panel_capability::verify(secret.as_bytes(), label, clock::now_secs())
        .map_err(|error| ApiError::new(ErrorCode::Unauthorized, error.to_string()))?;
    let session_id = capability.session_id.as_str();
    let admission = admission(env, session_id, &capability.grant_id).await?;
    // The grant's session role was decided with the team role of its minting; a
    // member removed or whose team role changed since holds it no longer.
    let team_role = crate::auth::cache::team_role_of(env, &admission.user_id).await?;
    if team_role != Some(admission.team_role) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "your membership of the team changed; open the panel again",
        ));
    }
    let sandbox_id = admission.sandbox_id.ok_or_else(|| {
        ApiError::new(
            ErrorCode::SandboxUnavailable,
            "the session's sandbox is not ready yet",
        )
    })?;
    let role = GatewayRole::parse(&admission.role)
        .ok_or_else(|| ApiError::internal("an unknown gateway role"))?;
    let token = gateway_token(&secret, session_id, &admission.user_id, role)?;

    let url = req.url()?;
    let target = relay_url(env, &sandbox_id, url.path(), url.query());
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if !DROPPED_HEADERS.contains(&name.as_str()) {
            headers.set(&name, &value)?;
        }
    }
    let backend_token = config::sandbox_backend_token(env).ok_or_else(|| {
        ApiError::new(
            ErrorCode::SandboxUnavailable,
            "SANDBOX_BACKEND_TOKEN is not set",
        )
    })?;
    headers.set("authorization", &format!("Bearer {backend_token}"))?;
    headers.set("x-gateway-authorization", &format!("Bearer {token}"))?;
    // code-server checks a WebSocket's `Origin` against the host it was asked
    // for: that is the panel host, not the relay's.
    if let Some(host) = url.host_str() {
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        headers.set("x-forwarded-host", &host)?;
    }
    headers.set("x-forwarded-proto", url.scheme())?;

    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(headers);
    if !matches!(req.method(), worker::Method::Get | worker::Method::Head) {
        init.with_body(req.inner().body().map(JsValue::from));
    }
    let outbound = Request::new_with_init(&target, &init)?;
    // The answer (a page, a stream, or a 101 with its WebSocket) goes back as is.
    Fetch::Request(outbound).send().await.map_err(|error| {
        ApiError::new(
            ErrorCode::SandboxUnavailable,
            format!("the sandbox backend did not answer: {error}"),
        )
    })
}

/// Asks the session's `SessionAgent` whether the grant still admits its user.
pub async fn admission(env: &Env, session_id: &str, grant_id: &str) -> ApiResult<PanelAdmission> {
    let request = internal::agent_request(
        session_id,
        AgentCall::CheckPanelGrant(grant_id),
        None,
        None,
        None,
    )?;
    let mut response = internal::forward_to_agent(env, session_id, request).await?;
    if response.status_code() != 200 {
        return Err(crate::api_error::from_response(response).await);
    }
    Ok(response.json().await?)
}

/// A gateway token for one request of `user_id` in `role`.
pub fn gateway_token(
    secret: &str,
    session_id: &str,
    user_id: &str,
    role: GatewayRole,
) -> ApiResult<String> {
    let key = GatewayKey::derive(secret.as_bytes(), session_id)
        .map_err(|error| ApiError::internal(format!("gateway key: {error}")))?;
    key.mint(&GatewayClaims {
        session_id: session_id.to_owned(),
        user_id: user_id.to_owned(),
        role,
        expires_at_ms: u64::try_from(clock::now_ms()).unwrap_or_default() + GATEWAY_TOKEN_MS,
    })
    .map_err(|error| ApiError::internal(format!("gateway token: {error}")))
}

/// The relay URL of `path` (with its query) in the sandbox's gateway.
pub fn relay_url(env: &Env, sandbox_id: &str, path: &str, query: Option<&str>) -> String {
    let sandbox: String = sandbox_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    let query = query.map(|query| format!("?{query}")).unwrap_or_default();
    format!(
        "{}/v1/sandboxes/{sandbox}/gateway{path}{query}",
        config::sandbox_backend_url(env)
    )
}
