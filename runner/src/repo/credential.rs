//! The credential helper's far end: a unix socket the runner serves in the
//! sandbox's sockets directory (`/run/nightshift/git-credential.sock` inside), which
//! git inside the sandbox reaches through its own `credential-cache` client
//! (`credential.helper = cache --socket ...`, see [`super::setup`]).
//!
//! It speaks the cache daemon's protocol: one request per connection, `action=get`
//! (or `store`/`erase`, which are ignored) and git's credential attributes, then
//! end-of-file; the answer is credential attributes, then end-of-file. It answers
//! only for the session's repository (its protocol, host and path, which git sends
//! with `credential.useHttpPath`), with a short-lived credential the Worker gives for
//! that repository at that moment; anything else, and any failure, gets `quit=1`,
//! which makes git stop at once instead of trying other ways or prompting.
//!
//! Where the backend's egress adds git's credential itself, the same server listens
//! on a host path in no sandbox instead (`RunnerBootConfig::egress_credential_socket`)
//! and also answers `action=repository` with the session's repository, so the
//! egress knows which host to intercept.
//!
//! Everything read from the socket is written by the sandbox: requests are bounded in
//! size and time, and nothing in them reaches the Worker but the three checked
//! attributes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nightshift_protocol::repo::{CredentialRequest, GitCredential, SessionRepo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Mutex, Semaphore};

use super::worker_api::WorkerApi;

/// The socket's file name in the sockets directory.
pub const CREDENTIAL_SOCKET: &str = "git-credential.sock";
const MAX_REQUEST: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests served at once; more wait.
const CONCURRENCY: usize = 8;
/// A cached credential is asked for again this long before it expires.
const RENEW_BEFORE_MS: i64 = 120_000;

/// What the helper answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoAddress {
    pub protocol: String,
    /// `host` or `host:port`, lowercased.
    pub host: String,
    /// `owner/name`, without `.git`, lowercased.
    pub path: String,
}

impl RepoAddress {
    /// The address of a clone URL (`https://host[:port]/owner/name[.git]`).
    pub fn of_url(url: &str) -> Option<RepoAddress> {
        let (protocol, rest) = url.split_once("://")?;
        let (host, path) = rest.split_once('/')?;
        Some(RepoAddress {
            protocol: protocol.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            path: normalise_path(path),
        })
    }

    /// The address as credential attributes (`action=repository`'s answer: the
    /// repository is no secret, it is in the sandbox's `.git/config` too).
    pub fn describe(&self) -> String {
        format!(
            "protocol={}\nhost={}\npath={}\n",
            self.protocol, self.host, self.path
        )
    }

    /// Whether git's request is for this repository.
    pub fn matches(&self, request: &CredentialRequest) -> bool {
        request.protocol.eq_ignore_ascii_case(&self.protocol)
            && request.host.eq_ignore_ascii_case(&self.host)
            && normalise_path(&request.path) == self.path
    }
}

fn normalise_path(path: &str) -> String {
    let path = path.trim_matches('/');
    path.strip_suffix(".git")
        .unwrap_or(path)
        .to_ascii_lowercase()
}

/// What git asked, parsed: the action and the attributes the runner looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    Get(CredentialRequest),
    /// `store`, `erase`, or a `get` without the attributes needed.
    Other,
}

/// Parses a request of the cache daemon's protocol (`key=value` lines).
pub fn parse_request(bytes: &[u8]) -> Asked {
    let text = String::from_utf8_lossy(bytes);
    let mut action = None;
    let (mut protocol, mut host, mut path) = (None, None, None);
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let slot = match key {
            "action" => &mut action,
            "protocol" => &mut protocol,
            "host" => &mut host,
            "path" => &mut path,
            _ => continue,
        };
        // A repeated attribute is a confused (or hostile) client.
        if slot.replace(value.to_string()).is_some() {
            return Asked::Other;
        }
    }
    match (action.as_deref(), protocol, host, path) {
        (Some("get"), Some(protocol), Some(host), Some(path)) => Asked::Get(CredentialRequest {
            protocol,
            host,
            path,
        }),
        _ => Asked::Other,
    }
}

