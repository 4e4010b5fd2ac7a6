//! The provider contract as one HTTP test suite, run against every provider: for real
//! against `local` (`tests/providers/local.rs`), and against fake servers speaking
//! the real wire protocols for the remote providers (`tests/providers/<name>.rs`),
//! all in one test binary (`tests/conformance_suite.rs`).
//!
//! A provider's test file starts a real backend configured with that provider as the
//! default, implements [`Harness`] and calls [`run_all`]. Cases needing a capability
//! the provider does not claim in `GET /v1/providers` are skipped (and printed); the
//! harness may skip more with a reason ([`Harness::skipped`]). Every case checks at
//! its end that the backend still serves another sandbox.

#![allow(dead_code)]

pub mod cases;
pub mod client;

use std::time::Duration;

use async_trait::async_trait;
use nightshift_protocol::sandbox::ProviderCapabilities;

pub use self::client::Client;

/// What the suite needs from the test file of one provider.
#[async_trait]
pub trait Harness: Send + Sync {
    /// `http://127.0.0.1:<port>` of the running backend.
    fn base_url(&self) -> String;
    fn token(&self) -> String;
    /// The provider under test (the backend's default provider).
    fn provider(&self) -> String;
    /// Cases this provider skips although its capabilities would allow them, each with
    /// the reason (printed with the results).
    fn skipped(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
    /// Restarts the backend process on the same data directory (SIGTERM, start again,
    /// wait for `/v1/health`). `false` when this harness cannot.
    async fn restart_backend(&self) -> bool {
        false
    }
    /// How long one idle-timeout "minute" lasts in this backend
    /// (`SANDBOX_IDLE_MINUTE_MS`); the idle case is skipped when it is a real minute.
    fn idle_minute(&self) -> Duration {
        Duration::from_secs(60)
    }
    /// Whether commands in a sandbox share the host's loopback in `private` mode (true
    /// for `local`; a fake remote provider runs nothing on this host).
    fn shares_host_loopback(&self) -> bool {
        false
    }
    /// An address the backend's `isolated` policy was told to allow (so the suite can
    /// prove the egress path works, with a listener there), if any.
    fn isolated_allowed_address(&self) -> Option<String> {
        None
    }
    /// Whether commands really run (false for a fake server that only scripts
    /// answers: the security cases that need a real kernel are then skipped).
    fn runs_real_commands(&self) -> bool {
        false
    }
}

/// One case: its name, what it needs, and the test itself.
pub struct Case {
    pub name: &'static str,
    pub needs: Need,
    pub run: for<'a> fn(&'a Ctx<'a>) -> futures::future::BoxFuture<'a, Result<(), String>>,
}

/// What a case needs beyond the required operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    Fork,
    Templates,
    Stdin,
    Processes,
    Reattach,
    Restart,
    IdleMinute,
    HostLoopback,
    RealCommands,
    /// `isolated` network mode and real commands.
    IsolatedNetwork,
    NoNetwork,
}

/// What a case gets.
pub struct Ctx<'a> {
    pub client: Client,
    pub harness: &'a dyn Harness,
    pub capabilities: ProviderCapabilities,
}

impl Ctx<'_> {
    fn satisfies(&self, need: Need) -> bool {
        use nightshift_protocol::sandbox::NetworkMode;
        let caps = &self.capabilities;
        match need {
            Need::Nothing => true,
            Need::Fork => caps.fork,
            Need::Templates => caps.templates,
            Need::Stdin => caps.stdin,
            Need::Processes => caps.processes,
            Need::Reattach => caps.reattach,
            Need::Restart => caps.restart,
            Need::IdleMinute => self.harness.idle_minute() < Duration::from_secs(10),
            Need::HostLoopback => self.harness.shares_host_loopback(),
            Need::RealCommands => self.harness.runs_real_commands(),
            Need::IsolatedNetwork => {
                caps.network_modes.contains(&NetworkMode::Isolated)
                    && self.harness.runs_real_commands()
            }
            Need::NoNetwork => {
                caps.network_modes.contains(&NetworkMode::None) && self.harness.runs_real_commands()
            }
        }
    }
}

/// Runs every case (those named in `only`, when not empty) and panics listing the
/// failures. Skipped cases are printed with their reason.
pub async fn run_all(harness: &dyn Harness) {
    run_selected(harness, &[]).await
}

pub async fn run_selected(harness: &dyn Harness, only: &[&str]) {
    let client = Client::new(harness.base_url(), harness.token());
    let providers = client.providers().await;
    let capabilities = providers
        .providers
        .iter()
        .find(|info| info.name == harness.provider())
        .unwrap_or_else(|| panic!("provider {} is not configured", harness.provider()))
        .capabilities
        .clone();
    let ctx = Ctx {
        client,
        harness,
        capabilities,
    };
    let skipped_by_harness = harness.skipped();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in cases::all() {
        if !only.is_empty() && !only.contains(&case.name) {
            continue;
        }
        if let Some((_, reason)) = skipped_by_harness
            .iter()
            .find(|(name, _)| *name == case.name)
        {
            eprintln!(
                "conformance[{}] {}: SKIPPED ({reason})",
                harness.provider(),
                case.name
            );
            continue;
        }
        if !ctx.satisfies(case.needs) {
            eprintln!(
                "conformance[{}] {}: SKIPPED (needs {:?}, which this provider/harness does not offer)",
                harness.provider(),
                case.name,
                case.needs
            );
            continue;
        }
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(120), (case.run)(&ctx)).await;
        let outcome = match outcome {
            Err(_) => Err("did not finish within 120 s".to_string()),
            Ok(result) => result,
        };
        // The backend keeps serving others after every case.
        let outcome = match outcome {
            Ok(()) => cases::still_serving(&ctx).await,
            Err(error) => Err(error),
        };
        // Whatever the case left (a failing case included) is destroyed before the
        // next one, so no sandbox outlives its case.
        let outcome = match (outcome, ctx.client.destroy_all().await) {
            (Ok(()), Err(leak)) => Err(format!("after the case: {leak}")),
            (outcome, _) => outcome,
        };
        ran += 1;
        match outcome {
            Ok(()) => eprintln!(
                "conformance[{}] {}: ok ({} ms)",
                harness.provider(),
                case.name,
                started.elapsed().as_millis()
            ),
            Err(error) => {
                eprintln!(
                    "conformance[{}] {}: FAILED: {error}",
                    harness.provider(),
                    case.name
                );
                failures.push(format!("{}: {error}", case.name));
            }
        }
    }
    assert!(ran > 0, "no conformance case ran");
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures.join("\n")
    );
}
