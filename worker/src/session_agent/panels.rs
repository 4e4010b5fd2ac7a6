//! Panel grants: the records a panel capability names (see
//! `nightshift_session::panel_capability`), kept in the object's `meta` table under
//! `panel:<grant id>`.
//!
//! A grant remembers who it was minted for, with their team role and gateway role
//! at that moment, until its expiry. Every request on a panel origin asks the object
//! to check the grant again against the session's current access facts, so a share
//! removed or lowered takes effect on the next request, not at the capability's
//! expiry. The team role is the one the user had when the grant was minted (a team
//! change applies when the capability expires).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::TeamRole;
use nightshift_session::gateway_token::GatewayRole;
use serde::{Deserialize, Serialize};
use worker::{Request, Response};

use super::SessionAgent;
use crate::api_error::{ApiError, ApiResult, json};
use crate::internal::{Caller, PanelAdmission, PanelGrant, PanelGrantRequest};
use crate::{clock, config, ids};

const GRANT_PREFIX: &str = "panel:";

/// A grant as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredGrant {
    user_id: String,
    team_role: TeamRole,
    role: String,
    expires_at_secs: u32,
    origin_expires_at_secs: u32,
}

impl SessionAgent {
    /// `POST /panel-grants`: a new grant for the (already admitted) caller, or the
    /// renewal of one of theirs ([`PanelGrantRequest::renew`]) that has not expired:
    /// its expiry moves on, up to its origin's, with the caller's current role.
    pub(super) async fn create_panel_grant(&self, req: &mut Request) -> ApiResult<Response> {
        let request: PanelGrantRequest = match req.text().await {
            Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text)?,
            _ => PanelGrantRequest::default(),
        };
        let caller =
            Caller::of(req)?.ok_or_else(|| ApiError::internal("a panel grant needs a caller"))?;
        let record = self.store.record()?;
        let facts = self
            .store
            .access_facts()?
            .ok_or_else(|| ApiError::not_found("no such session"))?;
        let role = facts
            .role_of(&caller.user_id, caller.team_role)
            .map(GatewayRole::for_session_role)
            .ok_or_else(|| ApiError::not_found("no such session"))?;
        let now = clock::now_secs();
        self.store.delete_expired_meta(GRANT_PREFIX, now)?;
        let secs = |value: u64| {
            u32::try_from(value).map_err(|_| ApiError::internal("the clock is past 2106"))
        };
        let renewed = match &request.renew {
            Some(id) if is_grant_id(id) => self
                .stored_grant(id)?
                .filter(|grant| {
                    grant.user_id == caller.user_id && now < u64::from(grant.expires_at_secs)
                })
                .map(|grant| (id.clone(), grant.origin_expires_at_secs)),
            _ => None,
        };
        let (grant_id, origin_expires_at_secs) = match renewed {
            Some(renewed) => renewed,
            // The first 8 hex digits of a random (v4) UUID: 32 random bits, enough
            // because the capability's MAC must also match and the grant expires.
            None => (
                ids::new_id()?.chars().take(8).collect(),
                secs(now + config::panel_origin_max_secs(&self.env))?,
            ),
        };
        let ttl = config::panel_capability_ttl_secs(&self.env);
        let expires_at_secs = secs(now + ttl)?.min(origin_expires_at_secs);
        let grant = StoredGrant {
            user_id: caller.user_id,
            team_role: caller.team_role,
            role: role.as_str().to_owned(),
            expires_at_secs,
            origin_expires_at_secs,
        };
        self.store.save_meta(
            &format!("{GRANT_PREFIX}{grant_id}"),
            &serde_json::to_string(&grant)?,
        )?;
        Ok(json(
            200,
            &PanelGrant {
                grant_id,
                expires_at_secs,
                origin_expires_at_secs,
                role: grant.role,
                sandbox_id: record.sandbox.sandbox_id().map(str::to_owned),
            },
        ))
    }

    /// `GET /panel-grants/{id}`: who the grant admits now. 401 when the grant is
    /// unknown or expired, or its user lost access to the session.
    pub(super) fn check_panel_grant(&self, grant_id: &str) -> ApiResult<Response> {
        let refused = |why: &str| ApiError::new(ErrorCode::Unauthorized, why.to_owned());
        let record = self.store.record()?;
        if !record.initialized || record.deleted {
            return Err(refused("the session is gone"));
        }
        let Some(grant) = self.stored_grant(grant_id)? else {
            return Err(refused("the panel capability is not known"));
        };
        if clock::now_secs() >= u64::from(grant.expires_at_secs) {
            return Err(refused("the panel capability has expired"));
        }
        let facts = self
            .store
            .access_facts()?
            .ok_or_else(|| refused("the session's access is not known"))?;
        let now = facts
            .role_of(&grant.user_id, grant.team_role)
            .map(GatewayRole::for_session_role)
            .ok_or_else(|| refused("you no longer have access to this session"))?;
        let minted = GatewayRole::parse(&grant.role)
            .ok_or_else(|| ApiError::internal("a stored grant with an unknown role"))?;
        Ok(json(
            200,
            &PanelAdmission {
                user_id: grant.user_id,
                // Never more than when it was minted, and never more than now.
                role: now.min(minted).as_str().to_owned(),
                sandbox_id: record.sandbox.sandbox_id().map(str::to_owned),
                team_role: grant.team_role,
            },
        ))
    }

    fn stored_grant(&self, grant_id: &str) -> ApiResult<Option<StoredGrant>> {
        let Some(value) = self.store.meta(&format!("{GRANT_PREFIX}{grant_id}"))? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_str(&value)?))
    }
}

/// Grant ids are 8 lower-case hex digits (what the capability carries).
fn is_grant_id(id: &str) -> bool {
    id.len() == 8
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
