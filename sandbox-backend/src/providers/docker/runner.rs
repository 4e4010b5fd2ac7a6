//! A session's runner inside its docker sandbox, kept apart from the commands it
//! runs.
//!
//! The sandbox image has two users: the sandbox's (`SANDBOX_DOCKER_USER`, uid 1000),
//! which the container, its gateway, terminals and code-server run as, and
//! [`RUNNER_USER`] (uid [`RUNNER_UID`], also in the sandbox's group so it can edit
//! the workspace), which only the runner runs as. The runner's config (its token)
//! lives in [`RUNNER_DIR`], a tmpfs of the container that only the runner's user can
//! enter (mode 0700), so it is never committed into a fork's or snapshot's image.
//!
//! Starting: a session's container runs as root, keeping `SETUID`, `SETGID` and `KILL` of
//! all capabilities and nothing else (the Engine gives capabilities to an exec only in a
//! container whose user is root: with `no-new-privileges`, an exec as root in a
//! container of another user has none), and every exec names its user, the
//! sandbox's but one. That one, as root, runs [`START_SCRIPT`], which becomes the
//! runner's user at once with `setpriv`, keeping those capabilities as ambient
//! ones, writes the config from the exec's standard input into a fresh 0600
//! file (so it is on no command line, in no environment and in nothing `docker
//! inspect` shows) and leaves [`SUPERVISOR_SCRIPT`] running, detached: it starts the
//! runner with a cleared environment and again with a back-off when it exits (not
//! after exit code 3, a refused token), its output in [`LOG_FILE`]. The backend
//! runs this at create and at every start of the container. The runner is the
//! image's at create; at a later start, the one the backend installed in the
//! stopped container ([`super::runner_install`]), checked again here first.
//!
//! The runner's commands (the tool's bash, git) go through [`command_wrapper`]:
//! `setpriv` to the sandbox's uid and gid with no supplementary groups and no
//! capability left in the inheritable or ambient sets (so the command has none),
//! then `env` adding only what a command needs beside the runner's own cleared
//! environment (HOME, and the way out's proxy), and a umask that keeps the
//! workspace editable by both users. The command's user cannot read the runner's
//! directory, signal it or read its `/proc/<pid>/environ` (another uid, and the
//! runner holds capabilities the command lacks, so no ptrace either).

use std::time::Duration;

use nightshift_protocol::sandbox::RunnerBootConfig;

use crate::exec::ExecPlan;
use crate::providers::RunnerPlacement;

