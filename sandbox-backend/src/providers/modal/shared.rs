//! Modal sandboxes as every backend finds them: a sandbox is created with the tag
//! `nightshift.sandbox` (the backend's id) and `nightshift.record` (the shared record
//! the lifecycle layer hands over), and `SandboxList` filtered on the app and those
//! tags answers which are running, whichever backend created them. The handle (the
//! Modal sandbox id and its task id) is rebuilt from the listing and
//! `SandboxGetTaskId`, so nothing a backend keeps in memory is needed to serve one.

use super::task::TaskAnswer;
use super::{Handle, ModalProvider, proto};
use crate::providers::remote;
use crate::providers::{FoundSandbox, ProviderError, ProviderHandle, SandboxSpec};

/// The tag holding the backend's id of a sandbox.
pub const SANDBOX_TAG: &str = "nightshift.sandbox";
/// The tag holding the shared record.
pub const RECORD_TAG: &str = "nightshift.record";
/// The tag holding the latest activity a backend saw (milliseconds since the epoch).
pub const ACTIVITY_TAG: &str = "nightshift.active";
/// Pages fetched at most per listing: a bound on a listing's time, far above the
/// sandboxes one deployment runs (Modal answers pages of its own size). A longer
/// listing is an error, never a partial answer.
const MAX_PAGES: usize = 100;

/// Tag names a sandbox's labels cannot take.
pub fn is_reserved(name: &str) -> bool {
    name == SANDBOX_TAG || name == RECORD_TAG || name == ACTIVITY_TAG
}

impl ModalProvider {
    /// The tags that make a sandbox findable by every backend.
    pub(super) fn shared_tags(id: &str, record: Option<&str>) -> Vec<proto::SandboxTag> {
        let mut tags = vec![proto::SandboxTag {
            tag_name: SANDBOX_TAG.into(),
            tag_value: id.into(),
        }];
        tags.extend(record.map(|record| proto::SandboxTag {
            tag_name: RECORD_TAG.into(),
            tag_value: record.into(),
        }));
        tags
    }

    pub(super) async fn find_shared(
        &self,
        id: &str,
    ) -> Result<Option<FoundSandbox>, ProviderError> {
        let filter = vec![proto::SandboxTag {
            tag_name: SANDBOX_TAG.into(),
            tag_value: id.into(),
        }];
        let listed = self.list_tagged(filter).await?;
        match listed.into_iter().next() {
            Some(info) => self.found(info).await,
            None => Ok(None),
        }
    }

    pub(super) async fn list_shared(&self) -> Result<Vec<FoundSandbox>, ProviderError> {
        let mut found = Vec::new();
        for info in self.list_tagged(Vec::new()).await? {
            if let Some(sandbox) = self.found(info).await? {
                found.push(sandbox);
            }
        }
        Ok(found)
    }

    /// Every tag of a sandbox: its own, its labels and, when given, the latest activity.
    pub(super) fn all_tags(sandbox: &SandboxSpec, activity: Option<i64>) -> Vec<proto::SandboxTag> {
        let mut tags = Self::shared_tags(&sandbox.id, sandbox.shared_record.as_deref());
        tags.extend(
            sandbox
                .labels
                .iter()
                // A label must not pass for another sandbox's id, record or activity.
                .filter(|(name, _)| !is_reserved(name))
                .map(|(name, value)| proto::SandboxTag {
                    tag_name: name.clone(),
                    tag_value: value.clone(),
                }),
        );
        tags.extend(activity.map(|at| proto::SandboxTag {
            tag_name: ACTIVITY_TAG.into(),
            tag_value: at.to_string(),
        }));
        tags
    }

    /// Sets every tag again (whether `SandboxTagsSet` merges or replaces, the result
    /// is the same), with the activity tag updated.
    pub(super) async fn publish(
        &self,
        sandbox: &SandboxSpec,
        at: i64,
    ) -> Result<(), ProviderError> {
        let handle = super::handle_of(sandbox)?;
        self.set_tags(&handle.sandbox_id, Self::all_tags(sandbox, Some(at)))
            .await
    }

    /// `SandboxTagsSet`: the only way to tag a sandbox (`SandboxCreateRequest` has no
    /// tags in api.proto), so a new sandbox is tagged right after it is created.
    pub(super) async fn set_tags(
        &self,
        sandbox_id: &str,
        tags: Vec<proto::SandboxTag>,
    ) -> Result<(), ProviderError> {
        let _: proto::Empty = self
            .client
            .unary(
                "SandboxTagsSet",
                proto::SandboxTagsSetRequest {
                    environment_name: self.config.environment.clone(),
                    sandbox_id: sandbox_id.to_string(),
                    tags,
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        Ok(())
    }

    pub(super) async fn activity(
        &self,
        sandbox: &SandboxSpec,
    ) -> Result<Option<i64>, ProviderError> {
        let handle = super::handle_of(sandbox)?;
        let tags: proto::SandboxTagsGetResponse = self
            .client
            .unary(
                "SandboxTagsGet",
                proto::SandboxTagsGetRequest {
                    sandbox_id: handle.sandbox_id,
                },
                remote::CALL_TIMEOUT,
            )
            .await?;
        Ok(tags
            .tags
            .iter()
            .find(|tag| tag.tag_name == ACTIVITY_TAG)
            .and_then(|tag| tag.tag_value.parse().ok()))
    }

    /// Running sandboxes of this backend's app with every tag of `tags`, all pages.
    async fn list_tagged(
        &self,
        tags: Vec<proto::SandboxTag>,
    ) -> Result<Vec<proto::SandboxInfo>, ProviderError> {
        let app_id = self.app_id().await?;
        let mut all = Vec::new();
        let mut before = 0.0;
        for _ in 0..MAX_PAGES {
            let page: proto::SandboxListResponse = self
                .client
                .unary(
                    "SandboxList",
                    proto::SandboxListRequest {
                        app_id: app_id.clone(),
                        before_timestamp: before,
                        environment_name: self.config.environment.clone(),
                        include_finished: false,
                        tags: tags.clone(),
                    },
                    remote::CALL_TIMEOUT,
                )
                .await?;
            let Some(last) = page.sandboxes.last() else {
                return Ok(all);
            };
            before = last.created_at;
            all.extend(page.sandboxes);
        }
        // A partial listing would make backends forget sandboxes that still run.
        Err(ProviderError::Unavailable(format!(
            "Modal listed more than {MAX_PAGES} pages of sandboxes; listing stopped"
        )))
    }

    /// A listed sandbox with its shared record, or `None` for one that is not a
    /// backend's (no record tag) or ended between the listing and now.
    async fn found(&self, info: proto::SandboxInfo) -> Result<Option<FoundSandbox>, ProviderError> {
        let Some(record) = info
            .tags
            .iter()
            .find(|tag| tag.tag_name == RECORD_TAG)
            .map(|tag| tag.tag_value.clone())
        else {
            return Ok(None);
        };
        let TaskAnswer::Running(task_id) = self.wait_for_task(&info.id).await? else {
            return Ok(None);
        };
        let handle = Handle {
            sandbox_id: info.id,
            task_id,
            image_id: None,
            retired_image_ids: Vec::new(),
        };
        Ok(Some(FoundSandbox {
            shared_record: record,
            handle: ProviderHandle(serde_json::to_value(handle).expect("a handle serializes")),
        }))
    }
}
