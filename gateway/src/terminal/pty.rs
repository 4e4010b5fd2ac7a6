//! A shell on a fresh PTY, without unsafe code: the master is opened, granted and
//! unlocked through rustix, and `setsid --ctty` (util-linux) makes the shell a
//! session leader whose controlling terminal is the PTY, which is what job control,
//! Ctrl-C and SIGWINCH on resize need.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};
use tokio::process::{Child, Command};

/// Opens a PTY of `cols` x `rows` and starts bash on it in `workspace`.
pub fn spawn_shell(workspace: &Path, cols: u16, rows: u16) -> std::io::Result<(OwnedFd, Child)> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    // NOCTTY: the gateway itself must never take the PTY as its terminal.
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    resize(&master, cols, rows)?;
    let child = Command::new("setsid")
        .args(["--ctty", "bash", "-i"])
        .current_dir(workspace)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .spawn()?;
    // The parent's copies of the slave are gone now (moved into the Stdio values and
    // closed after the spawn), so the master reads EOF/EIO once the shell's side closes.
    Ok((master, child))
}

/// Sets the PTY's size; the kernel sends SIGWINCH to the shell's foreground job.
pub fn resize(master: &OwnedFd, cols: u16, rows: u16) -> std::io::Result<()> {
    tcsetwinsize(
        master,
        Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )?;
    Ok(())
}
