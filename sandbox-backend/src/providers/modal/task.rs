//! Waiting for a Modal sandbox's task (the container its commands run in), the way
//! both official clients do it: `SandboxGetTaskId` again and again, half a second
//! apart, until Modal gives the task id or the sandbox's result, within an overall
//! deadline (libmodal's Go client gives up after 600 tries, five minutes). Each call
//! is itself a long poll (`wait_until_ready`, with the timeout `api.proto` says new
//! clients must send), so most sandboxes need one call.

use std::time::Duration;

use super::{ModalProvider, proto};
use crate::providers::ProviderError;

/// The pause between two calls that found no task yet (both official clients: 500 ms).
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// The longest a sandbox may take to get its task (libmodal's Go client: 600 tries
/// half a second apart).
pub const TASK_DEADLINE: Duration = Duration::from_secs(300);

/// What one `SandboxGetTaskId` answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum TaskAnswer {
    /// The sandbox runs in this task.
    Running(String),
    /// The sandbox ended before (or without) a task; Modal's reason.
    Ended(String),
    /// Not scheduled yet: ask again.
    Pending,
}

impl TaskAnswer {
    /// As libmodal reads an answer: a result means the sandbox has ended, whatever
    /// else the answer holds.
    pub fn of(response: proto::SandboxGetTaskIdResponse) -> TaskAnswer {
        match (response.task_result, response.task_id) {
            (Some(result), _) => TaskAnswer::Ended(result.exception),
            (None, Some(task_id)) if !task_id.is_empty() => TaskAnswer::Running(task_id),
            (None, _) => TaskAnswer::Pending,
        }
    }
}

impl ModalProvider {
    /// The task of a sandbox: `Ok(Running)` or `Ok(Ended)`, never `Pending`; an error
    /// when Modal fails or has not scheduled it within [`TASK_DEADLINE`].
    pub(super) async fn wait_for_task(
        &self,
        sandbox_id: &str,
    ) -> Result<TaskAnswer, ProviderError> {
        let deadline = tokio::time::Instant::now() + TASK_DEADLINE;
        loop {
            let response: proto::SandboxGetTaskIdResponse = self
                .client
                .unary(
                    "SandboxGetTaskId",
                    proto::SandboxGetTaskIdRequest {
                        sandbox_id: sandbox_id.to_string(),
                        timeout: Some(self.config.poll_secs),
                        wait_until_ready: true,
                    },
                    self.config.poll_deadline(),
                )
                .await?;
            match TaskAnswer::of(response) {
                TaskAnswer::Pending => {}
                answer => return Ok(answer),
            }
            if tokio::time::Instant::now() + RETRY_INTERVAL > deadline {
                return Err(ProviderError::Unavailable(format!(
                    "Modal did not start sandbox {sandbox_id} within {} s",
                    TASK_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(task_id: Option<&str>, ended: bool) -> TaskAnswer {
        TaskAnswer::of(proto::SandboxGetTaskIdResponse {
            task_id: task_id.map(String::from),
            task_result: ended.then(|| proto::GenericResult {
                status: proto::GENERIC_STATUS_FAILURE,
                exception: "image pull failed".into(),
                exitcode: 1,
            }),
        })
    }

    #[test]
    fn a_task_id_means_the_sandbox_runs() {
        assert_eq!(
            answer(Some("ta-1"), false),
            TaskAnswer::Running("ta-1".into())
        );
    }

    #[test]
    fn a_result_means_the_sandbox_ended_even_beside_a_task_id() {
        assert_eq!(
            answer(Some("ta-1"), true),
            TaskAnswer::Ended("image pull failed".into())
        );
    }

    #[test]
    fn neither_or_an_empty_id_means_ask_again() {
        assert_eq!(answer(None, false), TaskAnswer::Pending);
        assert_eq!(answer(Some(""), false), TaskAnswer::Pending);
    }
}