/// The runner's user in the sandbox image (`docker/Dockerfile`).
pub const RUNNER_USER: &str = "nightshift-runner";
pub const RUNNER_UID: u32 = 1001;
/// The runner's own directory: a tmpfs only its user enters.
pub const RUNNER_DIR: &str = "/run/nightshift-runner";
pub const CONFIG_FILE: &str = "/run/nightshift-runner/config.json";
pub const LOG_FILE: &str = "/run/nightshift-runner/runner.log";
/// Where the runner serves git's credential helper to the container's commands: a
/// tmpfs of the runner's own (0755), so the sandbox's user can reach the socket
/// but not replace it or plant anything beside it.
pub const GIT_SOCKETS_DIR: &str = "/run/nightshift-git";
/// What the exec starting the runner runs as: root, which gives up root at once.
pub const START_USER: &str = "0:0";
/// The capabilities a session container keeps, for the runner only: `setpriv` to the
/// sandbox's user for its commands, and signals to their process groups (a command
/// that timed out or was aborted runs as another uid). Every other one is dropped,
/// and `no-new-privileges` holds.
pub const KEPT_CAPABILITIES: [&str; 3] = ["SETUID", "SETGID", "KILL"];
/// The search path of the runner and of its commands.
const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `sh -c` as root: `$1` the runner's uid, `$2` the SHA-256 of the runner the
/// backend installed at
/// [`INSTALLED_RUNNER`](super::runner_install::INSTALLED_RUNNER) (empty: none,
/// the image's `runner` on the search path), `$3` [`START_AS_RUNNER`], then its
/// arguments. Checks the image
/// has what the runner needs and that an installed runner is still the one the
/// backend installed (root's, 0755, in a directory of root's, no link on the way,
/// and its digest), then becomes the runner's user (keeping [`KEPT_CAPABILITIES`]
/// as ambient capabilities, for its commands' `setpriv` and signals) and runs the
/// rest as it, the runner's path last; the config stays on the standard input.
const START_SCRIPT: &str = r#"uid=$1; digest=$2; script=$3; shift 3
if [ -n "$digest" ]; then
  bin=/.nightshift-runner/runner
  { [ ! -L "${bin%/*}" ] && [ -d "${bin%/*}" ] && [ ! -L "$bin" ] && [ -f "$bin" ] \
    && [ "$(stat -c %u:%a "${bin%/*}" "$bin")" = "$(printf '0:755\n0:755')" ]; } \
    || { echo "$bin is not the runner the backend installed (not root's own file)" >&2; exit 126; }
  [ "$(sha256sum < "$bin" | cut -d ' ' -f 1)" = "$digest" ] \
    || { echo "$bin is not the runner the backend installed (another digest)" >&2; exit 126; }
else
  bin=$(command -v runner) || { echo "the runner is not installed in the sandbox image" >&2; exit 127; }
fi
command -v setpriv >/dev/null || { echo "setpriv (util-linux) is not installed in the sandbox image" >&2; exit 127; }
id "$uid" >/dev/null 2>&1 || { echo "the sandbox image has no user $uid for the runner (build it from docker/)" >&2; exit 127; }
exec setpriv --reuid="$uid" --regid="$uid" --init-groups --inh-caps=-all,+setuid,+setgid,+kill --ambient-caps=+setuid,+setgid,+kill -- sh -c "$script" "$@" "$bin""#;

/// `sh -c` as the runner's user: `$0` the config file, `$1` the log, `$2`
/// [`SUPERVISOR_SCRIPT`], `$3` the runner's path. Writes the config from stdin into
/// a fresh 0600 file (`set -C` refuses one planted there) and leaves the supervisor
/// running in a session of its own once the exec ends.
const START_AS_RUNNER: &str = r#"umask 077
[ -d "${0%/*}" ] && [ -O "${0%/*}" ] || { echo "${0%/*} is not the runner's own directory" >&2; exit 1; }
rm -f -- "$0"
(set -C; cat > "$0") || { echo "cannot write the runner config $0" >&2; exit 1; }
[ -s "$0" ] || { echo "no runner config was given" >&2; exit 1; }
if [ -f "${0%/*}/supervisor.pid" ]; then kill "$(cat "${0%/*}/supervisor.pid")" 2>/dev/null; fi
setsid -f sh -c "$2" nightshift-runner-supervisor "$0" "$3" < /dev/null >> "$1" 2>&1"#;

/// The runner's supervisor in the container (the backend may be gone while the
/// container lives on): `$1` the config, `$2` the runner's path. Starts `<runner>
/// --config`, with a cleared environment and a umask that leaves its files in the
/// workspace editable by the sandbox's group, and again with a back-off (1 s
/// doubling to 30 s, back to 1 s after a minute up) whenever it exits, except with
/// code 3 (its token was refused for good).
const SUPERVISOR_SCRIPT: &str = r#"echo $$ > "${1%/*}/supervisor.pid"
delay=1
while :; do
  started=$(date +%s)
  (umask 002; exec env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="${1%/*}" LANG=C.UTF-8 RUST_LOG=info "$2" --config "$1" < /dev/null)
  code=$?
  if [ "$code" -eq 3 ]; then echo "the runner's token was refused: it stays down" >&2; exit 3; fi
  echo "the runner exited ($code); starting it again in $delay s" >&2
  if [ $(( $(date +%s) - started )) -ge 60 ]; then delay=1; fi
  sleep "$delay"
  delay=$(( delay * 2 )); [ "$delay" -le 30 ] || delay=30
done"#;

/// The exec that starts the runner, its config on stdin: the one installed at
/// [`INSTALLED_RUNNER`](super::runner_install::INSTALLED_RUNNER) with SHA-256
/// `installed` (hex) when the backend installed one, else the image's.
pub fn start_plan(
    config: &RunnerBootConfig,
    installed: Option<&str>,
) -> Result<ExecPlan, serde_json::Error> {
    let json = serde_json::to_string(config)?;
    Ok(ExecPlan {
        argv: [
            "sh",
            "-c",
            START_SCRIPT,
            "nightshift-runner-start",
            &RUNNER_UID.to_string(),
            installed.unwrap_or_default(),
            START_AS_RUNNER,
            CONFIG_FILE,
            LOG_FILE,
            SUPERVISOR_SCRIPT,
        ]
        .map(String::from)
        .to_vec(),
        env: Default::default(),
        cwd: None,
        timeout: Duration::from_secs(30),
        stdin: Some(format!("{json}\n")),
    })
}

/// The mount of [`RUNNER_DIR`] for `HostConfig.Tmpfs`.
pub fn tmpfs_options() -> String {
    format!("rw,nosuid,nodev,noexec,size=16m,mode=0700,uid={RUNNER_UID},gid={RUNNER_UID}")
}

/// The mount of [`GIT_SOCKETS_DIR`] for `HostConfig.Tmpfs`.
pub fn git_sockets_tmpfs_options() -> String {
    format!("rw,nosuid,nodev,noexec,size=1m,mode=0755,uid={RUNNER_UID},gid={RUNNER_UID}")
}

/// The argv prefix that runs one of the runner's commands as the sandbox's user
/// (`uid:gid`), with `proxy` as its way out when the sandbox has one.
pub fn command_wrapper(sandbox_user: &str, proxy: Option<&str>) -> Vec<String> {
    let (uid, gid) = sandbox_user
        .split_once(':')
        .unwrap_or((sandbox_user, sandbox_user));
    let mut wrapper: Vec<String> = vec![
        "setpriv".into(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
        "--inh-caps=-all".into(),
        "--ambient-caps=-all".into(),
        "--".into(),
        "env".into(),
        format!("PATH={SEARCH_PATH}"),
        "HOME=/home/sandbox".into(),
    ];
    if proxy.is_some() {
        // The same way out as the container's own environment gives.
        wrapper.extend(super::egress::proxy_env());
    }
    // A umask that keeps what the command writes editable by the runner, which
    // shares the sandbox's group; then the command the runner appends.
    wrapper
        .extend(["sh", "-c", "umask 002 && exec \"$@\"", "nightshift-command"].map(String::from));
    wrapper
}

/// Where a runner inside the container works: on the workspace itself, its
/// commands through [`command_wrapper`], on the container's loopback (no bridge),
/// out through `proxy` when the sandbox's way out is one.
pub fn placement(workspace: &str, sandbox_user: &str, proxy: Option<&str>) -> RunnerPlacement {
    RunnerPlacement {
        workspace_dir: workspace.to_string(),
        sandbox_workspace_dir: workspace.to_string(),
        command_wrapper: command_wrapper(sandbox_user, proxy),
        bridge: Vec::new(),
        opencode: None,
        sockets_dir: Some(GIT_SOCKETS_DIR.to_string()),
        sandbox_sockets_dir: Some(GIT_SOCKETS_DIR.to_string()),
        proxy: proxy.map(String::from),
        egress_credential_socket: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RunnerBootConfig {
        RunnerBootConfig {
            worker_url: "http://127.0.0.1:8787".into(),
            session_id: "ses_1".into(),
            token: "v2.secret-token".to_string().into(),
            workspace_dir: "/workspace".into(),
            command_wrapper: command_wrapper("1000:1000", None),
            sandbox_workspace_dir: "/workspace".into(),
            bridge: Vec::new(),
            opencode: None,
            sockets_dir: None,
            sandbox_sockets_dir: None,
            proxy: Some("http://127.0.0.1:3128".into()),
            egress_credential_socket: None,
        }
    }

    #[test]
    fn the_config_is_on_stdin_only() {
        let plan = start_plan(&config(), None).unwrap();
        assert!(!plan.argv.iter().any(|arg| arg.contains("secret-token")));
        assert!(plan.env.is_empty());
        let stdin = plan.stdin.unwrap();
        let given: RunnerBootConfig = serde_json::from_str(stdin.trim()).unwrap();
        assert_eq!(given.token.expose(), "v2.secret-token");
        assert_eq!(given.proxy.as_deref(), Some("http://127.0.0.1:3128"));
        assert_eq!(&plan.argv[4..6], ["1001", ""]);
        assert_eq!(&plan.argv[7..9], [CONFIG_FILE, LOG_FILE]);
        let digest = "ab".repeat(32);
        let installed = start_plan(&config(), Some(&digest)).unwrap();
        assert_eq!(&installed.argv[4..6], ["1001", digest.as_str()]);
        // The script checks and runs the very path the backend installs into.
        let installed_runner = super::super::runner_install::INSTALLED_RUNNER;
        assert!(START_SCRIPT.contains(&format!("bin={installed_runner}\n")));
    }

    #[test]
    fn commands_run_as_the_sandbox_user_without_capabilities() {
        let wrapper = command_wrapper("1000:1000", Some("http://127.0.0.1:3128"));
        assert_eq!(wrapper[0], "setpriv");
        for flag in [
            "--reuid=1000",
            "--regid=1000",
            "--clear-groups",
            "--inh-caps=-all",
            "--ambient-caps=-all",
        ] {
            assert!(wrapper.iter().any(|arg| arg == flag), "{flag} missing");
        }
        assert!(
            wrapper
                .iter()
                .any(|arg| arg == "HTTPS_PROXY=http://127.0.0.1:3128")
        );
        // Nothing of the runner's own passes: the runner clears its commands'
        // environment, and the wrapper only adds.
        assert!(
            !wrapper
                .iter()
                .any(|arg| arg == "-i" || arg.contains("TOKEN"))
        );
        let plain = command_wrapper("1000:1000", None);
        assert!(!plain.iter().any(|arg| arg.contains("PROXY")));
        assert_eq!(plain.last().map(String::as_str), Some("nightshift-command"));
    }

    #[test]
    fn the_runners_directory_is_its_own() {
        let options = tmpfs_options();
        assert!(options.contains("mode=0700"));
        assert!(options.contains(&format!("uid={RUNNER_UID}")));
    }
}
