//! A headless Chromium for the tests (Debian's, as in the sandbox), with DevTools on
//! a free loopback port, the way a runner sharing the sandbox's loopback reaches it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A headless Chromium with DevTools on a free loopback port, ended on drop.
pub struct Chromium {
    child: Child,
    pub port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Chromium is part of the test toolchain (`make setup`), so a missing one fails.
pub fn chromium() -> Option<Chromium> {
    let binary = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok())
        .expect("these tests need Chromium (Debian package chromium)");
    let profile = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=800,600",
            "--remote-debugging-address=127.0.0.1",
        ])
        .arg(format!("--remote-debugging-port={port}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Chromium starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "Chromium's DevTools never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Chromium {
        child,
        port,
        _profile: profile,
    })
}
