//! The terminal: whether standard streams are terminals, colour, reading a secret
//! without echo, and reading text arguments given as `-` from standard input.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::os::fd::AsFd;

use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use crate::error::{CliError, CliResult};

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (no-color.org).
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Asks for a secret on a terminal with echo off; reads one line from standard input
/// when it is not a terminal (a pipe, a file). Ctrl-C while asking gives the terminal
/// its echo back before the command ends.
pub async fn read_secret(prompt: &str) -> CliResult<String> {
    let local = |error: std::io::Error| CliError::Local(format!("cannot read the token: {error}"));
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(local)?;
        return Ok(line.trim().to_string());
    }
    let mut interrupt = signal(SignalKind::interrupt()).map_err(local)?;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let original = tcgetattr(stdin.as_fd()).map_err(|e| local(e.into()))?;
    let mut quiet = original.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    // The newline the user types still shows, so the next output starts a line.
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet).map_err(|e| local(e.into()))?;
    // A blocking read cannot be cancelled, so it runs on a thread of its own (which
    // ends with the process) while Ctrl-C is listened for here.
    let (sender, receiver) = oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line).map(|_| line);
        let _ = sender.send(read);
    });
    let read = tokio::select! {
        read = receiver => Some(read),
        _ = interrupt.recv() => None,
    };
    let restored = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &original);
    let Some(read) = read else {
        eprintln!();
        return Err(CliError::Interrupted);
    };
    let line = read
        .map_err(|_| CliError::Local("cannot read the token".into()))?
        .map_err(local)?;
    restored.map_err(|e| local(e.into()))?;
    Ok(line.trim().to_string())
}

/// `text` itself, or all of standard input when it is `-`.
pub fn text_argument(text: &str) -> CliResult<String> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|error| CliError::Local(format!("cannot read standard input: {error}")))?;
    Ok(input)
}
