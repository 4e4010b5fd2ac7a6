//! `sandbox-backend __launch [--cgroup <cgroup.procs file>]... -- <command>...`: puts
//! itself into the given resource-control groups and a new session, then becomes
//! `command` (bubblewrap). Joining before the exec means every process of the
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
