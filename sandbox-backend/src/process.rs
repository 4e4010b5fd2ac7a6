//! Small, safe helpers around host processes: signalling a whole process group, and
//! telling whether a recorded process is still the one we started.
//!
//! Every command and runner the backend starts leads its own process group (its pid is
//! the group id), so one `killpg` reaches everything it forked that did not move to
//! a group of its own. Nothing here knows about sandboxes or HTTP.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Sends `signal` to the process group `group`. A group that no longer exists is not
/// an error: the caller wanted it gone.
///
/// Group ids 0 and 1 are refused: `killpg(0)` would signal the backend's own group and
/// group 1 belongs to init. Neither can be a group the backend created.
pub fn signal_group(group: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(group) else {
        return;
    };
    if raw < 2 {
        return;
    }
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => tracing::warn!(group, %signal, %error, "could not signal a process group"),
    }
}

/// The start time (in clock ticks since boot) of a live process, or `None` when the
/// process is gone or a zombie. Together with the pid it identifies one process for
/// good: a recycled pid comes with a different start time.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (state, ticks) = parse_stat(&stat)?;
    // A zombie has exited; only its parent's `wait` is missing.
    if state == 'Z' || state == 'X' {
        None
    } else {
        Some(ticks)
    }
}

/// The state letter and start time of a `/proc/<pid>/stat` line. The command name (in
/// parentheses) may itself contain spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Field 3 of the whole line (the first after the name) is the state; field 22 is
    // the start time.
    let state = fields.next()?.chars().next()?;
    let ticks = fields.nth(18)?.parse().ok()?;
    Some((state, ticks))
}

/// Stops a process group the polite way: SIGTERM, then SIGKILL once `grace` has passed
/// or `exited` resolves, whichever comes first. Returns when `exited` resolved or the
/// SIGKILL was sent and `exited` resolved after it (bounded by a second `grace`).
pub async fn terminate_group<F>(group: u32, grace: Duration, exited: F)
where
    F: std::future::Future<Output = ()>,
{
    signal_group(group, Signal::SIGTERM);
    tokio::pin!(exited);
    if tokio::time::timeout(grace, &mut exited).await.is_ok() {
        // The leader is gone; anything it left behind in its group goes too.
        signal_group(group, Signal::SIGKILL);
        return;
    }
    signal_group(group, Signal::SIGKILL);
    if tokio::time::timeout(grace, exited).await.is_err() {
        tracing::warn!(group, "process group did not exit after SIGKILL");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_and_start_time_even_with_odd_names() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn our_own_process_is_alive_and_a_made_up_one_is_not() {
        assert!(start_ticks(std::process::id()).is_some());
        // Above the kernel's pid limit (4194304), so no process can have it.
        assert!(start_ticks(4_194_305).is_none());
    }

    #[tokio::test]
    async fn terminate_group_ends_a_group_that_ignores_sigterm() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let group = child.id().unwrap();
        // Give the shell time to install its trap.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        terminate_group(group, Duration::from_millis(300), async {
            let _ = child.wait().await;
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(start_ticks(group).is_none(), "the group leader survived");
    }
}
