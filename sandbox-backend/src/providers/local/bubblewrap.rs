//! The bubblewrap command line that builds a sandbox: fresh mount, PID, IPC, UTS,
//! user and (unless `network` is shared) network namespaces, no capabilities, a new
//! session, an unprivileged uid (1000) whatever uid the backend runs as, a read-only
//! view of the host's `/usr` and of the few `/etc` files commands need (name
//! resolution, certificates, locale and linker data), private `/tmp`, `/proc` and
//! `/dev`, and two writable host directories: the workspace at `/workspace` and a
//! private home at `/home/sandbox`. No user namespace can be created inside
//! (`--disable-userns`), and `/tmp` and `/run` are tmpfs of a bounded size. Nothing else of the host is visible: not the rest
//! of `/etc`, not the backend's data directory, not other sandboxes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nightshift_protocol::sandbox::{NetworkMode, SANDBOX_SOCKETS_DIR};

pub use super::sandbox_paths::{
    OPENCODE_PROJECT_MASK, SANDBOX_AGENT, SANDBOX_GATEWAY, SANDBOX_HOME, SANDBOX_UID,
    SANDBOX_WORKSPACE,
};
/// The `/etc` entries bound read-only (when they exist on the host). Debian's
/// `/usr/bin/chromium` is a script that reads `/etc/chromium.d/*` and stops without
/// it, and fontconfig needs `/etc/fonts` to draw text on the desktop.
const ETC_ENTRIES: [&str; 30] = [
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "alternatives",
    "localtime",
    "timezone",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "mime.types",
    "protocols",
    "services",
    "bash.bashrc",
    "profile",
    "profile.d",
    "inputrc",
    "gitconfig",
    "terminfo",
    "magic",
    "os-release",
    "debian_version",
    "chromium",
    "chromium.d",
    "fonts",
];

/// The contents of the sandbox's `/etc/passwd` and `/etc/group`.
pub const PASSWD: &str = "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:1000:1000:sandbox:/home/sandbox:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
pub const GROUP: &str = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";

/// Everything that shapes one sandbox's mounts.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    pub workspace: &'a Path,
    pub home: &'a Path,
    pub network: NetworkMode,
    /// Directory holding the generated `passwd` and `group`.
    pub etc_dir: &'a Path,
    /// The agent binary, bound at [`SANDBOX_AGENT`].
    pub agent: Option<&'a Path>,
    /// The gateway binary, bound at [`SANDBOX_GATEWAY`].
    pub gateway: Option<&'a Path>,
    /// Host directories bound read-only at the same path.
    pub ro_binds: &'a [PathBuf],
    /// The directory of sockets the runner serves for the sandbox, bound read-only at
    /// [`SANDBOX_SOCKETS_DIR`] (read-only: the sandbox cannot plant a socket of its
    /// own there, but connecting to one needs no write access to the mount).
    pub sockets: Option<&'a Path>,
    /// The size of the sandbox's `/tmp` (a tmpfs), unlimited when `None`.
    pub tmp_bytes: Option<u64>,
    /// Also bind the agent binary at the tool shell's path (OpenCode's sandbox: its
    /// `$SHELL` runs each command in the session's sandbox).
    pub tool_shell: bool,
    /// Bind the workspace's [`OPENCODE_PROJECT_MASK`] onto itself from the descriptor
    /// `__launch --pin` opened (see [`super::launch::PINNED_FD`]): a mount point in the
    /// session's sandbox, which its processes can neither remove nor rename, so the
    /// mask OpenCode's sandbox puts over it stays attached.
    pub pin_opencode_dir: bool,
}
/// `PATH` inside the sandbox (the host's `/usr` is all there is).
pub const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the probe command may take before bubblewrap counts as broken.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One top-level directory next to `/usr` that merged-`/usr` systems turn into a
/// symlink (`/bin -> usr/bin`). The sandbox mirrors the host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootEntry {
    Symlink { target: String, path: String },
    Bind(String),
}

/// A located bubblewrap and the host layout it mirrors.
#[derive(Debug, Clone)]
pub struct Bubblewrap {
    program: PathBuf,
    root_entries: Vec<RootEntry>,
}

