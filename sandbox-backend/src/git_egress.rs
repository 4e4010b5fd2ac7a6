//! Git's credential added on the way out, so nothing in the sandbox holds one.
//!
//! When an `isolated` local sandbox whose session has an `https` repository opens a
//! tunnel (`CONNECT`) to that repository's host, the egress does not carry bytes: it
//! terminates TLS with a leaf certificate for that host signed by the deployment's
//! egress CA ([`ca`], trusted only by the sandboxes' git), dials the real host over
//! TLS (webpki roots, plus `SANDBOX_EGRESS_UPSTREAM_CA` when set), and relays HTTP/1.1
//! ([`relay`]). Requests that are the repository's git smart-HTTP requests
//! ([`rules::RepoRoute::is_git_request`]) get `Authorization: Basic` with the
//! session's short-lived credential in place of whatever the sandbox sent; anything
//! else on that host passes without one. Tunnels to every other host are carried
//! as before.
//!
//! The credential comes from the sandbox's runner ([`runner`]), which already holds
//! the session's runner token and asks the Worker's credential route for it: the
//! backend keeps no token of its own, and the runner's checks (this repository
//! only) and cache (renewed two minutes before expiry) are the same ones git's
//! credential helper used.

pub mod ca;
pub mod relay;
pub mod rules;
pub mod runner;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use self::ca::{CaError, EgressCa};
use self::rules::{Refusal, RequestHead};
use self::runner::{RunnerRepo, RunnerSocket};

/// How long either TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The file name, in a sandbox's sockets directory, of the CA bundle its git trusts
/// (the system's roots and the egress CA).
pub const CA_BUNDLE_FILE: &str = "egress-ca.pem";
/// The directory, in a sandbox's host directory (bound into no sandbox), where its
/// runner serves the repository's credential to the egress: the runner's own (it may
/// run as another user than the backend), holding [`RUNNER_SOCKET_FILE`].
pub const RUNNER_SOCKET_DIR: &str = "egress";
/// The socket's file name in [`RUNNER_SOCKET_DIR`].
pub const RUNNER_SOCKET_FILE: &str = "credential.sock";
/// The system's CA bundle, added to the sandbox's so git still trusts every other
/// host.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The backend's half: the CA and the TLS configuration for the real hosts.
#[derive(Debug)]
pub struct GitEgress {
    ca: EgressCa,
    upstream: Arc<rustls::ClientConfig>,
}

impl GitEgress {
    /// Loads (or makes) the CA in `ca_dir`; `extra_upstream_ca` is a PEM file of
    /// further roots trusted for the real hosts (a test's git server).
    pub fn new(ca_dir: &Path, extra_upstream_ca: Option<&Path>) -> Result<GitEgress, CaError> {
        let ca = EgressCa::load_or_create(ca_dir)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = extra_upstream_ca {
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|error| CaError::Certificate(format!("{}: {error}", path.display())))?;
            for cert in certs {
                roots.add(cert).map_err(|error| {
                    CaError::Certificate(format!("{}: {error}", path.display()))
                })?;
            }
        }
        let upstream = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| CaError::Certificate(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(GitEgress {
            ca,
            upstream: Arc::new(upstream),
        })
    }

    /// The bundle a sandbox's git trusts: the system's roots and the egress CA's
    /// certificate (never its key).
    pub fn ca_bundle(&self) -> String {
        let mut bundle = std::fs::read_to_string(SYSTEM_BUNDLE).unwrap_or_default();
        if !bundle.is_empty() && !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str(self.ca.cert_pem());
        bundle
    }

    /// Writes [`Self::ca_bundle`] into a sandbox's sockets directory.
    pub fn write_bundle(&self, sockets_dir: &Path) -> std::io::Result<()> {
        let path = sockets_dir.join(CA_BUNDLE_FILE);
        let partial = sockets_dir.join(format!("{CA_BUNDLE_FILE}.partial"));
        std::fs::write(&partial, self.ca_bundle())?;
        std::fs::rename(partial, path)
    }

    /// Whether a tunnel to `host:port` from the sandbox whose runner listens at
    /// `runner` is to be intercepted: the runner names an `https` repository on
    /// that host.
    pub async fn intercepts(
        &self,
        runner: &RunnerSocket,
        host: &str,
        port: u16,
    ) -> Option<RunnerRepo> {
        let repo = runner.repository().await?;
        repo.route.is_host(host, port).then_some(repo)
    }

    /// Serves an intercepted tunnel: `sandbox` carries the sandbox's TLS, `remote`
    /// is the connection already dialled (under the egress policy) to `host`.
    pub async fn serve<S>(
        &self,
        sandbox: S,
        remote: TcpStream,
        host: &str,
        runner: RunnerSocket,
        repo: RunnerRepo,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Ok(config) = self.ca.server_config(host) else {
            tracing::warn!(%host, "cannot make a certificate for the repository's host");
            return;
        };
        let accept = tokio_rustls::TlsAcceptor::from(config).accept(sandbox);
        let Ok(Ok(sandbox)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await else {
            return;
        };
        let Ok(name) = ServerName::try_from(host.to_string()) else {
            return;
        };
        let connect = tokio_rustls::TlsConnector::from(self.upstream.clone()).connect(name, remote);
        let remote = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connect).await {
            Ok(Ok(remote)) => remote,
            Ok(Err(error)) => {
                tracing::info!(%host, %error, "the repository's host failed TLS");
                return;
            }
            Err(_) => return,
        };
        relay::relay(sandbox, remote, &RepoCredentials { runner, repo }).await;
    }
}

/// One sandbox's interception: the backend's egress and the sandbox's runner.
#[derive(Debug, Clone)]
pub struct SandboxGit {
    pub egress: Arc<GitEgress>,
    pub runner: RunnerSocket,
}

impl SandboxGit {
    /// Whether to intercept a tunnel to `host:port`: the session's repository.
    pub async fn intercepts(&self, host: &str, port: u16) -> Option<RunnerRepo> {
        self.egress.intercepts(&self.runner, host, port).await
    }

    /// Serves an intercepted tunnel (see [`GitEgress::serve`]).
    pub async fn serve<S>(&self, sandbox: S, remote: TcpStream, host: &str, repo: RunnerRepo)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.egress
            .serve(sandbox, remote, host, self.runner.clone(), repo)
            .await;
    }
}

/// The session's credential for its repository's git requests.
struct RepoCredentials {
    runner: RunnerSocket,
    repo: RunnerRepo,
}

impl relay::Credentials for RepoCredentials {
    async fn authorization(&self, head: &RequestHead) -> Result<Option<String>, Refusal> {
        let route = &self.repo.route;
        if !(route.is_git_request(&head.method, &head.target) && head.host_is(route)) {
            return Ok(None);
        }
        match self.runner.authorization(&self.repo).await {
            Some(authorization) => Ok(Some(authorization)),
            None => Err(Refusal {
                status: 502,
                code: "git_credential_unavailable",
                message: "no credential for the session's repository right now",
            }),
        }
    }
}
