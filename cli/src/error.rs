//! What can go wrong in a command, and the exit code each failure maps to.
//!
//! The exit codes are part of the CLI's interface (scripts branch on them) and are
//! listed in `--help` ([`EXIT_CODES_HELP`]) and docs/CLI.md. A server's refusal keeps
//! its stable error code (`docs/API.md`), which is printed with the message.

use std::fmt;

use nightshift_protocol::ErrorCode;

use crate::render::clean;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The server refused the request (its error code is printed), or could not be reached.
pub const EXIT_ERROR: u8 = 1;
/// The command line is wrong (including an ambiguous session prefix).
pub const EXIT_USAGE: u8 = 2;
/// Not logged in, or the server does not accept the token (401).
pub const EXIT_UNAUTHENTICATED: u8 = 3;
/// No such session (404, or no session id starts with the prefix given).
pub const EXIT_NOT_FOUND: u8 = 4;
/// The token is valid but may not do this (403: a `read` token changing anything, a
/// viewer prompting).
pub const EXIT_FORBIDDEN: u8 = 5;

/// Ctrl-C while `login` asked for the token, or before the turn `--wait` followed
/// ended (the shells' convention: 128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit-code table as `--help` prints it.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (also: `watch` stopped with Ctrl-C)
  1  the server refused the request (its error code is printed) or could not be reached;
     with --wait, also: the prompt's turn failed or was aborted
  2  usage error (bad arguments, an ambiguous session prefix)
  3  not logged in, or the token is invalid, expired or revoked
  4  no such session
  5  the token may not do this (a read-only token, or a role without the right)
  130  Ctrl-C while `login` asked for the token, or before a --wait turn ended

Environment:
  NIGHTSHIFT_SERVER, NIGHTSHIFT_TOKEN  override the stored server and token
  XDG_CONFIG_HOME                      where nightshift/config.toml lives (default ~/.config)
  BROWSER                              `open` starts it with the session's URL";

/// A failed command.
#[derive(Debug)]
pub enum CliError {
    /// The server answered with its error envelope.
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// The server could not be reached, timed out, or answered something that is not
    /// Nightshift's API.
    Transport(String),
    /// No server or token is configured.
    NotLoggedIn(String),
    /// Nothing matches the session argument.
    SessionNotFound(String),
    /// The command line cannot be carried out as given.
    Usage(String),
    /// A local failure (the config file, the terminal).
    Local(String),
    /// Ctrl-C while the command waited for input.
    Interrupted,
    /// The prompt that `--wait` followed did not end well (failed, aborted,
    /// cancelled).
    TurnEnded(String),
    /// The server refused some of the sessions a command named (`archive`,
    /// `delete`); each one's outcome was printed.
    PartlyRefused(String),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Server { status, code, .. } => match (*status, code.as_str()) {
                (401, _) => EXIT_UNAUTHENTICATED,
                (403, _) => EXIT_FORBIDDEN,
                (404, _) => EXIT_NOT_FOUND,
                _ => EXIT_ERROR,
            },
            CliError::Transport(_)
            | CliError::Local(_)
            | CliError::TurnEnded(_)
            | CliError::PartlyRefused(_) => EXIT_ERROR,
            CliError::NotLoggedIn(_) => EXIT_UNAUTHENTICATED,
            CliError::SessionNotFound(_) => EXIT_NOT_FOUND,
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Interrupted => EXIT_INTERRUPTED,
        }
    }

    /// The server's stable error code, when the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            CliError::Server { code, .. } => Some(code),
            CliError::NotLoggedIn(_) => Some("not_logged_in"),
            CliError::SessionNotFound(_) => Some(ErrorCode::NotFound.as_str()),
            _ => None,
        }
    }

    /// The error as `--json` prints it: the API's envelope shape, so scripts read
    /// one kind of error whether it came from the server or from the CLI.
    pub fn to_json(&self) -> serde_json::Value {
        let code = self.code().unwrap_or(match self {
            CliError::Usage(_) => "usage",
            CliError::Interrupted => "interrupted",
            CliError::TurnEnded(_) => "turn_not_done",
            CliError::PartlyRefused(_) => "partly_refused",
            CliError::Transport(_) => "unreachable",
            _ => "local",
        });
        serde_json::json!({"error": {"code": code, "message": self.message()}})
    }

    fn message(&self) -> String {
        match self {
            CliError::Server { message, .. } => message.clone(),
            CliError::Transport(m)
            | CliError::NotLoggedIn(m)
            | CliError::SessionNotFound(m)
            | CliError::Usage(m)
            | CliError::Local(m)
            | CliError::TurnEnded(m)
            | CliError::PartlyRefused(m) => m.clone(),
            CliError::Interrupted => "interrupted".to_string(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Server {
                status,
                code,
                message,
            } => {
                // A message may quote what a sandbox produced: no control characters
                // reach the terminal.
                let (code, message) = (clean(code, false), clean(message, false));
                write!(f, "the server refused ({status} {code}): {message}")?;
                match *status {
                    401 => write!(
                        f,
                        "\nThe token is not accepted (invalid, expired or revoked): \
                         run `nightshift login` with a new one."
                    ),
                    403 if code == ErrorCode::InsufficientScope.as_str() => write!(
                        f,
                        "\nThe token lacks the scope for this: create one that can \
                         write (Settings, API tokens) and log in with it."
                    ),
                    _ => Ok(()),
                }
            }
            CliError::Transport(m) => write!(f, "{m}"),
            CliError::NotLoggedIn(m) => write!(f, "not logged in: {m}"),
            CliError::SessionNotFound(m) => write!(f, "{m}"),
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Local(m) => write!(f, "{m}"),
            CliError::PartlyRefused(m) => write!(f, "{m}"),
            CliError::TurnEnded(m) => write!(f, "{}", clean(m, false)),
            CliError::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for CliError {}

pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, code: &str) -> CliError {
        CliError::Server {
            status,
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn statuses_map_to_the_documented_exit_codes() {
        assert_eq!(server(401, "unauthenticated").exit_code(), 3);
        assert_eq!(server(403, "insufficient_scope").exit_code(), 5);
        assert_eq!(server(404, "not_found").exit_code(), 4);
        assert_eq!(server(409, "question_closed").exit_code(), 1);
        assert_eq!(server(500, "internal").exit_code(), 1);
        assert_eq!(CliError::NotLoggedIn("x".into()).exit_code(), 3);
        assert_eq!(CliError::SessionNotFound("x".into()).exit_code(), 4);
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::Transport("x".into()).exit_code(), 1);
        assert_eq!(CliError::Interrupted.exit_code(), 130);
    }

    #[test]
    fn a_missing_scope_says_what_to_do() {
        let text = server(403, "insufficient_scope").to_string();
        assert!(text.contains("insufficient_scope"), "{text}");
        assert!(text.contains("can write"), "{text}");
        let text = server(401, "unauthenticated").to_string();
        assert!(text.contains("nightshift login"), "{text}");
        let hostile = CliError::Server {
            status: 500,
            code: "internal".into(),
            message: "boom\x1b[2J".into(),
        };
        assert!(!hostile.to_string().contains('\x1b'));
    }

    #[test]
    fn json_errors_have_the_api_envelope_shape() {
        assert_eq!(
            server(404, "not_found").to_json(),
            serde_json::json!({"error": {"code": "not_found", "message": "m"}})
        );
        assert_eq!(
            CliError::Usage("bad".into()).to_json()["error"]["code"],
            "usage"
        );
    }
}
