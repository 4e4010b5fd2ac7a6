//! Ending sessions: `POST /api/sessions/{id}/archive`, `DELETE /api/sessions/{id}`
//! and `POST /api/sessions/bulk` (either of them for up to
//! [`MAX_BULK_IDS`] sessions at once).
//!
//! Only a session's owner or a team admin ends it (a co-owner, collaborator or
//! viewer gets 403). Archiving asks the session's `SessionAgent` to record it, end
//! what runs and destroy the sandbox, then writes the D1 row at once (so the list
//! that follows the answer already knows); deleting wipes the object, then D1's rows
//! and R2's objects. A bulk request does the same to each session on its own: one
//! that fails leaves the others done, and none is left half done by the bulk route
//! itself.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::api::{DeleteSessionRequest, SessionStatus};
use nightshift_protocol::auth::SessionRole;
use nightshift_protocol::events::SessionListEvent;
use nightshift_protocol::session_list::{
    ArchiveSessionRequest, BulkAction, BulkOutcome, BulkRequest, BulkResponse, MAX_BULK_IDS,
};
use serde::Deserialize;
use worker::{Env, Request, Response};

use super::sessions::agent_ok;
use crate::api_error::{ApiError, ApiResult, json};
use crate::auth::User;
use crate::internal::{self, AgentCall};
use crate::{body, session_access, sessions_table};

/// Refuses `user` unless they own session `id` or are a team admin: `not_found` when
/// they cannot see it, `forbidden` when they can but may not end it.
async fn require_owner_or_admin(env: &Env, user: &User, id: &str, verb: &str) -> ApiResult<()> {
    match session_access::role_of(env, &user.id, user.role, id).await? {
        None => Err(ApiError::not_found(format!("no session {id}"))),
        Some(SessionRole::Owner | SessionRole::Admin) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("only the session's owner or a team admin can {verb} it"),
        )),
    }
}

/// What the `SessionAgent` answers `POST /archive` with.
#[derive(Debug, Deserialize)]
struct Archived {
    archived_at: i64,
}

/// Archives session `id` for `user` (idempotent: archiving again answers the same).
async fn archive_one(env: &Env, user: &User, id: &str) -> ApiResult<()> {
    require_owner_or_admin(env, user, id, "archive").await?;
    let response = internal::call_agent::<()>(env, id, AgentCall::Archive, None).await?;
    if !(200..300).contains(&response.status_code()) {
        return Err(crate::api_error::from_response(response).await);
    }
    let mut response = response;
    let Archived { archived_at } = response
        .json()
        .await
        .map_err(|error| ApiError::internal(format!("the session's answer: {error}")))?;
    sessions_table::set_archived(env, id, archived_at).await?;
    internal::publish(
        env,
        &SessionListEvent::SessionStatusChanged {
            session_id: id.to_owned(),
            status: SessionStatus::Archived,
        },
    )
    .await;
    Ok(())
}

/// Deletes session `id` for `user`: destroys its sandbox, ends its runner link and
/// streams, forgets its prompts and events, its D1 rows and its R2 objects, and
/// removes it from every list.
async fn delete_one(env: &Env, user: &User, id: &str) -> ApiResult<()> {
    require_owner_or_admin(env, user, id, "delete").await?;
    let response = internal::call_agent::<()>(env, id, AgentCall::Delete, None).await;
    agent_ok(response).await?;
    sessions_table::delete(env, id).await?;
    super::artifacts::delete_all(env, id).await;
    internal::publish(
        env,
        &SessionListEvent::SessionDeleted {
            session_id: id.to_owned(),
        },
    )
    .await;
    Ok(())
}

/// `POST /api/sessions/{id}/archive`: answers the session as it is afterwards.
pub async fn archive(req: &mut Request, env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let _: ArchiveSessionRequest = body::read_json_or_default(req).await?;
    archive_one(env, user, id).await?;
    let session = sessions_table::require(env, id, &user.id).await?;
    Ok(json(200, &session))
}

/// `DELETE /api/sessions/{id}`.
pub async fn delete(req: &mut Request, env: &Env, user: &User, id: &str) -> ApiResult<Response> {
    let _: DeleteSessionRequest = body::read_json_or_default(req).await?;
    delete_one(env, user, id).await?;
    Ok(Response::empty()?.with_status(204))
}

/// `POST /api/sessions/bulk`: the body is checked whole before anything is done
/// (a bad one is 400 and changes nothing); then each id gets its own outcome.
pub async fn bulk(req: &mut Request, env: &Env, user: &User) -> ApiResult<Response> {
    let request: BulkRequest = body::read_json(req).await?;
    check_bulk(&request)?;
    let mut results = Vec::with_capacity(request.ids.len());
    for id in &request.ids {
        let outcome = match request.action {
            BulkAction::Archive => archive_one(env, user, id).await,
            BulkAction::Delete => delete_one(env, user, id).await,
        };
        results.push(BulkOutcome {
            id: id.clone(),
            ok: outcome.is_ok(),
            error: outcome.err().map(|error| error.code),
        });
    }
    Ok(json(200, &BulkResponse { results }))
}

/// A bulk body names between 1 and [`MAX_BULK_IDS`] distinct, well-formed ids.
fn check_bulk(request: &BulkRequest) -> ApiResult<()> {
    let invalid = |message: String| Err(ApiError::new(ErrorCode::InvalidRequest, message));
    if request.ids.is_empty() || request.ids.len() > MAX_BULK_IDS {
        return invalid(format!("ids must name 1 to {MAX_BULK_IDS} sessions"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in &request.ids {
        let well_formed = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !well_formed {
            return invalid(format!("`{id}` is not a session id"));
        }
        if !seen.insert(id.as_str()) {
            return invalid(format!("`{id}` is named twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ids: &[&str]) -> BulkRequest {
        BulkRequest {
            action: BulkAction::Archive,
            ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        }
    }

    #[test]
    fn a_bulk_body_names_one_to_a_hundred_distinct_ids() {
        assert!(check_bulk(&request(&["a-1", "b2"])).is_ok());
        assert!(check_bulk(&request(&[])).is_err());
        let many: Vec<String> = (0..=MAX_BULK_IDS).map(|n| format!("s{n}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(check_bulk(&request(&many[..MAX_BULK_IDS])).is_ok());
        assert!(check_bulk(&request(&many)).is_err());
        assert!(check_bulk(&request(&["a", "a"])).is_err());
        assert!(check_bulk(&request(&["a/b"])).is_err());
        assert!(check_bulk(&request(&[""])).is_err());
    }
}
