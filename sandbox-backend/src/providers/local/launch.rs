//! `sandbox-backend __launch [--cgroup <cgroup.procs file>]... [--rlimit <name>=<n>]...
//! -- <command>...`: puts itself into the given resource-control groups, sets the
//! resource limits (`nproc`, `cpu`, `as`, `nofile`; soft and hard), starts a new
//! session, then becomes `command` (bubblewrap), which passes all of it on to every
//! process of the sandbox. Joining before the exec means every process of the
//! sandbox is born inside the groups, without a window in which it is not.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

pub fn main(args: &[String]) -> ExitCode {
    let Some(split) = args.iter().position(|arg| arg == "--") else {
        eprintln!("sandbox-backend __launch: no command after --");
        return ExitCode::from(125);
    };
    let (options, command) = (&args[..split], &args[split + 1..]);
    if command.is_empty() {
        eprintln!("sandbox-backend __launch: no command after --");
        return ExitCode::from(125);
    }
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match (option.as_str(), options.next()) {
            ("--rlimit", Some(limit)) => {
                if let Err(message) = set_limit(limit) {
                    eprintln!("sandbox-backend __launch: {message}");
                    return ExitCode::from(125);
                }
            }
            ("--cgroup", Some(procs)) => {
                if let Err(error) = std::fs::write(procs, std::process::id().to_string()) {
                    eprintln!("sandbox-backend __launch: cannot join {procs}: {error}");
                    return ExitCode::from(125);
                }
            }
            _ => {
                eprintln!("sandbox-backend __launch: unknown option {option:?}");
                return ExitCode::from(125);
            }
        }
    }
    // A session of its own: no terminal's signals reach the sandbox, and it does not
    // end with the backend's process group.
    let _ = nix::unistd::setsid();
    let error = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    eprintln!(
        "sandbox-backend __launch: cannot run {}: {error}",
        command[0]
    );
    ExitCode::from(126)
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
        other => return Err(format!("unknown limit {other:?}")),
    };
    setrlimit(resource, value, value).map_err(|error| format!("cannot set {name}: {error}"))
}
