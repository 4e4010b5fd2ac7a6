//! The session's copy of its agent's conversation: `GET /conversation` and
//! `POST /conversation` ([`crate::routes::conversation`] forwards the runner's
//! calls with its token's sandbox generation). Only the current sandbox's runner is
//! answered; what it writes is bounded by the store
//! ([`nightshift_session::store::ConversationRefusal`]).

use nightshift_protocol::ErrorCode;
use nightshift_protocol::conversation::{
    ConversationStored, ConversationWrite, MAX_CONVERSATION_WRITE_BYTES,
};
use nightshift_session::store::ConversationRefusal;
use worker::{Request, Response};

use super::SessionAgent;
use crate::api_error::{ApiError, ApiResult, json};
use crate::body;

fn query_u64(req: &Request, name: &str) -> ApiResult<Option<u64>> {
    match req.url()?.query_pairs().find(|(key, _)| key == name) {
        Some((_, value)) => value
            .parse()
            .map(Some)
            .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, format!("bad {name}"))),
        None => Ok(None),
    }
}

impl SessionAgent {
    /// Refuses a runner of any sandbox but the session's current one.
    fn current_runner_only(&self, req: &Request) -> ApiResult<()> {
        let record = self.store.record()?;
        let generation = query_u64(req, "generation")?;
        if !record.initialized
            || record.deleted
            || generation.is_none_or(|g| g != record.sandbox_generation)
        {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this runner token is not the session's current sandbox's",
            ));
        }
        Ok(())
    }

    /// `GET /conversation?from=N`.
    pub(super) fn read_conversation(&self, req: &Request) -> ApiResult<Response> {
        self.current_runner_only(req)?;
        let from = query_u64(req, "from")?.unwrap_or(0);
        Ok(json(200, &self.store.read_conversation(from)?))
    }

    /// `POST /conversation`: answers how many entries are kept after it.
    pub(super) async fn write_conversation(&self, req: &mut Request) -> ApiResult<Response> {
        self.current_runner_only(req)?;
        let raw = body::read_at_most(req, MAX_CONVERSATION_WRITE_BYTES).await?;
        let write: ConversationWrite = body::parse_json(&raw)?;
        match self.store.write_conversation(write.from, &write.entries)? {
            Ok(stored) => Ok(json(200, &ConversationStored { stored })),
            Err(refusal @ ConversationRefusal::Gap { .. }) => {
                Err(ApiError::new(ErrorCode::Conflict, refusal.message()))
            }
            Err(refusal) => Err(ApiError::new(ErrorCode::PayloadTooLarge, refusal.message())),
        }
    }
}
