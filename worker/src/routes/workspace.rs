//! `GET /api/sessions/{id}/workspace[?renew=<grant>]`: the caller's panels of a
//! session (VS Code for collaborators and up; the desktop for everyone, view-only
//! for viewers; the terminal for collaborators and up), each with its state from the
//! gateway's `/status`, on the session's panel origin.
//!
//! The origin is `<capability>.<panel domain>` (see `crate::panels`). Its grant is
//! short-lived; the app asks again with `?renew=<grant>` before it expires, which
//! moves the same grant's expiry on (so an open editor keeps its origin and never
//! reloads) as long as the caller still has access.

use nightshift_protocol::gateway::{GatewayStatus, Panel, PanelKind, ServiceState, Workspace};
use nightshift_session::gateway_token::GatewayRole;
use nightshift_session::panel_capability::{self, PanelCapability};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::api_error::{ApiError, ApiResult, json};
use crate::internal::{self, AgentCall, Caller, PanelGrant, PanelGrantRequest};
use crate::timeout::with_timeout;
use crate::{config, panels};

/// Why every panel is unavailable when the deployment runs sandboxes without
/// their gateway.
const PANELS_OFF: &str =
    "this server runs sandboxes without the dev environment (WORKSPACE_PANELS=false)";

/// The gateway's `/status` answers within this, or the panels say why not.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn get(
    req: &Request,
    env: &Env,
    caller: &Caller,
    session_id: &str,
) -> ApiResult<Response> {
    let renew = req
        .url()?
        .query_pairs()
        .find(|(name, _)| name == "renew")
        .map(|(_, value)| value.into_owned());
    let mut response = internal::call_agent_as(
        env,
        session_id,
        caller,
        AgentCall::CreatePanelGrant,
        Some(&PanelGrantRequest { renew }),
    )
    .await?;
    if response.status_code() != 200 {
        return Err(crate::api_error::from_response(response).await);
    }
    let grant: PanelGrant = response.json().await?;
    let secret = config::deployment_secret(env).map_err(ApiError::internal)?;
    let label = panel_capability::mint(
        secret.as_bytes(),
        &PanelCapability {
            session_id: session_id.to_owned(),
            expires_at_secs: grant.origin_expires_at_secs,
            grant_id: grant.grant_id.clone(),
        },
    )
    .map_err(|error| ApiError::internal(format!("panel capability: {error}")))?;
    let url = req.url()?;
    let scheme = url.scheme();
    let ws_scheme = if scheme == "https" { "wss" } else { "ws" };
    let domain = config::panel_domain(env, req);
    let origin = format!("{scheme}://{label}.{domain}");
    let ws_origin = format!("{ws_scheme}://{label}.{domain}");
    let role = GatewayRole::parse(&grant.role)
        .ok_or_else(|| ApiError::internal("an unknown gateway role"))?;

    // Sandboxes started without their gateway never get one: say so rather than
    // leave the panels "starting" for ever.
    let turned_off = config::var(env, "WORKSPACE_PANELS").as_deref() == Some("false");
    let status = match &grant.sandbox_id {
        _ if turned_off => Err(PANELS_OFF.to_owned()),
        Some(sandbox_id) => {
            gateway_status(env, &secret, session_id, &caller.user_id, role, sandbox_id).await
        }
        None => Err("the session's sandbox is being created".to_owned()),
    };
    let waiting = if turned_off {
        ServiceState::Unavailable
    } else {
        ServiceState::Starting
    };
    let service = |name: &str| -> (ServiceState, Option<String>) {
        match &status {
            Err(reason) => (waiting, Some(reason.clone())),
            Ok(status) => match status.services.iter().find(|s| s.name == name) {
                Some(service) => (service.state, service.reason.clone()),
                None => (
                    ServiceState::Unavailable,
                    Some(format!("the sandbox does not run {name}")),
                ),
            },
        }
    };
    let gateway = match &status {
        Ok(_) => (ServiceState::Ready, None),
        Err(reason) => (waiting, Some(reason.clone())),
    };
    let refused = |what: &str| Panel {
        kind: PanelKind::Vscode,
        url: None,
        view_only: false,
        state: ServiceState::Unavailable,
        reason: Some(format!("viewers have no {what}")),
    };
    let changes = role.may_change_workspace();
    let vscode = if changes {
        let (state, reason) = service("vscode");
        Panel {
            kind: PanelKind::Vscode,
            url: Some(format!("{origin}/vscode/?folder=/workspace")),
            view_only: false,
            state,
            reason,
        }
    } else {
        refused("VS Code")
    };
    let (state, reason) = service(if role.drives_desktop() {
        "vnc"
    } else {
        "vnc_view_only"
    });
    let desktop = Panel {
        kind: PanelKind::Desktop,
        url: Some(format!("{ws_origin}/desktop/vnc")),
        view_only: !role.drives_desktop(),
        state,
        reason,
    };
    let terminal = if changes {
        Panel {
            kind: PanelKind::Terminal,
            url: Some(format!("{ws_origin}/terminal/")),
            view_only: false,
            state: gateway.0,
            reason: gateway.1,
        }
    } else {
        Panel {
            kind: PanelKind::Terminal,
            ..refused("terminal")
        }
    };
    Ok(json(
        200,
        &Workspace {
            origin,
            role: grant.role,
            grant: grant.grant_id,
            expires_at_secs: u64::from(grant.expires_at_secs),
            origin_expires_at_secs: u64::from(grant.origin_expires_at_secs),
            panels: vec![vscode, desktop, terminal],
        },
    ))
}

/// The gateway's `/status` through the relay, or why it could not be read.
async fn gateway_status(
    env: &Env,
    secret: &str,
    session_id: &str,
    user_id: &str,
    role: GatewayRole,
    sandbox_id: &str,
) -> Result<GatewayStatus, String> {
    let token =
        panels::gateway_token(secret, session_id, user_id, role).map_err(|error| error.message)?;
    let backend = config::sandbox_backend_token(env)
        .ok_or_else(|| "SANDBOX_BACKEND_TOKEN is not set".to_owned())?;
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|e| e.to_string());
    set("authorization", &format!("Bearer {backend}"))?;
    set("x-gateway-authorization", &format!("Bearer {token}"))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request =
        Request::new_with_init(&panels::relay_url(env, sandbox_id, "/status", None), &init)
            .map_err(|e| e.to_string())?;
    let exchange = async {
        let mut response = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status_code() != 200 {
            let text = response.text().await.unwrap_or_default();
            return Err(format!(
                "the sandbox's gateway is not answering yet ({}): {}",
                response.status_code(),
                text.chars().take(200).collect::<String>()
            ));
        }
        response
            .json::<GatewayStatus>()
            .await
            .map_err(|e| e.to_string())
    };
    match with_timeout(STATUS_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(timed_out) => Err(format!("the sandbox's gateway did not answer: {timed_out}")),
    }
}
