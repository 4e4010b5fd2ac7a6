//! The lifecycle side of checkpoints (the store itself is `crate::checkpoints`):
//! taking one under the shared lifecycle lock like the files API, restoring only
//! while the sandbox's processes are stopped (stopping and starting it around the
//! restore when it was running), and filling a new sandbox from another sandbox's
//! checkpoint before anything runs in it.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::checkpoints::{
    CheckpointInfo, CheckpointRestored, CheckpointSource, CheckpointTaken,
};
use nightshift_protocol::sandbox::SandboxStatus;

use super::Sandboxes;
use super::lifecycle::{Operation, admit, status_name};
use super::record::SandboxRecord;
use crate::checkpoints::{CheckpointError, CheckpointPlace, CheckpointStore, Limits};
use crate::error::ApiError;

impl Sandboxes {
    fn checkpoint_store(&self, id: &str) -> CheckpointStore {
        CheckpointStore::of_sandbox(&self.store.sandbox_dir(id))
    }

    /// Where `record`'s workspace is, or 501 for a provider without checkpoints.
    fn checkpoint_place(&self, record: &SandboxRecord) -> Result<CheckpointPlace, ApiError> {
        let provider = self.provider_of(record)?;
        provider
            .checkpoint_place(&self.spec(record))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unsupported,
                    format!(
                        "the {} provider does not support checkpoints",
                        provider.name()
                    ),
                )
            })
    }

    /// Records the sandbox's workspace as it is now.
    pub async fn take_checkpoint(&self, id: &str) -> Result<CheckpointTaken, ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let _live = entry.live.read().await;
        let record = entry.snapshot();
        admit(id, record.status, Operation::ReadFiles)?;
        let place = self.checkpoint_place(&record)?;
        let store = self.checkpoint_store(id);
        let now = super::now_millis();
        let taken = blocking(move || store.take(&place.workspace, Limits::from_env(), now)).await?;
        tracing::info!(sandbox = %id, checkpoint = %taken.id, files = taken.files, bytes_added = taken.bytes_added, ms = taken.ms, "checkpoint taken");
        Ok(taken)
    }

    pub fn checkpoints(&self, id: &str) -> Result<Vec<CheckpointInfo>, ApiError> {
        let record = self.entry(id)?.snapshot();
        if record.status == SandboxStatus::Destroyed {
            return Err(ApiError::sandbox_not_found(id));
        }
        self.checkpoint_place(&record)?;
        Ok(self.checkpoint_store(id).list()?)
    }

    /// Puts the workspace back as checkpoint `checkpoint` recorded it. A running
    /// sandbox is stopped first (its runner and commands end) and started again
    /// after, so nothing in it races the restore.
    pub async fn restore_checkpoint(
        &self,
        id: &str,
        checkpoint: &str,
    ) -> Result<CheckpointRestored, ApiError> {
        self.refuse_when_closing()?;
        let entry = self.entry(id)?;
        let record = entry.snapshot();
        admit(id, record.status, Operation::ReadFiles)?;
        let place = self.checkpoint_place(&record)?;
        let store = self.checkpoint_store(id);
        if !store.has(checkpoint) {
            return Err(CheckpointError::NotFound(checkpoint.into()).into());
        }
        let was_running = record.status == SandboxStatus::Ready;
        if was_running {
            self.stop(id).await?;
        }
        let restored = {
            let _live = entry.live.write().await;
            let status = entry.snapshot().status;
            if status != SandboxStatus::Stopped {
                return Err(ApiError::conflict(format!(
                    "sandbox {id} is {}; a checkpoint is restored only while it is stopped",
                    status_name(status)
                )));
            }
            let checkpoint = checkpoint.to_string();
            blocking(move || store.restore(&checkpoint, &place.workspace, place.user)).await?
        };
        if was_running {
            self.start(id).await?;
        }
        tracing::info!(sandbox = %id, checkpoint = %restored.id, ms = restored.ms, "checkpoint restored");
        Ok(restored)
    }

    /// Checks, before a sandbox is created from it, that the checkpoint exists.
    pub(super) fn check_checkpoint_source(
        &self,
        source: &CheckpointSource,
    ) -> Result<(), ApiError> {
        let record = self.entry(&source.sandbox)?.snapshot();
        if record.status == SandboxStatus::Destroyed {
            return Err(ApiError::sandbox_not_found(&source.sandbox));
        }
        self.checkpoint_place(&record)?;
        if !self
            .checkpoint_store(&source.sandbox)
            .has(&source.checkpoint)
        {
            return Err(CheckpointError::NotFound(source.checkpoint.clone()).into());
        }
        Ok(())
    }

    /// Fills a sandbox being created (nothing of the sandbox's own has run in it yet)
    /// from another sandbox's checkpoint.
    pub(super) async fn restore_into_new(
        &self,
        record: &SandboxRecord,
        source: &CheckpointSource,
    ) -> Result<(), ApiError> {
        let place = self.checkpoint_place(record)?;
        let store = self.checkpoint_store(&source.sandbox);
        let checkpoint = source.checkpoint.clone();
        blocking(move || store.restore(&checkpoint, &place.workspace, place.user)).await?;
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CheckpointError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(format!("the checkpoint task failed: {error}")))?
        .map_err(ApiError::from)
}
