//! The one table of which operation a sandbox accepts in which status.
//!
//! Operations that change the status (stop, destroy) take the sandbox's lifecycle
//! lock exclusively, so they never interleave; this table then decides whether each
//! one proceeds, is already done (repeating a stop or a destroy is harmless), or is
//! refused.

use nightshift_protocol::sandbox::SandboxStatus;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Exec,
    ReadFiles,
    WriteFiles,
    Stop,
    Destroy,
    /// Starting a stopped sandbox again.
    Start,
    /// Forking (the source must be running).
    Fork,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Proceed,
    /// The operation's end state is already reached; answer with the sandbox as is.
    AlreadyDone,
}

/// Decides whether `operation` may run on sandbox `id` in `status`.
pub fn admit(id: &str, status: SandboxStatus, operation: Operation) -> Result<Admission, ApiError> {
    use Operation::*;
    use SandboxStatus::*;
    // Destroyed is final: to everything but a repeated destroy, the sandbox is gone.
    if status == Destroyed {
        return match operation {
            Destroy => Ok(Admission::AlreadyDone),
            _ => Err(ApiError::new(
                nightshift_protocol::ErrorCode::SandboxNotFound,
                format!("sandbox {id} was destroyed"),
            )),
        };
    }
    let refuse = || {
        Err(ApiError::conflict(format!(
            "sandbox {id} is {}",
            status_name(status)
        )))
    };
    match (operation, status) {
        (Exec | Fork, Ready) => Ok(Admission::Proceed),
        (Exec | Fork, _) => refuse(),
        (Start, Ready) => Ok(Admission::AlreadyDone),
        (Start, Stopped) => Ok(Admission::Proceed),
        (Start, _) => refuse(),
        // A stopped sandbox keeps its workspace, so its files stay reachable.
        (ReadFiles | WriteFiles, Ready | Stopped) => Ok(Admission::Proceed),
        (ReadFiles | WriteFiles, _) => refuse(),
        (Stop, Stopped) => Ok(Admission::AlreadyDone),
        // Stopping or destroying is only ever seen here after the backend died halfway
        // through one; doing it again finishes it.
        (Stop, Ready | Error | Stopping) => Ok(Admission::Proceed),
        (Stop, _) => refuse(),
        (Destroy, _) => Ok(Admission::Proceed),
    }
}

pub fn status_name(status: SandboxStatus) -> &'static str {
    match status {
        SandboxStatus::Pending => "pending",
        SandboxStatus::Initializing => "initializing",
        SandboxStatus::Ready => "ready",
        SandboxStatus::Stopping => "stopping",
        SandboxStatus::Stopped => "stopped",
        SandboxStatus::Destroying => "destroying",
        SandboxStatus::Destroyed => "destroyed",
        SandboxStatus::Error => "in error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightshift_protocol::ErrorCode;

    fn code(result: Result<Admission, ApiError>) -> Result<Admission, ErrorCode> {
        result.map_err(|error| error.code)
    }

    #[test]
    fn destroyed_is_final() {
        for operation in [
            Operation::Exec,
            Operation::ReadFiles,
            Operation::WriteFiles,
            Operation::Stop,
        ] {
            assert_eq!(
                code(admit("s", SandboxStatus::Destroyed, operation)),
                Err(ErrorCode::SandboxNotFound),
                "{operation:?}"
            );
        }
        assert_eq!(
            admit("s", SandboxStatus::Destroyed, Operation::Destroy),
            Ok(Admission::AlreadyDone)
        );
    }

    #[test]
    fn commands_run_only_in_a_ready_sandbox() {
        assert_eq!(
            admit("s", SandboxStatus::Ready, Operation::Exec),
            Ok(Admission::Proceed)
        );
        for status in [
            SandboxStatus::Stopped,
            SandboxStatus::Initializing,
            SandboxStatus::Error,
        ] {
            assert_eq!(
                code(admit("s", status, Operation::Exec)),
                Err(ErrorCode::Conflict),
                "{status:?}"
            );
        }
    }

    #[test]
    fn files_outlive_a_stop_and_stops_repeat_harmlessly() {
        assert_eq!(
            admit("s", SandboxStatus::Stopped, Operation::ReadFiles),
            Ok(Admission::Proceed)
        );
        assert_eq!(
            admit("s", SandboxStatus::Stopped, Operation::WriteFiles),
            Ok(Admission::Proceed)
        );
        assert_eq!(
            admit("s", SandboxStatus::Stopped, Operation::Stop),
            Ok(Admission::AlreadyDone)
        );
        assert_eq!(
            admit("s", SandboxStatus::Ready, Operation::Stop),
            Ok(Admission::Proceed)
        );
        assert_eq!(
            admit("s", SandboxStatus::Stopped, Operation::Destroy),
            Ok(Admission::Proceed)
        );
    }
}
