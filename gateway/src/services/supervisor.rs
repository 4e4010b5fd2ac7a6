//! Keeps one service alive: waits for what it needs, starts it in a process group of
//! its own, checks it until it answers, records its state, and restarts it with
//! [`Backoff`] when it exits. On shutdown it stops the whole group (Chromium's
//! renderers with Chromium).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nightshift_protocol::gateway::ServiceState;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::StatusTable;
use super::backoff::Backoff;
use super::name::ServiceName;
use super::spec::{Health, ServiceSpec};

/// Where programs are looked for when `PATH` is not set.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How often a missing program is looked for again (`make setup` may install it).
const RECHECK_MISSING: Duration = Duration::from_secs(10);
/// How long a service may take to stop on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The supervisors of all services; dropping it does not stop them, [`Supervisor::shutdown`] does.
pub struct Supervisor {
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Supervisor {
    pub fn start(specs: Vec<ServiceSpec>, table: StatusTable) -> Self {
        let shutdown = CancellationToken::new();
        let tasks = specs
            .into_iter()
            .map(|spec| {
                table.set(spec.name, ServiceState::Starting, None);
                tokio::spawn(supervise(spec, table.clone(), shutdown.clone()))
            })
            .collect();
        Self { shutdown, tasks }
    }

    /// Stops every service (its whole process group) and waits until they are gone.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The program's path: `program` itself if it names a path, else the first
/// executable of that name on `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return is_executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    // A sandbox started with a cleared environment may have no PATH: look where
    // Debian and `make setup` put the programs.
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

async fn supervise(spec: ServiceSpec, table: StatusTable, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    let name = spec.name;
    if let Some(first) = spec.starts_after
        && !wait_settled(&table, name, first, &shutdown).await
    {
        return;
    }
    loop {
        if spec.needs_display && !wait_for_display(&table, name, &shutdown).await {
            return;
        }
        let Some(program) = find_program(&spec.program) else {
            let reason = format!("{} is not installed ({})", spec.program, spec.install_hint);
            table.set(name, ServiceState::Unavailable, Some(reason));
            if sleep_or_shutdown(RECHECK_MISSING, &shutdown).await {
                return;
            }
            continue;
        };
        table.set(name, ServiceState::Starting, None);
        let started = Instant::now();
        let (mut child, last_line) = match spawn(&spec, &program) {
            Ok(running) => running,
            Err(error) => {
                let wait = backoff.after_exit(Duration::ZERO);
                let reason = format!(
                    "could not start {}: {error}; retrying in {wait:?}",
                    spec.program
                );
                table.set(name, ServiceState::Unavailable, Some(reason));
                if sleep_or_shutdown(wait, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let exit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                stop(&mut child).await;
                return;
            }
            status = child.wait() => Exit::Exited(status.ok()),
            healthy = wait_healthy(&spec.health, spec.start_timeout) => {
                if healthy { Exit::Ready } else { Exit::TimedOut }
            }
        };
        let exit = match exit {
            Exit::Ready => {
                table.set(name, ServiceState::Ready, None);
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        stop(&mut child).await;
                        return;
                    }
                    status = child.wait() => Exit::Exited(status.ok()),
                }
            }
            Exit::TimedOut => {
                stop(&mut child).await;
                Exit::TimedOut
            }
            exited => exited,
        };
        let wait = backoff.after_exit(started.elapsed());
        let detail = last_line
            .lock()
            .map(|line| line.clone())
            .unwrap_or_default();
        let what = match exit {
            Exit::TimedOut => format!("did not answer within {:?}", spec.start_timeout),
            Exit::Exited(Some(status)) => describe(status),
            _ => "exited".to_owned(),
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        let reason = format!("{} {what}{detail}; restarting in {wait:?}", spec.program);
        tracing::warn!(service = name.as_str(), %reason, "service stopped");
        table.set(name, ServiceState::Unavailable, Some(reason));
        if sleep_or_shutdown(wait, &shutdown).await {
            return;
        }
    }
}

enum Exit {
    Ready,
    TimedOut,
    Exited(Option<ExitStatus>),
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "exited".to_owned(),
    }
}

/// Starts the service in a process group of its own; its last stderr line is kept
/// as the reason to show if it exits.
fn spawn(spec: &ServiceSpec, program: &Path) -> std::io::Result<(Child, Arc<Mutex<String>>)> {
    let mut child = Command::new(program)
        .args(&spec.args)
        .envs(spec.env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let last_line = Arc::new(Mutex::new(String::new()));
    if let Some(stderr) = child.stderr.take() {
        let last_line = last_line.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.trim();
                if !line.is_empty()
                    && let Ok(mut last) = last_line.lock()
                {
                    *last = line.chars().take(200).collect();
                }
            }
        });
    }
    Ok((child, last_line))
}

