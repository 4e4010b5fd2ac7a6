//! The sign-in, profile, team, sharing and key routes. URLs and bodies only, like the
//! rest of [`crate::api`]; the bodies are `nightshift_protocol::auth`'s types.

use nightshift_protocol::auth::{
    AcceptShareResponse, ApiTokenInfo, CreateInviteRequest, CreateKeyRequest,
    CreateShareLinkRequest, CreateTokenRequest, CreatedToken, DevLoginRequest, InviteInfo, KeyInfo,
    Me, MemberInfo, PatchMeRequest, PatchMemberRequest, Providers, PutShareRequest, SessionRole,
    ShareLinkInfo, SharesList, TeamMember, TeamRole, TeamSettings, Viewer,
};
use nightshift_protocol::sleep::{MySettings, PutMySettings};
use serde::de::DeserializeOwned;

use super::{ApiError, encode, request_json, request_text, session_path};
use crate::account::access::SessionAccess;
use crate::account::answers::{parse_list, parse_models};

const NO_BODY: Option<&()> = None;

/// `GET /auth/providers`.
pub async fn providers() -> Result<Providers, ApiError> {
    request_json("GET", "/auth/providers", NO_BODY).await
}

/// `POST /auth/dev/login`; the answer sets the session cookie.
pub async fn dev_login(name: &str, email: &str, invite: Option<&str>) -> Result<(), ApiError> {
    let body = DevLoginRequest {
        email: email.to_owned(),
        name: name.to_owned(),
        invite: invite.map(str::to_owned),
    };
    request_text("POST", "/auth/dev/login", Some(&body))
        .await
        .map(drop)
}

/// `POST /auth/logout`.
pub async fn logout() -> Result<(), ApiError> {
    request_text("POST", "/auth/logout", Some(&serde_json::json!({})))
        .await
        .map(drop)
}

/// `GET /api/me`.
pub async fn me() -> Result<Me, ApiError> {
    request_json("GET", "/api/me", NO_BODY).await
}

/// `PATCH /api/me`.
pub async fn update_me(update: &PatchMeRequest) -> Result<Me, ApiError> {
    request_json("PATCH", "/api/me", Some(update)).await
}

/// `GET /api/me/settings`.
pub async fn my_settings() -> Result<MySettings, ApiError> {
    request_json("GET", "/api/me/settings", NO_BODY).await
}

/// `PUT /api/me/settings`.
pub async fn save_my_settings(settings: &PutMySettings) -> Result<MySettings, ApiError> {
    request_json("PUT", "/api/me/settings", Some(settings)).await
}

/// `GET /api/models`: the models a default can be picked from; empty when the server
/// has no such list.
pub async fn models() -> Vec<String> {
    match request_text("GET", "/api/models", NO_BODY).await {
        Ok((_, text)) => parse_models(&text),
        Err(_) => Vec::new(),
    }
}

/// `GET /api/tokens`.
pub async fn tokens() -> Result<Vec<ApiTokenInfo>, ApiError> {
    list("/api/tokens", "tokens").await
}

/// `POST /api/tokens`: the answer carries the token, once.
pub async fn create_token(token: &CreateTokenRequest) -> Result<CreatedToken, ApiError> {
    request_json("POST", "/api/tokens", Some(token)).await
}

/// `DELETE /api/tokens/{id}`.
pub async fn revoke_token(id: &str) -> Result<(), ApiError> {
    delete(&format!("/api/tokens/{}", encode(id))).await
}

/// `GET /api/admin/members`.
pub async fn members() -> Result<Vec<MemberInfo>, ApiError> {
    list("/api/admin/members", "members").await
}

/// `PATCH /api/admin/members/{id}`.
pub async fn set_member_role(user_id: &str, role: TeamRole) -> Result<(), ApiError> {
    let body = PatchMemberRequest { role };
    request_text(
        "PATCH",
        &format!("/api/admin/members/{}", encode(user_id)),
        Some(&body),
    )
    .await
    .map(drop)
}

/// `DELETE /api/admin/members/{id}`.
pub async fn remove_member(user_id: &str) -> Result<(), ApiError> {
    delete(&format!("/api/admin/members/{}", encode(user_id))).await
}

/// `GET /api/admin/invites`.
pub async fn invites() -> Result<Vec<InviteInfo>, ApiError> {
    list("/api/admin/invites", "invites").await
}

/// `POST /api/admin/invites`.
pub async fn create_invite(invite: &CreateInviteRequest) -> Result<InviteInfo, ApiError> {
    request_json("POST", "/api/admin/invites", Some(invite)).await
}

/// `DELETE /api/admin/invites/{id}`.
pub async fn revoke_invite(id: &str) -> Result<(), ApiError> {
    delete(&format!("/api/admin/invites/{}", encode(id))).await
}

/// `GET /api/admin/settings`.
pub async fn team_settings() -> Result<TeamSettings, ApiError> {
    request_json("GET", "/api/admin/settings", NO_BODY).await
}