/// What differs from one sandboxed command to the next.
#[derive(Debug, Clone, Copy)]
pub struct CommandScope<'a> {
    pub workspace: &'a Path,
    pub network: NetworkMode,
    /// The sandbox's environment.
    pub sandbox_env: &'a BTreeMap<String, String>,
    /// This command's environment, applied after the sandbox's.
    pub command_env: &'a BTreeMap<String, String>,
    /// The working directory inside the sandbox.
    pub cwd: &'a str,
}

impl Bubblewrap {
    /// Finds `bwrap` on the usual system paths.
    pub fn find() -> Option<Bubblewrap> {
        let program = ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())?;
        Some(Bubblewrap::with_program(program))
    }

    fn with_program(program: PathBuf) -> Bubblewrap {
        let root_entries = ["/bin", "/lib", "/lib64", "/sbin"]
            .into_iter()
            .filter_map(|path| match std::fs::read_link(path) {
                Ok(target) => Some(RootEntry::Symlink {
                    target: target.display().to_string(),
                    path: path.into(),
                }),
                Err(_) if Path::new(path).is_dir() => Some(RootEntry::Bind(path.into())),
                Err(_) => None,
            })
            .collect();
        Bubblewrap {
            program,
            root_entries,
        }
    }

    /// The argv (ending in `--`) that builds a sandbox as `layout` says, with an
    /// empty environment and `/workspace` as working directory; the sandbox's first
    /// command follows it.
    pub fn sandbox_args(&self, layout: &Layout<'_>) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            self.program.display().to_string(),
            "--unshare-all".into(),
            "--unshare-user".into(),
            // No user namespace can be created inside: a new one would hand its
            // creator capabilities over fresh kernel objects (the seccomp filter
            // refuses the same calls; this holds even without it).
            "--disable-userns".into(),
        ];
        if layout.network == NetworkMode::Private {
            argv.push("--share-net".into());
        }
        let uid = SANDBOX_UID.to_string();
        argv.extend(
            [
                "--uid",
                &uid,
                "--gid",
                &uid,
                "--cap-drop",
                "ALL",
                "--new-session",
                "--hostname",
                "sandbox",
                "--clearenv",
                "--ro-bind",
                "/usr",
                "/usr",
            ]
            .map(String::from),
        );
        for entry in &self.root_entries {
            match entry {
                RootEntry::Symlink { target, path } => {
                    argv.extend(["--symlink".into(), target.clone(), path.clone()]);
                }
                RootEntry::Bind(path) => {
                    argv.extend(["--ro-bind".into(), path.clone(), path.clone()])
                }
            }
        }
        for name in ["passwd", "group"] {
            argv.extend([
                "--ro-bind".into(),
                layout.etc_dir.join(name).display().to_string(),
                format!("/etc/{name}"),
            ]);
        }
        for name in ETC_ENTRIES {
            let host = format!("/etc/{name}");
            if Path::new(&host).exists() {
                argv.extend(["--ro-bind-try".into(), host.clone(), host]);
            }
        }
        argv.extend(["--proc", "/proc", "--dev", "/dev"].map(String::from));
        if let Some(bytes) = layout.tmp_bytes {
            argv.extend(["--size".into(), bytes.to_string()]);
        }
        argv.extend(["--tmpfs", "/tmp", "--size", "1048576", "--tmpfs", "/run"].map(String::from));
        argv.extend([
            "--bind".into(),
            layout.workspace.display().to_string(),
            SANDBOX_WORKSPACE.into(),
            "--bind".into(),
            layout.home.display().to_string(),
            SANDBOX_HOME.into(),
        ]);
        if layout.pin_opencode_dir {
            argv.extend(
                ["--bind-fd", super::launch::PINNED_FD, OPENCODE_PROJECT_MASK].map(String::from),
            );
        }
        if layout.tool_shell {
            // OpenCode loads plugins and agents from the project's `.opencode/`
            // whatever its settings say; in its sandbox that directory is an empty,
            // read-only mount. Removing the directory underneath would detach it; the
            // session's sandbox cannot (`pin_opencode_dir`), and the runner checks
            // the mask is in place all the same: see OPENCODE_PROJECT_MASK.
            argv.extend(
                [
                    "--tmpfs",
                    OPENCODE_PROJECT_MASK,
                    "--remount-ro",
                    OPENCODE_PROJECT_MASK,
                ]
                .map(String::from),
            );
        }
        for dir in layout.ro_binds {
            let dir = dir.display().to_string();
            argv.extend(["--ro-bind-try".into(), dir.clone(), dir]);
        }
        if let Some(agent) = layout.agent {
            argv.extend([
                "--ro-bind".into(),
                agent.display().to_string(),
                SANDBOX_AGENT.into(),
            ]);
        }
        if let Some(gateway) = layout.gateway {
            argv.extend([
                "--ro-bind".into(),
                gateway.display().to_string(),
                SANDBOX_GATEWAY.into(),
            ]);
        }
        if let (true, Some(agent)) = (layout.tool_shell, layout.agent) {
            argv.extend([
                "--ro-bind".into(),
                agent.display().to_string(),
                super::sandbox_agent::tool_shell::TOOL_SHELL.into(),
            ]);
        }
        if let Some(sockets) = layout.sockets {
            argv.extend([
                "--ro-bind".into(),
                sockets.display().to_string(),
                SANDBOX_SOCKETS_DIR.into(),
            ]);
        }
        argv.extend(["--chdir".into(), SANDBOX_WORKSPACE.into(), "--".into()]);
        argv
    }

    /// The argv prefix (ending in `--`) that runs a command as `scope` says; the
    /// command and its arguments follow it.
    pub fn prefix(&self, scope: CommandScope<'_>) -> Vec<String> {
        let mut argv: Vec<String> =
            vec![self.program.display().to_string(), "--unshare-all".into()];
        if scope.network != NetworkMode::None {
            argv.push("--share-net".into());
        }
        argv.extend(["--die-with-parent", "--new-session", "--clearenv"].map(String::from));
        let base_env = [
            ("PATH", SANDBOX_PATH),
            ("HOME", SANDBOX_WORKSPACE),
            ("LANG", "C.UTF-8"),
        ];
        let env = base_env
            .into_iter()
            .chain(
                scope
                    .sandbox_env
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .chain(
                scope
                    .command_env
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            );
        for (name, value) in env {
            argv.extend(["--setenv".into(), name.into(), value.into()]);
        }
        argv.extend(["--ro-bind", "/usr", "/usr"].map(String::from));
        for entry in &self.root_entries {
            match entry {
                RootEntry::Symlink { target, path } => {
                    argv.extend(["--symlink".into(), target.clone(), path.clone()]);
                }
                RootEntry::Bind(path) => {
                    argv.extend(["--ro-bind".into(), path.clone(), path.clone()])
                }
            }
        }
        argv.extend(
            [
                "--ro-bind",
                "/etc",
                "/etc",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--tmpfs",
                "/tmp",
            ]
            .map(String::from),
        );
        argv.extend([
            "--bind".into(),
            scope.workspace.display().to_string(),
            SANDBOX_WORKSPACE.into(),
        ]);
        argv.extend(["--chdir".into(), scope.cwd.into(), "--".into()]);
        argv
    }

    /// Checks that bubblewrap can create its namespaces here, by running `true` in a
    /// sandbox over `scratch`. The error carries bubblewrap's own complaint.
    pub async fn probe(&self, scratch: &Path, prefix: &[String]) -> Result<(), String> {
        // Exactly the sandboxes' own command line (user namespace, dropped
        // capabilities, uid 1000, no network), over a scratch directory.
        for (name, contents) in [("passwd", PASSWD), ("group", GROUP)] {
            std::fs::write(scratch.join(name), contents)
                .map_err(|error| format!("cannot write to {}: {error}", scratch.display()))?;
        }
        let layout = Layout {
            workspace: scratch,
            home: scratch,
            network: NetworkMode::None,
            etc_dir: scratch,
            agent: None,
            gateway: None,
            ro_binds: &[],
            sockets: None,
            tmp_bytes: Some(1024 * 1024),
            tool_shell: false,
            pin_opencode_dir: false,
        };
        let mut argv: Vec<String> = prefix.to_vec();
        argv.extend(self.sandbox_args(&layout));
        argv.push("true".into());
        let output = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(PROBE_TIMEOUT, output).await {
            Err(_) => Err(format!(
                "`{}` did not finish within {PROBE_TIMEOUT:?}",
                self.program.display()
            )),
            Ok(Err(error)) => Err(format!("cannot run {}: {error}", self.program.display())),
            Ok(Ok(output)) if output.status.success() => Ok(()),
            Ok(Ok(output)) => Err(format!(
                "{} exited with {}: {}",
                self.program.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }
}

/// The sandbox's idea of a command's working directory: the workspace by default, a
/// relative `cwd` inside it, an absolute one as given.
pub fn sandbox_cwd(cwd: Option<&str>) -> String {
    match cwd {
        None => SANDBOX_WORKSPACE.into(),
        Some(path) if path.starts_with('/') => path.into(),
        Some(path) => format!("{SANDBOX_WORKSPACE}/{}", path.trim_start_matches("./")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bubblewrap() -> Bubblewrap {
        Bubblewrap {
            program: "/usr/bin/bwrap".into(),
            root_entries: vec![
                RootEntry::Symlink {
                    target: "usr/bin".into(),
                    path: "/bin".into(),
                },
                RootEntry::Bind("/lib".into()),
            ],
        }
    }

    fn position(argv: &[String], needle: &[&str]) -> Option<usize> {
        argv.windows(needle.len())
            .position(|window| window.iter().zip(needle).all(|(a, b)| a == b))
    }

    #[test]
    fn the_prefix_isolates_and_binds_only_the_workspace_writable() {
        let env: BTreeMap<_, _> = [("FOO".to_string(), "bar".to_string())].into();
        let command_env: BTreeMap<_, _> = [("FOO".to_string(), "override".to_string())].into();
        let argv = bubblewrap().prefix(CommandScope {
            workspace: Path::new("/data/sandboxes/s1/workspace"),
            network: NetworkMode::Private,
            sandbox_env: &env,
            command_env: &command_env,
            cwd: "/workspace/src",
        });
        assert_eq!(
            argv[..3],
            ["/usr/bin/bwrap", "--unshare-all", "--share-net"]
        );
        assert!(
            position(
                &argv,
                &["--bind", "/data/sandboxes/s1/workspace", "/workspace"]
            )
            .is_some()
        );
        assert!(position(&argv, &["--symlink", "usr/bin", "/bin"]).is_some());
        assert!(position(&argv, &["--ro-bind", "/lib", "/lib"]).is_some());
        assert_eq!(argv[argv.len() - 3..], ["--chdir", "/workspace/src", "--"]);
        // Later --setenv wins, and --clearenv comes before all of them.
        let clear = position(&argv, &["--clearenv"]).unwrap();
        let sandbox = position(&argv, &["--setenv", "FOO", "bar"]).unwrap();
        let command = position(&argv, &["--setenv", "FOO", "override"]).unwrap();
        assert!(clear < sandbox && sandbox < command);
        // Exactly one writable host bind.
        assert_eq!(argv.iter().filter(|arg| *arg == "--bind").count(), 1);
    }

    #[test]
    fn no_network_means_no_shared_network_namespace() {
        let empty = BTreeMap::new();
        let argv = bubblewrap().prefix(CommandScope {
            workspace: Path::new("/w"),
            network: NetworkMode::None,
            sandbox_env: &empty,
            command_env: &empty,
            cwd: SANDBOX_WORKSPACE,
        });
        assert!(!argv.contains(&"--share-net".to_string()));
    }

    #[test]
    fn working_directories_resolve_inside_the_workspace() {
        assert_eq!(sandbox_cwd(None), "/workspace");
        assert_eq!(sandbox_cwd(Some("src/app")), "/workspace/src/app");
        assert_eq!(sandbox_cwd(Some("./src")), "/workspace/src");
        assert_eq!(sandbox_cwd(Some("/tmp")), "/tmp");
    }

    #[tokio::test]
    async fn the_probe_succeeds_on_this_machine() {
        let bubblewrap = Bubblewrap::find().expect("bubblewrap is installed");
        let scratch = tempfile::tempdir().unwrap();
        bubblewrap.probe(scratch.path(), &[]).await.unwrap();
    }
}
