//! `sandbox-backend __launch [--cgroup <cgroup.procs file>]... [--rlimit <name>=<n>]...
//! [--user <uid>:<gid>] [--seccomp] [--pin <dir>] -- <bwrap> <options>...`: puts itself into the
//! given resource-control groups, sets the resource limits (`nproc`, `cpu`, `as`,
//! `nofile`, `fsize`; soft and hard), starts a new session, drops to the unprivileged
//! host user when told to (see [`super::host_user`]), writes the sandbox's seccomp
//! filter ([`super::seccomp`]) into an inherited memory file and tells bubblewrap
//! about it, then becomes bubblewrap, which passes all of it on to every process of
//! the sandbox. With `--pin`, it creates the directory `<dir>` (whose parent is the
//! platform's, its last component the sandbox's), opens it without following a
//! symlink, and hands bubblewrap that descriptor for the `--bind-fd` whose descriptor
//! reads [`PINNED_FD`] (or drops that bind when the entry is not a directory): the
//! sandbox then sees it as a mount point it can neither remove nor replace.
//! Joining before the exec means every process of the sandbox is born
//! inside the groups, without a window in which it is not; dropping after joining
//! means the groups can stay writable by root only.

use std::io::{Seek, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use super::host_user::HostUser;

/// The placeholder bubblewrap's `--bind-fd` takes for the descriptor of `--pin`.
pub const PINNED_FD: &str = "{pinned}";

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
    let mut pin = None;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--seccomp" => seccomp = true,
            "--rlimit" | "--cgroup" | "--user" | "--pin" => {
                let value = options
                    .next()
                    .ok_or_else(|| format!("{option} needs a value"))?;
                match option.as_str() {
                    "--rlimit" => set_limit(value)?,
                    "--cgroup" => std::fs::write(value, std::process::id().to_string())
                        .map_err(|error| format!("cannot join {value}: {error}"))?,
                    "--pin" => pin = Some(value.clone()),
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
    // As the sandbox's user: the directory it creates is that user's.
    let pinned = pin.as_deref().and_then(pin_dir).map(IntoRawFd::into_raw_fd);
    fill_pinned(&mut argv, pinned);
    if seccomp {
        let fd = seccomp_fd()?;
        argv.splice(1..1, ["--seccomp".to_string(), fd.to_string()]);
    }
    let error = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(format!("cannot run {}: {error}", argv[0]))
}

/// Creates `path` unless it exists and opens it as a path descriptor that stays open
/// across the exec, refusing anything but a directory (a symlink is not followed).
fn pin_dir(path: &str) -> Option<std::os::fd::OwnedFd> {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::{Mode, mkdirat};
    let path = std::path::Path::new(path);
    let (parent, name) = (path.parent()?, path.file_name()?);
    let parent = open(parent, OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    let _ = mkdirat(&parent, name, Mode::from_bits_truncate(0o755));
    match openat(
        &parent,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY,
        Mode::empty(),
    ) {
        Ok(fd) => Some(fd),
        Err(error) => {
            eprintln!(
                "sandbox-backend __launch: not pinning {}: {error}",
                path.display()
            );
            None
        }
    }
}

/// Puts the pinned descriptor into its `--bind-fd`, or drops that bind without one.
fn fill_pinned(argv: &mut Vec<String>, pinned: Option<i32>) {
    let Some(at) = argv.iter().position(|arg| arg == PINNED_FD) else {
        return;
    };
    match pinned {
        Some(fd) => argv[at] = fd.to_string(),
        None if at >= 1 && at + 1 < argv.len() => {
            argv.drain(at - 1..=at + 1);
        }
        None => {}
    }
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    #[test]
    fn a_pinned_directory_fills_its_bind_and_a_missing_one_drops_it() {
        let mut argv =
            args("bwrap --bind /w /workspace --bind-fd {pinned} /workspace/.x --chdir /");
        fill_pinned(&mut argv, Some(7));
        assert_eq!(
            argv,
            args("bwrap --bind /w /workspace --bind-fd 7 /workspace/.x --chdir /")
        );
        let mut argv =
            args("bwrap --bind /w /workspace --bind-fd {pinned} /workspace/.x --chdir /");
        fill_pinned(&mut argv, None);
        assert_eq!(argv, args("bwrap --bind /w /workspace --chdir /"));
    }

    #[test]
    fn pinning_creates_the_directory_and_never_follows_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let made = root.path().join("made");
        let fd = pin_dir(made.to_str().unwrap()).expect("a new directory is pinned");
        assert!(made.is_dir());
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(target, made);
        let outside = root.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert!(
            pin_dir(link.to_str().unwrap()).is_none(),
            "a symlink is refused"
        );
        let file = root.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(
            pin_dir(file.to_str().unwrap()).is_none(),
            "a file is refused"
        );
    }
}