/// SIGTERM to the service's group, SIGKILL after a grace period.
async fn stop(child: &mut Child) {
    let Some(pid) = child.id() else {
        return;
    };
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    // Children that outlived the leader (a renderer) go with the group.
    let _ = killpg(group, Signal::SIGKILL);
}

/// Waits until the display is ready, showing why meanwhile. False on shutdown.
async fn wait_for_display(
    table: &StatusTable,
    name: ServiceName,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        match table.get(ServiceName::Display) {
            (ServiceState::Ready, _) => return true,
            (ServiceState::Unavailable, reason) => table.set(
                name,
                ServiceState::Unavailable,
                Some(format!(
                    "the display is unavailable: {}",
                    reason.unwrap_or_default()
                )),
            ),
            (ServiceState::Starting, _) => table.set(
                name,
                ServiceState::Starting,
                Some("waiting for the display".into()),
            ),
        }
        if sleep_or_shutdown(Duration::from_millis(100), shutdown).await {
            return false;
        }
    }
}

/// Waits until `first` is ready or unavailable (a service this gateway does not run
/// is unavailable from the start), showing why meanwhile. False on shutdown.
async fn wait_settled(
    table: &StatusTable,
    name: ServiceName,
    first: ServiceName,
    shutdown: &CancellationToken,
) -> bool {
    while table.get(first).0 == ServiceState::Starting {
        table.set(
            name,
            ServiceState::Starting,
            Some(format!("starting after {}", first.as_str())),
        );
        if sleep_or_shutdown(Duration::from_millis(50), shutdown).await {
            return false;
        }
    }
    true
}

