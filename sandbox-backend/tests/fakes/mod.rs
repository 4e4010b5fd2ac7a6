//! Fake servers for the remote providers, speaking the subset of each service's real
//! wire protocol the provider uses: gRPC over HTTP/2 for Modal ([`modal`]), GraphQL
//! over HTTP plus the exec WebSocket for Railway ([`railway`]), and the Engine HTTP
//! API over a unix socket for Docker ([`docker`]).
//!
//! They run commands for real, as plain child processes of the test on this host, so
//! output, exit codes, stdin, timeouts and files behave as they would remotely. A
//! "machine" (a container, a VM) is a directory; its `/workspace` is
//! `<machine>/workspace`, and every `/workspace` in a command, working directory or
//! path the provider sends is rewritten to it. That rewriting, and the fact that
//! commands are not isolated from this host, are the two ways the fakes differ from
//! the real services. Images are directories too: a build runs its `RUN` lines in a
//! fresh machine, a snapshot or commit copies a machine's directory.

pub mod backend;
pub mod docker;
pub mod modal;
pub mod railway;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncReadExt;
use tokio::process::{ChildStdin, Command};
use tokio::sync::{Mutex, mpsc};

/// What loading a service's official definitions gave (Modal's `api.proto`,
/// Railway's SDK operations): ready, or the run opted out of checking against them.
pub enum Loaded {
    Ready,
    /// The run opted out (`MODAL_PROTO_TESTS=skip`, `RAILWAY_SDK_TESTS=skip`).
    Skipped,
}

/// `target/` of this build, where downloaded definitions are cached: the test binary
/// runs from `target/<profile>/deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where a remote machine's workspace is, as the providers see it.
pub const WORKSPACE: &str = "/workspace";

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id with a prefix (`sb-3`, `ex-7`).
pub fn next_id(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// One fake machine: a directory standing for a container's or VM's filesystem.
#[derive(Debug, Clone)]
pub struct Machine {
    pub root: PathBuf,
    /// Process-group ids of everything started in it (killed when it stops).
    groups: Arc<std::sync::Mutex<Vec<u32>>>,
}

/// Output of a process running in a machine, in order.
#[derive(Debug)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
}

/// A process started in a machine.
pub struct Running {
    pub pid: u32,
    pub stdin: Option<ChildStdin>,
    pub output: mpsc::Receiver<Output>,
}

impl Machine {
    /// A new machine under `parent`, from a copy of `image` (or empty).
    pub async fn create(parent: &Path, image: Option<&Path>) -> std::io::Result<Machine> {
        let root = parent.join(next_id("machine"));
        match image {
            Some(image) => copy_dir(image, &root).await?,
            None => tokio::fs::create_dir_all(&root).await?,
        }
        tokio::fs::create_dir_all(root.join("workspace")).await?;
        Ok(Machine {
            root,
            groups: Arc::default(),
        })
    }

    /// Rewrites the machine's `/workspace` to where it lives on this host.
    pub fn map(&self, text: &str) -> String {
        text.replace(WORKSPACE, &format!("{}/workspace", self.root.display()))
    }

    /// Starts `argv` in the machine with exactly `env` (plus a PATH).
    pub fn spawn(
        &self,
        argv: &[String],
        cwd: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> std::io::Result<Running> {
        let Some((program, args)) = argv.split_first() else {
            return Err(std::io::Error::other("empty command"));
        };
        let cwd = match cwd {
            Some(dir) if dir.starts_with(WORKSPACE) => PathBuf::from(self.map(dir)),
            _ => self.root.join("workspace"),
        };
        let mut command = Command::new(self.map(program));
        command
            .args(args.iter().map(|arg| self.map(arg)))
            .current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &self.root)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        self.groups.lock().unwrap().push(pid);
        let stdin = child.stdin.take();
        let (sender, output) = mpsc::channel(256);
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out_sender = sender.clone();
        let out = tokio::spawn(async move {
            let mut buffer = vec![0u8; 16 * 1024];
            while let Ok(read) = stdout.read(&mut buffer).await {
                if read == 0
                    || out_sender
                        .send(Output::Stdout(buffer[..read].to_vec()))
                        .await
                        .is_err()
                {
                    break;
                }
            }
        });
        let err_sender = sender.clone();
        let err = tokio::spawn(async move {
            let mut buffer = vec![0u8; 16 * 1024];
            while let Ok(read) = stderr.read(&mut buffer).await {
                if read == 0
                    || err_sender
                        .send(Output::Stderr(buffer[..read].to_vec()))
                        .await
                        .is_err()
                {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = out.await;
            let _ = err.await;
            let code = match status {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(9))
                }
                Err(_) => -1,
            };
            let _ = sender.send(Output::Exit(code)).await;
        });
        Ok(Running { pid, stdin, output })
    }