/// git's answer format for a credential (the password is the only secret written
/// anywhere, and only into this socket).
pub fn format_credential(credential: &GitCredential) -> Option<String> {
    let clean = |s: &str| !s.contains(['\n', '\r', '\0']) && !s.is_empty();
    let password = credential.password.expose();
    if !clean(&credential.username) || !clean(password) {
        return None;
    }
    Some(format!(
        "username={}\npassword={}\npassword_expiry_utc={}\n",
        credential.username,
        password,
        credential.expires_at.div_euclid(1000)
    ))
}

/// Serves the socket for one repository.
pub struct CredentialServer {
    address: RepoAddress,
    api: WorkerApi,
    cache: Mutex<Option<GitCredential>>,
    now_ms: fn() -> i64,
}

fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl CredentialServer {
    pub fn new(repo: &SessionRepo, api: WorkerApi) -> Option<CredentialServer> {
        Some(CredentialServer {
            address: RepoAddress::of_url(&repo.clone_url)?,
            api,
            cache: Mutex::new(None),
            now_ms: system_now_ms,
        })
    }

    /// Binds `path` (replacing a socket left by an earlier runner) and serves it
    /// until the task is aborted.
    pub async fn serve(
        self: Arc<Self>,
        path: PathBuf,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let listener = bind(&path)?;
        let limit = Arc::new(Semaphore::new(CONCURRENCY));
        Ok(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let server = self.clone();
                tokio::spawn(async move {
                    server.handle(stream).await;
                    drop(permit);
                });
            }
        }))
    }

    async fn handle(&self, mut stream: UnixStream) {
        let mut request = Vec::new();
        let read = tokio::time::timeout(
            READ_TIMEOUT,
            (&mut stream)
                .take(MAX_REQUEST as u64 + 1)
                .read_to_end(&mut request),
        )
        .await;
        if !matches!(read, Ok(Ok(_))) || request.len() > MAX_REQUEST {
            let _ = stream.write_all(b"quit=1\n").await;
            return;
        }
        let answer = match parse_request(&request) {
            // The backend's egress asks which repository it adds the credential to.
            Asked::Other if is_action(&request, "repository") => self.address.describe(),
            // `store` and `erase`: nothing is kept on git's behalf.
            Asked::Other if !is_get(&request) => String::new(),
            Asked::Other => "quit=1\n".to_string(),
            Asked::Get(asked) => self.answer(&asked).await,
        };
        let _ = tokio::time::timeout(READ_TIMEOUT, stream.write_all(answer.as_bytes())).await;
    }

    /// The answer to a `get`: the credential, or `quit=1`.
    pub async fn answer(&self, asked: &CredentialRequest) -> String {
        if !self.address.matches(asked) {
            tracing::warn!(
                host = %asked.host.chars().take(100).collect::<String>(),
                "git asked for a credential for another repository; refused"
            );
            return "quit=1\n".into();
        }
        match self.credential(asked).await {
            Some(credential) => format_credential(&credential).unwrap_or_else(|| "quit=1\n".into()),
            None => "quit=1\n".into(),
        }
    }

    async fn credential(&self, asked: &CredentialRequest) -> Option<GitCredential> {
        let mut cache = self.cache.lock().await;
        let now = (self.now_ms)();
        if let Some(cached) = cache.as_ref()
            && cached.expires_at - RENEW_BEFORE_MS > now
        {
            return Some(cached.clone());
        }
        // The Worker is asked with the session's own address, not git's spelling.
        let request = CredentialRequest {
            protocol: self.address.protocol.clone(),
            host: self.address.host.clone(),
            path: asked.path.clone(),
        };
        match self.api.credential(&request).await {
            Ok(credential) => {
                *cache = Some(credential.clone());
                Some(credential)
            }
            Err(error) => {
                tracing::warn!(status = ?error.status, code = ?error.code, message = %error.message, "no git credential");
                *cache = None;
                None
            }
        }
    }
}

fn is_get(request: &[u8]) -> bool {
    is_action(request, "get")
}

