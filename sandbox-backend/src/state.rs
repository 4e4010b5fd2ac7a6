//! The service's shared state and its start-up: the data directory (locked, so two
//! backends never manage the same sandboxes), the provider (probed), and the
//! sandboxes reloaded from disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};

use crate::config::Config;
use crate::listen::Transport;
use crate::providers::local::sandbox_agent::egress::EgressPolicy;
use crate::providers::local::{self, LocalProviderError, LocalSettings};
use crate::providers::{self, Provider, Registry};
use crate::sandboxes::Sandboxes;
use crate::sandboxes::store::{Store, StoreError};
use crate::sandboxes::templates::Templates;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another sandbox backend already uses the data directory {0} (it holds backend.lock); \
         stop it or set NIGHTSHIFT_DATA_DIR to another directory"
    )]
    DataDirInUse(PathBuf),
    #[error(transparent)]
    Provider(#[from] LocalProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up the sandbox providers: {0}")]
    Providers(String),
}

/// Cheap to clone; handlers get it through axum's `State`.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    sandboxes: Sandboxes,
    token: String,
    /// Where the HTTP API listens (the relay's URL when a request names no host).
    listen: std::net::SocketAddr,
    /// `https` when callers reach the backend over TLS (its own or a proxy's), for
    /// the relay's URL.
    scheme: &'static str,
    /// Held for the life of the process.
    _data_dir_lock: Flock<std::fs::File>,
}

impl AppState {
    /// Prepares everything the routes need, restarting the runners of ready sandboxes.
    /// Providers: `local`, plus every remote provider configured in the environment.
    pub async fn start(config: &Config) -> Result<AppState, StartError> {
        let lookup = |name: &str| std::env::var(name).ok();
        let remote = providers::from_env(&lookup)
            .await
            .map_err(|error| StartError::Providers(format!("{error:#}")))?;
        AppState::start_with(config, remote).await
    }

    /// Like [`AppState::start`], with the given remote providers next to `local`
    /// (tests configure a provider against a fake server this way).
    pub async fn start_with(
        config: &Config,
        remote: Vec<Arc<dyn Provider>>,
    ) -> Result<AppState, StartError> {
        let data_dir = prepare_data_dir(&config.data_dir)?;
        let lock_path = data_dir.join("backend.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StartError::DataDir {
                path: lock_path.clone(),
                source,
            })?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| StartError::DataDirInUse(data_dir.clone()))?;

        // The local provider's sandboxes are processes of this host: they need the
        // data directory's lock above, and bubblewrap. A backend serving only remote
        // providers can do without both the provider and its probe.
        let local = if config.local_provider {
            Some(local::start(local_settings(config, &data_dir)?).await?)
        } else {
            tracing::info!("SANDBOX_LOCAL_PROVIDER=false: the local provider is off");
            None
        };
        let runner_bin = absolute(&config.runner_bin);
        if !runner_bin.is_file() {
            tracing::warn!(
                runner_bin = %runner_bin.display(),
                "the runner executable does not exist: sandboxes linked to a session cannot be created (set RUNNER_BIN)"
            );
        }
        let store = Store::open(&data_dir)?;
        let mut all: Vec<Arc<dyn Provider>> = local.into_iter().collect();
        all.extend(remote);
        let registry =
            Registry::new(all, &config.default_provider).map_err(StartError::Providers)?;
        let templates = Templates::open(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.join("templates"),
            source,
        })?;
        let sandboxes =
            Sandboxes::load(store, registry, runner_bin, templates, config.idle_minute).await?;
        tracing::info!(data_dir = %data_dir.display(), sandboxes = sandboxes.list().len(), "sandbox backend ready");
        let inner = Arc::new(Inner {
            sandboxes,
            token: config.token.expose().clone(),
            listen: config.listen,
            scheme: match config.transport() {
                Transport::Plain => "http",
                Transport::Tls | Transport::BehindTlsProxy => "https",
            },
            _data_dir_lock: lock,
        });
        // The idle reaper lives as long as the state does.
        let weak = Arc::downgrade(&inner);
        let interval = inner.sandboxes.idle_check_interval();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = weak.upgrade() else { return };
                inner.sandboxes.reap_idle().await;
            }
        });
        Ok(AppState { inner })
    }

    pub fn sandboxes(&self) -> &Sandboxes {
        &self.inner.sandboxes
    }

    pub(crate) fn listen(&self) -> std::net::SocketAddr {
        self.inner.listen
    }

    pub(crate) fn scheme(&self) -> &'static str {
        self.inner.scheme
    }

    pub(crate) fn token(&self) -> &str {
        &self.inner.token
    }

    /// Stops every runner and command. Sandboxes keep their status, so the next start
    /// of the backend restarts the runners of ready sandboxes.
    pub async fn shutdown(&self) {
        self.inner.sandboxes.shutdown().await;
    }
}

/// The local provider's settings from the backend's configuration.
fn local_settings(config: &Config, data_dir: &Path) -> Result<LocalSettings, StartError> {
    let mut settings = LocalSettings::new(data_dir);
    settings.allow_unisolated = config.allow_unisolated;
    if let Some(agent_bin) = &config.agent_bin {
        settings.agent_bin = absolute(agent_bin);
    }
    settings.gateway_bin = Some(absolute(&config.gateway_bin));
    settings.ro_binds = config.ro_binds.iter().map(|dir| absolute(dir)).collect();
    settings.orphan_grace = config.orphan_grace;
    settings.warm_pool = config.warm_pool;
    settings.allow_private_network = config.allow_private_network;
    if config.allow_private_network {
        tracing::warn!(
            "SANDBOX_ALLOW_PRIVATE_NETWORK=true: sandboxes that ask for network mode \
             `private` share this host's network and reach every service on its loopback"
        );
    }
    settings.git_egress = Some(Arc::new(
        crate::git_egress::GitEgress::new(
            &data_dir.join("egress-ca"),
            config.egress_upstream_ca.as_deref(),
        )
        .map_err(|error| StartError::Providers(format!("the egress CA: {error}")))?,
    ));
    settings.egress = Arc::new(
        EgressPolicy::with_allow_list(&config.isolated_allow)
            .map_err(|error| StartError::Providers(format!("SANDBOX_ISOLATED_ALLOW: {error}")))?,
    );
    Ok(settings)
}

/// Creates the data directory (owner-only) and returns its absolute, canonical path:
/// the workspace paths handed to runners and to bubblewrap must be absolute.
fn prepare_data_dir(path: &Path) -> Result<PathBuf, StartError> {
    use std::os::unix::fs::DirBuilderExt;
    let error = |source| StartError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(error)?;
    path.canonicalize().map_err(error)
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}