    /// Runs `script` with `sh -c` to its end; the exit code and the combined output.
    pub async fn run_script(
        &self,
        script: &str,
        cwd: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> std::io::Result<(i32, String)> {
        let mut running = self.spawn(&["sh".into(), "-c".into(), script.into()], cwd, env)?;
        drop(running.stdin.take());
        let mut log = Vec::new();
        let mut code = -1;
        while let Some(output) = running.output.recv().await {
            match output {
                Output::Stdout(bytes) | Output::Stderr(bytes) => log.extend(bytes),
                Output::Exit(exit) => code = exit,
            }
        }
        Ok((code, String::from_utf8_lossy(&log).into_owned()))
    }

    /// Kills every process started in the machine (their whole process groups).
    pub fn kill_all(&self) {
        for pid in self.groups.lock().unwrap().drain(..) {
            if pid > 0 {
                let group = nix::unistd::Pid::from_raw(-(pid as i32));
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Copies a directory tree (`cp -a`, which keeps symlinks and modes).
pub async fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "cp -a {} {} failed",
            from.display(),
            to.display()
        )))
    }
}

/// Images as directories, with a builder for Dockerfile lines.
#[derive(Debug)]
pub struct Images {
    dir: PathBuf,
    /// Image ids by name (`debian:bookworm-slim`, `sha256:...`).
    by_name: Mutex<BTreeMap<String, PathBuf>>,
}

impl Images {
    pub fn new(dir: PathBuf) -> Images {
        Images {
            dir,
            by_name: Mutex::new(BTreeMap::new()),
        }
    }

    pub async fn get(&self, name: &str) -> Option<PathBuf> {
        self.by_name.lock().await.get(name).cloned()
    }

    /// "Pulls" a registry image: an empty root file system with a workspace.
    pub async fn pull(&self, name: &str) -> std::io::Result<PathBuf> {
        if let Some(dir) = self.get(name).await {
            return Ok(dir);
        }
        let dir = self.dir.join(next_id("image"));
        tokio::fs::create_dir_all(dir.join("workspace")).await?;
        self.by_name
            .lock()
            .await
            .insert(name.to_string(), dir.clone());
        Ok(dir)
    }

    /// Gives image `id` a second name.
    pub async fn alias(&self, id: &str, name: &str) -> Option<()> {
        let mut by_name = self.by_name.lock().await;
        let dir = by_name.get(id)?.clone();
        by_name.insert(name.to_string(), dir);
        Some(())
    }

    /// Forgets image `id` and removes its directory unless another name still has
    /// it; `false` when there is no such image.
    pub async fn remove(&self, id: &str) -> bool {
        let mut by_name = self.by_name.lock().await;
        let Some(dir) = by_name.remove(id) else {
            return false;
        };
        if !by_name.values().any(|other| *other == dir) {
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        true
    }

    /// Records a machine's file system as image `id`.
    pub async fn snapshot(&self, machine: &Machine, id: &str) -> std::io::Result<()> {
        let dir = self.dir.join(next_id("image"));
        copy_dir(&machine.root, &dir).await?;
        self.by_name.lock().await.insert(id.to_string(), dir);
        Ok(())
    }

    /// Builds Dockerfile `lines` (FROM, WORKDIR, ENV, RUN) into image `id`; `base`
    /// names the image `FROM base` refers to. The build log, or why it failed.
    pub async fn build(
        &self,
        id: &str,
        lines: &[String],
        base: Option<&str>,
    ) -> Result<String, String> {
        let mut log = String::new();
        let (first, rest) = lines.split_first().ok_or("an empty Dockerfile")?;
        let from = first
            .strip_prefix("FROM ")
            .ok_or_else(|| format!("the first line must be FROM, not {first:?}"))?
            .trim();
        let image = if from == "base" {
            let base = base.ok_or("FROM base without a base image")?;
            self.get(base)
                .await
                .ok_or_else(|| format!("unknown base image {base}"))?
        } else {
            self.pull(from).await.map_err(|error| error.to_string())?
        };
        let scratch = tempfile::tempdir_in(&self.dir).map_err(|error| error.to_string())?;
        let machine = Machine::create(scratch.path(), Some(&image))
            .await
            .map_err(|error| error.to_string())?;
        let mut workdir = WORKSPACE.to_string();
        let mut env = BTreeMap::new();
        for line in rest {
            if let Some(dir) = line.strip_prefix("WORKDIR ") {
                workdir = dir.trim().to_string();
                let _ = tokio::fs::create_dir_all(machine.map(&workdir)).await;
            } else if let Some(pair) = line.strip_prefix("ENV ") {
                if let Some((name, value)) = pair.trim().split_once('=') {
                    env.insert(name.to_string(), value.to_string());
                }
            } else if let Some(script) = line.strip_prefix("RUN ") {
                log.push_str(&format!("+ {script}\n"));
                let (code, output) = machine
                    .run_script(script, Some(&workdir), &env)
                    .await
                    .map_err(|error| error.to_string())?;
                log.push_str(&output);
                if code != 0 {
                    return Err(format!("{log}the command exited with {code}"));
                }
            } else {
                return Err(format!("unsupported Dockerfile line {line:?}"));
            }
        }
        let dir = self.dir.join(next_id("image"));
        tokio::fs::rename(&machine.root, &dir)
            .await
            .map_err(|error| error.to_string())?;
        self.by_name.lock().await.insert(id.to_string(), dir);
        Ok(log)
    }
}

/// Suite cases a fake cannot make meaningful, with the reason.
pub fn unconfined_skips() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "fork_bomb_is_contained",
            "the fake runs commands unconfined on this host; containment is the service's",
        ),
        (
            "other_sandboxes_files_are_invisible",
            "the fake's machines are directories on one host; the service isolates them",
        ),
        (
            "network_isolated_refuses_host_and_private",
            "the isolated network is enforced by the service; the fake's commands share this host's network",
        ),
        (
            "sandboxes_default_to_isolated_and_see_nothing_of_the_host",
            "the isolated network is enforced by the service; the fake's commands share this host's network",
        ),
        (
            "network_none_reaches_nothing",
            "no network is enforced by the service; the fake's commands share this host's network",
        ),
        (
            "sigterm_ignoring_process_is_killed",
            "it counts `sleep` processes machine-wide, and the fake's commands share this host's process table; \
             group kills are covered by exec_timeout_kills_the_group and the process cases",
        ),
    ]
}