fn is_action(request: &[u8], action: &str) -> bool {
    String::from_utf8_lossy(request)
        .lines()
        .any(|line| line.strip_prefix("action=") == Some(action))
}

/// Binds the socket (a long path through the directory's descriptor). Connecting
/// needs write permission on the socket, and the sandbox's user need not be the
/// runner's (a runner started as root by tools and tests), so the socket itself is
/// open to all: what keeps other host users out is the sandbox's directory, which is
/// its owner's only; inside, the socket is what the sandbox is meant to reach.
fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let listener = crate::agent::opencode::proxy::bind_unix(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(protocol: &str, host: &str, path: &str) -> CredentialRequest {
        CredentialRequest {
            protocol: protocol.into(),
            host: host.into(),
            path: path.into(),
        }
    }

    #[test]
    fn only_the_sessions_repository_matches() {
        let address = RepoAddress::of_url("https://github.com/Octo/Hello.git").unwrap();
        assert!(address.matches(&asked("https", "github.com", "Octo/Hello.git")));
        assert!(address.matches(&asked("https", "GitHub.com", "octo/hello")));
        for (protocol, host, path) in [
            ("https", "github.com", "octo/other.git"),
            ("https", "github.com", "other/hello.git"),
            ("https", "evil.example", "octo/hello.git"),
            ("https", "github.com:444", "octo/hello.git"),
            ("http", "github.com", "octo/hello.git"),
            ("https", "github.com", "octo/hello.git/../other"),
            ("https", "github.com", "octo/hello/extra"),
            ("https", "github.com", ""),
        ] {
            assert!(
                !address.matches(&asked(protocol, host, path)),
                "{protocol} {host} {path}"
            );
        }
        let local = RepoAddress::of_url("http://127.0.0.1:4000/o/r.git").unwrap();
        assert!(local.matches(&asked("http", "127.0.0.1:4000", "o/r.git")));
        assert!(!local.matches(&asked("http", "127.0.0.1:4001", "o/r.git")));
    }

    #[test]
    fn the_egress_is_told_the_repository_in_credential_attributes() {
        let address = RepoAddress::of_url("https://GitHub.com/Octo/Hello.git").unwrap();
        assert_eq!(
            address.describe(),
            "protocol=https\nhost=github.com\npath=octo/hello\n"
        );
        assert!(is_action(b"action=repository\n", "repository"));
        assert!(!is_action(b"action=repositoryx\n", "repository"));
        assert_eq!(parse_request(b"action=repository\n"), Asked::Other);
    }

    #[test]
    fn requests_are_parsed_as_hostile_input() {
        let get = b"action=get\ntimeout=900\nprotocol=https\nhost=github.com\npath=o/r.git\n";
        assert_eq!(
            parse_request(get),
            Asked::Get(asked("https", "github.com", "o/r.git"))
        );
        // Without useHttpPath there is no path: not answered.
        assert_eq!(
            parse_request(b"action=get\nprotocol=https\nhost=github.com\n"),
            Asked::Other
        );
        // A second host (or path) line cannot switch the repository after a check.
        assert_eq!(
            parse_request(b"action=get\nprotocol=https\nhost=github.com\nhost=evil\npath=o/r\n"),
            Asked::Other
        );
        assert_eq!(
            parse_request(b"action=store\nprotocol=https\n"),
            Asked::Other
        );
        assert_eq!(parse_request(&[0xff, 0xfe, b'\n']), Asked::Other);
    }

    #[test]
    fn a_credential_with_a_line_break_is_not_passed_on() {
        let credential = |password: &str| GitCredential {
            username: "x-access-token".into(),
            password: password.to_string().into(),
            expires_at: 1_700_000_000_000,
        };
        assert_eq!(
            format_credential(&credential("ghs_abc")).unwrap(),
            "username=x-access-token\npassword=ghs_abc\npassword_expiry_utc=1700000000\n"
        );
        assert!(format_credential(&credential("ghs\nhost=evil")).is_none());
        assert!(format_credential(&credential("")).is_none());
    }
}
