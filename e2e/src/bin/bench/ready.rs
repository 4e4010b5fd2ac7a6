//! Session created -> ready to prompt: `POST /api/sessions`, then the session's event
//! stream (read from its start, so nothing is missed) until its status is `idle`:
//! the sandbox is there (from the backend's warm pool, `SANDBOX_WARM_POOL`, 2 by
//! default) and its runner has said hello. `BENCH_READY_SESSIONS` (20) sessions, one
//! after another, each deleted after, with a second between them so the pool is
//! refilled as it would be between people's clicks.

use std::time::{Duration, Instant};

use anyhow::ensure;
use nightshift_e2e::client::Api;
use nightshift_protocol::api::SessionStatus;
use nightshift_protocol::events::EventBody;
use reqwest::Method;

use super::setting;

/// The times from create to ready, in order.
pub async fn measure(api: &Api) -> anyhow::Result<Vec<Duration>> {
    let sessions = setting("BENCH_READY_SESSIONS", 20);
    let mut times = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let started = Instant::now();
        let session = api.create_session().await?;
        let mut stream = api.events(&session.id, None).await?;
        stream
            .until(|body| {
                matches!(
                    body,
                    EventBody::StatusChanged {
                        status: SessionStatus::Idle
                    }
                )
            })
            .await?;
        times.push(started.elapsed());
        drop(stream);
        let deleted = api
            .raw(
                Method::DELETE,
                &format!("/api/sessions/{}", session.id),
                None,
            )
            .await?;
        ensure!(
            deleted.status == 204,
            "deleting a bench session: {deleted:?}"
        );
    }
    Ok(times)
}