/// The paths every remote provider must get right, through the backend's HTTP API:
/// create, exec with env, cwd and stdin, a timeout, files and a symlink escape, fork
/// isolation, destroy.
pub async fn round_trip(client: &crate::conformance::Client) {
    use serde_json::json;
    let sandbox = client
        .create(json!({"env": {"GREETING": "hi"}}))
        .await
        .expect("create");
    let id = sandbox.id.as_str();
    let result = client
        .exec_result(
            id,
            json!({"command": "sh", "args": ["-c", "echo $GREETING $EXTRA; pwd; cat; echo err >&2; exit 3"],
                   "env": {"EXTRA": "there"}, "stdin": "from stdin\n"}),
        )
        .await
        .expect("exec");
    assert_eq!(result.exit.code, 3, "{result:?}");
    assert!(result.stdout.starts_with("hi there\n"), "{result:?}");
    assert!(
        result.stdout.trim_end().ends_with("from stdin"),
        "{result:?}"
    );
    assert!(result.stdout.contains("/workspace\n"), "{result:?}");
    assert_eq!(result.stderr, "err\n");

    let started = std::time::Instant::now();
    let slow = client
        .exec_result(
            id,
            json!({"command": "sh", "args": ["-c", "sleep 30 & sleep 30"], "timeout_ms": 300}),
        )
        .await
        .expect("exec");
    assert!(slow.exit.timed_out && slow.exit.code != 0, "{slow:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let put = client
        .call_raw(
            "PUT",
            &format!("/v1/sandboxes/{id}/files?path=dir/a.bin"),
            Some(vec![0, 1, 2, 255]),
        )
        .await;
    assert!(put.status < 300, "{}", put.text());
    let got = client
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files?path=dir/a.bin"),
            None,
        )
        .await;
    assert_eq!(got.body, vec![0, 1, 2, 255]);
    let missing = client
        .call("GET", &format!("/v1/sandboxes/{id}/files?path=nope"), None)
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    client.sh(id, "ln -s /etc/hostname link").await.expect("ln");
    let escape = client
        .call("GET", &format!("/v1/sandboxes/{id}/files?path=link"), None)
        .await;
    assert_eq!(escape.status, 400, "{}", escape.text());

    let fork = client
        .call("POST", &format!("/v1/sandboxes/{id}/fork"), Some(json!({})))
        .await;
    assert!(fork.status < 300, "fork: {}", fork.text());
    let fork_id = fork.json()["id"].as_str().unwrap().to_string();
    let copied = client
        .sh(&fork_id, "cat dir/a.bin | wc -c; echo x > only-fork")
        .await
        .unwrap();
    assert_eq!(copied.stdout.trim(), "4", "{copied:?}");
    let original = client.sh(id, "test -e only-fork; echo $?").await.unwrap();
    assert_eq!(original.stdout.trim(), "1", "{original:?}");

    client.destroy(&fork_id).await.expect("destroy fork");
    client.destroy(id).await.expect("destroy");
}