/// True if shutdown came first.
async fn sleep_or_shutdown(wait: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

async fn wait_healthy(health: &Health, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    if let Health::Alive(after) = health {
        tokio::time::sleep(*after).await;
        return true;
    }
    while Instant::now() < deadline {
        if probe(health).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn probe(health: &Health) -> bool {
    let attempt = async {
        match health {
            Health::Tcp(port) => tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .is_ok(),
            Health::UnixSocket(path) => tokio::net::UnixStream::connect(path).await.is_ok(),
            Health::Alive(_) => true,
        }
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_path_or_by_path() {
        assert!(find_program("sh").is_some());
        assert_eq!(find_program("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("no-such-program-anywhere"), None);
        assert_eq!(find_program("/nonexistent/sh"), None);
    }

    #[tokio::test]
    async fn a_missing_program_makes_its_service_unavailable_with_the_reason() {
        let table = StatusTable::default();
        let spec = ServiceSpec {
            name: ServiceName::Vscode,
            program: "no-such-program-anywhere".into(),
            args: Vec::new(),
            env: Vec::new(),
            health: Health::Alive(Duration::ZERO),
            start_timeout: Duration::from_secs(1),
            needs_display: false,
            starts_after: None,
            install_hint: "a hint",
        };
        let supervisor = Supervisor::start(vec![spec], table.clone());
        let deadline = Instant::now() + Duration::from_secs(5);
        while table.get(ServiceName::Vscode).0 != ServiceState::Unavailable {
            assert!(Instant::now() < deadline, "never became unavailable");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let reason = table.get(ServiceName::Vscode).1.unwrap();
        assert!(reason.contains("not installed (a hint)"), "{reason}");
        supervisor.shutdown().await;
    }

    #[tokio::test]
    async fn a_service_that_exits_is_restarted_and_says_why_meanwhile() {
        let table = StatusTable::default();
        let spec = ServiceSpec {
            name: ServiceName::WindowManager,
            program: "sh".into(),
            args: vec!["-c".into(), "echo broken >&2; sleep 0.3; exit 3".into()],
            env: Vec::new(),
            health: Health::Alive(Duration::from_millis(50)),
            start_timeout: Duration::from_secs(1),
            needs_display: false,
            starts_after: None,
            install_hint: "",
        };
        let supervisor = Supervisor::start(vec![spec], table.clone());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen_ready = false;
        loop {
            let (state, reason) = table.get(ServiceName::WindowManager);
            seen_ready |= state == ServiceState::Ready;
            if state == ServiceState::Unavailable {
                let reason = reason.unwrap();
                assert!(
                    reason.contains("exited with status 3 (broken); restarting in"),
                    "{reason}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "never exited");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(seen_ready);
        // After the backoff it runs again.
        while table.get(ServiceName::WindowManager).0 != ServiceState::Ready {
            assert!(Instant::now() < deadline, "never restarted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        supervisor.shutdown().await;
    }

    #[tokio::test]
    async fn a_service_that_starts_after_another_waits_until_that_one_has_settled() {
        let table = StatusTable::default();
        // The first takes 400 ms to count as ready; the second would be ready at once.
        let first = ServiceSpec {
            name: ServiceName::Vnc,
            program: "sleep".into(),
            args: vec!["30".into()],
            env: Vec::new(),
            health: Health::Alive(Duration::from_millis(400)),
            start_timeout: Duration::from_secs(5),
            needs_display: false,
            starts_after: None,
            install_hint: "",
        };
        let second = ServiceSpec {
            name: ServiceName::Vscode,
            program: "sleep".into(),
            args: vec!["30".into()],
            env: Vec::new(),
            health: Health::Alive(Duration::ZERO),
            start_timeout: Duration::from_secs(5),
            needs_display: false,
            starts_after: Some(ServiceName::Vnc),
            install_hint: "",
        };
        let supervisor = Supervisor::start(vec![second, first], table.clone());
        let deadline = Instant::now() + Duration::from_secs(10);
        while table.get(ServiceName::Vscode).0 != ServiceState::Ready {
            let (state, reason) = table.get(ServiceName::Vscode);
            if table.get(ServiceName::Vnc).0 != ServiceState::Ready {
                assert_eq!(state, ServiceState::Starting, "{reason:?}");
            }
            assert!(Instant::now() < deadline, "never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(table.get(ServiceName::Vnc).0, ServiceState::Ready);
        supervisor.shutdown().await;

        // A first service this gateway does not run holds nothing up.
        let table = StatusTable::default();
        table.set(
            ServiceName::Vnc,
            ServiceState::Unavailable,
            Some("not run".into()),
        );
        let second = ServiceSpec {
            name: ServiceName::Vscode,
            program: "sleep".into(),
            args: vec!["30".into()],
            env: Vec::new(),
            health: Health::Alive(Duration::ZERO),
            start_timeout: Duration::from_secs(5),
            needs_display: false,
            starts_after: Some(ServiceName::Vnc),
            install_hint: "",
        };
        let supervisor = Supervisor::start(vec![second], table.clone());
        let deadline = Instant::now() + Duration::from_secs(5);
        while table.get(ServiceName::Vscode).0 != ServiceState::Ready {
            assert!(
                Instant::now() < deadline,
                "held up by a service that does not run"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        supervisor.shutdown().await;
    }
}
