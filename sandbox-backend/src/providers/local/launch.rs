//! `sandbox-backend __launch [--cgroup <cgroup.procs file>]... [--rlimit <name>=<n>]...
//! [--user <uid>:<gid>] [--seccomp] -- <bwrap> <options>...`: puts itself into the
//! given resource-control groups, sets the resource limits (`nproc`, `cpu`, `as`,
//! `nofile`, `fsize`; soft and hard), starts a new session, drops to the unprivileged
//! host user when told to (see [`super::host_user`]), writes the sandbox's seccomp
//! filter ([`super::seccomp`]) into an inherited memory file and tells bubblewrap
//! about it, then becomes bubblewrap, which passes all of it on to every process of
//! the sandbox. Joining before the exec means every process of the sandbox is born
//! inside the groups, without a window in which it is not; dropping after joining
//! means the groups can stay writable by root only.

use std::io::{Seek, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use super::host_user::HostUser;

pub fn main(args: &[String]) -> ExitCode {
    match launch(args) {
        Ok(never) => match never {},
        Err(message) => {
            eprintln!("sandbox-backend __launch: {message}");
            ExitCode::from(125)
        }
    }
}

fn launch(args: &[String]) -> Result<std::convert::Infallible, String> {
    let split = args
        .iter()
        .position(|arg| arg == "--")
        .ok_or("no command after --")?;
    let (options, command) = (&args[..split], &args[split + 1..]);
    if command.is_empty() {
        return Err("no command after --".into());
    }
    let mut user = None;
    let mut seccomp = false;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--seccomp" => seccomp = true,
            "--rlimit" | "--cgroup" | "--user" => {
                let value = options
                    .next()
                    .ok_or_else(|| format!("{option} needs a value"))?;
                match option.as_str() {
                    "--rlimit" => set_limit(value)?,
                    "--cgroup" => std::fs::write(value, std::process::id().to_string())
                        .map_err(|error| format!("cannot join {value}: {error}"))?,
                    _ => {
                        user = Some(
                            HostUser::parse(value)
                                .ok_or_else(|| format!("--user {value:?} is not uid:gid"))?,
                        )
                    }
                }
            }
            _ => return Err(format!("unknown option {option:?}")),
        }
    }
    // A session of its own: no terminal's signals reach the sandbox, and it does not
    // end with the backend's process group.
    let _ = nix::unistd::setsid();
    if let Some(user) = user {
        user.become_for_good()?;
    }
    let mut argv: Vec<String> = command.to_vec();
    if seccomp {
        let fd = seccomp_fd()?;
        argv.splice(1..1, ["--seccomp".to_string(), fd.to_string()]);
    }
    let error = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(format!("cannot run {}: {error}", argv[0]))
}

/// The seccomp program in a memory file that stays open across the exec (no
/// close-on-exec flag), positioned at its start, as bubblewrap reads it.
fn seccomp_fd() -> Result<i32, String> {
    let program =
        super::seccomp::filter().ok_or("no seccomp filter exists for this architecture")?;
    let fd =
        nix::sys::memfd::memfd_create("nightshift-seccomp", nix::sys::memfd::MFdFlags::empty())
            .map_err(|error| format!("memfd_create: {error}"))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&super::seccomp::to_bytes(&program))
        .and_then(|()| file.rewind())
        .map_err(|error| format!("cannot write the seccomp filter: {error}"))?;
    Ok(file.into_raw_fd())
}

fn set_limit(text: &str) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--rlimit {text:?} is not name=value"))?;
    let value: u64 = value
        .parse()
        .map_err(|_| format!("--rlimit {text:?}: not a number"))?;
    let resource = match name {
        "nproc" => Resource::RLIMIT_NPROC,
        "cpu" => Resource::RLIMIT_CPU,
        "as" => Resource::RLIMIT_AS,
        "nofile" => Resource::RLIMIT_NOFILE,
        "fsize" => Resource::RLIMIT_FSIZE,
        other => return Err(format!("unknown limit {other:?}")),
    };
    setrlimit(resource, value, value).map_err(|error| format!("cannot set {name}: {error}"))
}
