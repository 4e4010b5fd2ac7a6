//! The gateway of a local session's sandbox: `nightshift-gateway serve` run inside
//! the sandbox through its agent, supervised (started again with a back-off when it
//! exits, stopped with the sandbox), and the one way the relay reaches it.
//!
//! The session's gateway key reaches the gateway through a file in the sandbox's
//! home ([`SANDBOX_GATEWAY_KEY`]), written 0600 as the sandbox's host user before
//! every start (the gateway deletes it once read, so a restart needs it again). The
//! key is never logged and never part of the command line. What the gateway prints is
//! the sandbox's, so it is kept only as a short tail for the `unavailable` reason.
//!
//! A backend without the gateway binary still starts sandboxes: their gateway is
//! `unavailable` with the reason. The relay connects only to
//! [`GATEWAY_PORT`] on the sandbox's own loopback, through the agent
//! ([`agent::connect_port`]), never through a port of the host.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nightshift_protocol::sandbox::{ExecOutput, GATEWAY_PORT, GatewayLaunch, GatewayStatus};
use tokio_util::sync::CancellationToken;

use super::LocalProvider;
use super::host_user::HostUser;
use super::sandbox_agent::client::{self as agent, Spawn, Stdin};
use super::sandbox_dir::{as_sandbox_user, home, socket};
use super::sandbox_paths::{SANDBOX_GATEWAY, SANDBOX_GATEWAY_KEY, SANDBOX_WORKSPACE};
use crate::providers::{GatewayPlace, GatewayStream, ProviderError, SandboxSpec};
use crate::runner_supervision::backoff::Backoff;

/// How much of the gateway's last output is kept for its `unavailable` reason.
const TAIL_BYTES: usize = 2048;
/// A gateway runs as long as its sandbox; the agent's exec timeout must not end it.
const RUN_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// What a gateway's supervisor last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: GatewayStatus,
    reason: Option<String>,
}

struct Supervised {
    task: tokio::task::JoinHandle<()>,
    seen: Arc<Mutex<Seen>>,
}

/// The supervised gateways, by sandbox id.
#[derive(Default)]
pub(super) struct Gateways(Mutex<HashMap<String, Supervised>>);

impl Gateways {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Supervised>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends a sandbox's gateway: aborting its supervisor drops the agent
    /// connection, and the agent kills the gateway's process group.
    pub(super) fn stop(&self, id: &str) {
        if let Some(supervised) = self.lock().remove(id) {
            supervised.task.abort();
        }
    }

    pub(super) fn stop_all(&self) {
        for (_, supervised) in self.lock().drain() {
            supervised.task.abort();
        }
    }