/// `PUT /api/admin/settings`.
pub async fn save_team_settings(settings: &TeamSettings) -> Result<(), ApiError> {
    request_text("PUT", "/api/admin/settings", Some(settings))
        .await
        .map(drop)
}

/// `GET /api/team/members`.
pub async fn team_members() -> Result<Vec<TeamMember>, ApiError> {
    list("/api/team/members", "members").await
}

/// `GET /api/sessions/{id}`, read for its access fields only.
pub async fn session_access(session_id: &str) -> Result<SessionAccess, ApiError> {
    request_json("GET", &session_path(session_id, ""), NO_BODY).await
}

/// `GET /api/sessions/{id}/presence`.
pub async fn presence(session_id: &str) -> Result<Vec<Viewer>, ApiError> {
    list(&session_path(session_id, "/presence"), "viewers").await
}

/// `POST /api/sessions/{id}/presence`: the heartbeat that keeps the caller listed as
/// watching (the server's lease lasts about two heartbeats).
pub async fn presence_heartbeat(session_id: &str) -> Result<(), ApiError> {
    request_text("POST", &session_path(session_id, "/presence"), NO_BODY)
        .await
        .map(drop)
}

/// `DELETE /api/sessions/{id}/presence`, sent with `keepalive` so it still goes out
/// while the page is being hidden or unloaded; nothing waits for the answer.
pub fn leave_presence(session_id: &str) {
    use wasm_bindgen::JsValue;
    let init = web_sys::RequestInit::new();
    init.set_method("DELETE");
    // `keepalive` has no setter in this web-sys; it is a plain dictionary member.
    let _ = js_sys::Reflect::set(&init, &JsValue::from_str("keepalive"), &JsValue::TRUE);
    if let Ok(headers) = web_sys::Headers::new() {
        if let Some(token) = crate::browser_session::csrf_token() {
            let _ = headers.set("X-CSRF-Token", &token);
        }
        init.set_headers(&headers);
    }
    if let Some(window) = web_sys::window() {
        // The promise is dropped: a page going away cannot read the answer anyway.
        let _ = window.fetch_with_str_and_init(&session_path(session_id, "/presence"), &init);
    }
}

/// `GET /api/sessions/{id}/shares`.
pub async fn shares(session_id: &str) -> Result<SharesList, ApiError> {
    request_json("GET", &session_path(session_id, "/shares"), NO_BODY).await
}

/// `PUT /api/sessions/{id}/shares/{user_id}`.
pub async fn share_with(
    session_id: &str,
    user_id: &str,
    role: SessionRole,
) -> Result<(), ApiError> {
    let path = session_path(session_id, &format!("/shares/{}", encode(user_id)));
    let body = PutShareRequest { role };
    request_text("PUT", &path, Some(&body)).await.map(drop)
}

/// `DELETE /api/sessions/{id}/shares/{user_id}`.
pub async fn unshare(session_id: &str, user_id: &str) -> Result<(), ApiError> {
    delete(&session_path(
        session_id,
        &format!("/shares/{}", encode(user_id)),
    ))
    .await
}

/// `POST /api/sessions/{id}/share-links`.
pub async fn create_share_link(
    session_id: &str,
    link: &CreateShareLinkRequest,
) -> Result<ShareLinkInfo, ApiError> {
    request_json(
        "POST",
        &session_path(session_id, "/share-links"),
        Some(link),
    )
    .await
}

/// `DELETE /api/sessions/{id}/share-links/{link_id}`.
pub async fn revoke_share_link(session_id: &str, link_id: &str) -> Result<(), ApiError> {
    delete(&session_path(
        session_id,
        &format!("/share-links/{}", encode(link_id)),
    ))
    .await
}

/// `POST /api/share-links/{token}/accept`.
pub async fn accept_share(token: &str) -> Result<AcceptShareResponse, ApiError> {
    let path = format!("/api/share-links/{}/accept", encode(token));
    request_json("POST", &path, Some(&serde_json::json!({}))).await
}

/// `GET /api/keys`.
pub async fn keys() -> Result<Vec<KeyInfo>, ApiError> {
    list("/api/keys", "keys").await
}

/// `POST /api/keys`.
pub async fn add_key(key: &CreateKeyRequest) -> Result<KeyInfo, ApiError> {
    request_json("POST", "/api/keys", Some(key)).await
}

/// `DELETE /api/keys/{id}`.
pub async fn delete_key(id: &str) -> Result<(), ApiError> {
    delete(&format!("/api/keys/{}", encode(id))).await
}

async fn list<T: DeserializeOwned>(path: &str, field: &str) -> Result<Vec<T>, ApiError> {
    let (status, text) = request_text("GET", path, NO_BODY).await?;
    parse_list(&text, field).map_err(|error| ApiError {
        code: None,
        message: format!("unexpected answer from {path}: {error}"),
        status,
    })
}

async fn delete(path: &str) -> Result<(), ApiError> {
    request_text("DELETE", path, NO_BODY).await.map(drop)
}