    fn seen(&self, id: &str) -> Option<Seen> {
        self.lock().get(id).map(|supervised| {
            supervised
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }
}

/// The command line of `nightshift-gateway serve` inside the sandbox.
pub fn serve_argv(session: &str) -> Vec<String> {
    [
        SANDBOX_GATEWAY,
        "serve",
        "--listen",
        &format!("127.0.0.1:{GATEWAY_PORT}"),
        "--session",
        session,
        "--key-file",
        SANDBOX_GATEWAY_KEY,
    ]
    .map(String::from)
    .to_vec()
}

/// The key file on the host, in the sandbox's home.
fn key_file_name() -> &'static str {
    Path::new(SANDBOX_GATEWAY_KEY)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(".nightshift-gateway.key")
}

/// Writes the key into a fresh 0600 file in `home` (whatever was at that name is
/// removed first, and a symlink planted there is never followed), as the sandbox's
/// host user when there is one.
pub(super) fn write_key(user: Option<HostUser>, home: &Path, key: &str) -> std::io::Result<()> {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::Mode;
    use nix::unistd::{UnlinkatFlags, unlinkat};
    let dir = open(
        home,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    as_sandbox_user(user, || {
        let name = key_file_name();
        match unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(error) => return Err(std::io::Error::from(error)),
        }
        let fd = openat(
            &dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        use std::io::Write;
        let mut file = std::fs::File::from(fd);
        file.write_all(format!("{key}\n").as_bytes())?;
        file.sync_all()
    })
}

/// Removes a key file the gateway did not (a stopped or forked sandbox keeps none).
pub(super) fn remove_key(home: &Path) {
    let _ = std::fs::remove_file(home.join(key_file_name()));
}

/// Why the gateway cannot run at all, when its binary is missing.
fn missing(binary: Option<&Path>) -> Option<String> {
    match binary {
        Some(path) if path.is_file() => None,
        Some(path) => Some(format!(
            "the gateway is not installed: {} does not exist (build `nightshift-gateway` or set GATEWAY_BIN)",
            path.display()
        )),
        None => Some("the gateway is not installed (set GATEWAY_BIN)".into()),
    }
}

/// Why a gateway run ended, for the `restarting` reason.
fn exit_reason(code: Option<i32>, tail: &str) -> String {
    let ended = match code {
        Some(code) => format!("the gateway exited with code {code}"),
        None => "the gateway's run ended".to_string(),
    };
    let tail = tail.trim();
    if tail.is_empty() {
        ended
    } else {
        format!("{ended}: {tail}")
    }
}

/// Keeps the last [`TAIL_BYTES`] of what the gateway printed.
fn keep_tail(tail: &mut String, text: &str) {
    tail.push_str(text);
    if tail.len() > TAIL_BYTES {
        let mut cut = tail.len() - TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail.drain(..cut);
    }
}

impl LocalProvider {
    /// Starts supervising the sandbox's gateway, when it was created with one (a
    /// supervisor already running for it is replaced).
    pub(super) fn start_gateway(&self, sandbox: &SandboxSpec) {
        let Some(launch) = sandbox.gateway.clone() else {
            return;
        };
        let binary = self.settings.gateway_bin.clone();
        // Said at once, so no answer ever shows a missing gateway as running.
        let seen = Arc::new(Mutex::new(match missing(binary.as_deref()) {
            Some(reason) => {
                tracing::warn!(sandbox = %sandbox.id, "{reason}");
                Seen {
                    status: GatewayStatus::Unavailable,
                    reason: Some(reason),
                }
            }
            None => Seen {
                status: GatewayStatus::Running,
                reason: None,
            },
        }));
        let run = Run {
            id: sandbox.id.clone(),
            socket: socket(sandbox),
            home: home(sandbox),
            user: self.host_user,
            binary,
            launch,
            seen: seen.clone(),
        };
        let task = tokio::spawn(run.supervise());
        if let Some(old) = self
            .gateways
            .lock()
            .insert(sandbox.id.clone(), Supervised { task, seen })
        {
            old.task.abort();
        }
    }

    pub(super) fn gateway_place(&self, sandbox: &SandboxSpec) -> GatewayPlace {
        let seen = match (&sandbox.gateway, self.gateways.seen(&sandbox.id)) {
            (None, _) => Seen {
                status: GatewayStatus::None,
                reason: Some("the sandbox was created without a gateway".into()),
            },
            (Some(_), Some(seen)) => seen,
            (Some(_), None) => Seen {
                status: GatewayStatus::Unavailable,
                reason: Some("the sandbox is not running".into()),
            },
        };
        GatewayPlace::Relay {
            status: seen.status,
            reason: seen.reason,
        }
    }

    pub(super) async fn open_gateway(
        &self,
        sandbox: &SandboxSpec,
    ) -> Result<Box<dyn GatewayStream>, ProviderError> {
        if sandbox.network == nightshift_protocol::sandbox::NetworkMode::Private {
            // Its loopback is the host's: port 9000 there is not this sandbox's.
            return Err(ProviderError::InvalidRequest(
                "a sandbox sharing the host's network (`private`) has no gateway of its own".into(),
            ));
        }
        let stream = agent::connect_port(&socket(sandbox), GATEWAY_PORT)
            .await
            .map_err(|error| {
                ProviderError::Unavailable(format!(
                    "the sandbox's gateway does not answer: {error}"
                ))
            })?;
        Ok(Box::new(stream))
    }
}

/// One gateway's supervisor.
struct Run {
    id: String,
    socket: PathBuf,
    home: PathBuf,
    user: Option<HostUser>,
    binary: Option<PathBuf>,
    launch: GatewayLaunch,
    seen: Arc<Mutex<Seen>>,
}

impl Run {
    fn set(&self, status: GatewayStatus, reason: Option<String>) {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Seen { status, reason };
    }

    async fn supervise(self) {
        if missing(self.binary.as_deref()).is_some() {
            return;
        }
        let mut backoff = Backoff::default();
        loop {
            let started = Instant::now();
            let ended = self.run_once().await;
            let delay = backoff.delay_after(started.elapsed());
            tracing::warn!(sandbox = %self.id, ?delay, "the gateway ended; starting it again");
            self.set(GatewayStatus::Restarting, Some(ended));
            tokio::time::sleep(delay).await;
        }
    }

    /// Starts the gateway once and waits for it to end; returns why it ended.
    async fn run_once(&self) -> String {
        let (user, home, key) = (
            self.user,
            self.home.clone(),
            self.launch.key.expose().clone(),
        );
        let written = tokio::task::spawn_blocking(move || write_key(user, &home, &key)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return format!("cannot write the gateway's key file: {error}"),
            Err(error) => return format!("cannot write the gateway's key file: {error}"),
        }
        let spawn = Spawn {
            argv: serve_argv(&self.launch.session),
            env: BTreeMap::new(),
            cwd: SANDBOX_WORKSPACE.into(),
            stdin: Stdin::Null,
            timeout: RUN_TIMEOUT,
        };
        // Dropping the run (this task aborted) closes the agent connection, which
        // kills the gateway's process group.
        let run = match agent::start(&self.socket, spawn, CancellationToken::new()).await {
            Ok(run) => run,
            Err(error) => return format!("cannot start the gateway: {error}"),
        };
        self.set(GatewayStatus::Running, None);
        tracing::info!(sandbox = %self.id, "gateway started");
        let mut output = run.output;
        let driver = run.driver;
        let collect = async {
            let mut tail = String::new();
            let mut code = None;
            while let Some(line) = output.recv().await {
                match line {
                    ExecOutput::Stdout(text) | ExecOutput::Stderr(text) => {
                        keep_tail(&mut tail, &text)
                    }
                    ExecOutput::Exit(exit) => code = Some(exit.code),
                }
            }
            exit_reason(code, &tail)
        };
        let (_, reason) = tokio::join!(driver, collect);
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_serves_its_session_on_the_fixed_port_with_the_key_in_a_file() {
        let argv = serve_argv("sess-1");
        assert_eq!(
            argv,
            [
                "/.nightshift/bin/nightshift-gateway",
                "serve",
                "--listen",
                "127.0.0.1:9000",
                "--session",
                "sess-1",
                "--key-file",
                "/home/sandbox/.nightshift-gateway.key"
            ]
        );
    }

    #[test]
    fn the_key_file_is_private_fresh_and_never_follows_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("stolen");
        std::os::unix::fs::symlink(&target, home.path().join(key_file_name())).unwrap();
        write_key(None, home.path(), "ab12").unwrap();
        assert!(
            !target.exists(),
            "a planted symlink is replaced, not followed"
        );
        let path = home.path().join(key_file_name());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "ab12\n");
        let mode = std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        write_key(None, home.path(), "cd34").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cd34\n");
        remove_key(home.path());
        assert!(!path.exists());
    }

    #[test]
    fn an_exit_reason_names_the_code_and_the_last_output() {
        assert_eq!(
            exit_reason(Some(2), "  bad flag\n"),
            "the gateway exited with code 2: bad flag"
        );
        assert_eq!(exit_reason(None, ""), "the gateway's run ended");
        let mut tail = String::new();
        keep_tail(&mut tail, &"é".repeat(TAIL_BYTES));
        keep_tail(&mut tail, "end");
        assert!(tail.len() <= TAIL_BYTES && tail.ends_with("end"));
    }
}
